//! A synthetic, realistic connection-churn event stream for tests and benchmarks: N loopback
//! connections from a few client processes to a server, each producing the events the
//! kernel emits for a connect, a short exchange and an active close by the client, and the
//! client's timewait socket expiring 60 s later.
//!
//! Per connection, in time order (client = C, server child = S):
//!
//! ```text
//! C CLOSE->SYN_SENT (sport 0)   C SYN_SENT->ESTABLISHED   S LISTEN->SYN_RECV
//! S SYN_RECV->ESTABLISHED       C ESTABLISHED->FIN_WAIT1  S ESTABLISHED->CLOSE_WAIT
//! C FIN_WAIT1->FIN_WAIT2        TW start (FIN_WAIT2)      C FIN_WAIT2->CLOSE
//! S CLOSE_WAIT->LAST_ACK        S LAST_ACK->CLOSE
//! … 60 s later: TW cancel (remaining <= 0), TW expire
//! ```
//!
//! Ephemeral ports increment through the default range; socket addresses come from a
//! slab-like pool (objects carved from randomly placed slabs, freed objects reused last-in
//! first-out), as kernel addresses do; timestamps have nanosecond jitter.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
};

use crate::event::{Comm, Event, EventKind, StateChange, Task, TcpState, TwOp};

#[derive(Debug, Clone)]
pub struct Config {
    pub connections: usize,
    /// New connections per second.
    pub rate: u64,
    pub clients: u32,
    pub server_workers: u32,
    pub seed: u64,
    pub netns: u32,
    /// CLOCK_MONOTONIC of the first connection.
    pub start_ns: u64,
}

impl Config {
    pub fn new(connections: usize) -> Config {
        Config {
            connections,
            rate: 400,
            clients: 4,
            server_workers: 4,
            seed: 0x5eed,
            netns: 4026531840,
            start_ns: 86_400_000_000_000 + 123_456_789,
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// Kernel objects of one size: slabs at random page-aligned addresses, LIFO reuse.
struct Slab {
    object: u64,
    per_slab: u64,
    free: Vec<u64>,
}

impl Slab {
    fn alloc(&mut self, rng: &mut Rng) -> u64 {
        if let Some(a) = self.free.pop() {
            return a;
        }
        let base = 0xffff_8881_0000_0000 + (rng.range(0, 1 << 22) << 14);
        // Objects come off a fresh slab in address order; hand out the first, keep the rest.
        for k in (1..self.per_slab).rev() {
            self.free.push(base + k * self.object);
        }
        base
    }
}

/// A heap entry: events ordered by time, then by generation order.
struct Pending(u64, u64, Event);

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

/// The stream: an iterator of events in timestamp order.
pub struct Churn {
    cfg: Config,
    rng: Rng,
    next_conn: usize,
    seq: u64,
    heap: BinaryHeap<Reverse<Pending>>,
    /// (time, address, is_tw): objects to free once the stream passes `time`.
    frees: BinaryHeap<Reverse<(u64, u64, bool)>>,
    socks: Slab,
    tws: Slab,
}

pub const EVENTS_PER_CONNECTION: usize = 13;

/// `n` connections with the default configuration.
pub fn churn(n: usize) -> Churn {
    Churn::new(Config::new(n))
}

fn task(pid: u32, tid: u32, ppid: u32, comm: &str) -> Task {
    Task {
        cgroup: 0,
        pid,
        tid,
        ppid,
        comm: Comm::new(comm),
    }
}

impl Churn {
    pub fn new(cfg: Config) -> Churn {
        Churn {
            rng: Rng(cfg.seed | 1),
            cfg,
            next_conn: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            frees: BinaryHeap::new(),
            socks: Slab {
                object: 2368,
                per_slab: 13,
                free: Vec::new(),
            },
            tws: Slab {
                object: 256,
                per_slab: 16,
                free: Vec::new(),
            },
        }
    }

    fn start_of(&self, i: usize) -> u64 {
        self.cfg.start_ns + i as u64 * (1_000_000_000 / self.cfg.rate.max(1))
    }

    fn emit(&mut self, ts: u64, netns: u32, task: Task, kind: EventKind) {
        self.seq += 1;
        let e = Event {
            ts_ns: ts,
            netns,
            task,
            kind,
        };
        self.heap.push(Reverse(Pending(ts, self.seq, e)));
    }

    fn connection(&mut self, i: usize) {
        let interval = 1_000_000_000 / self.cfg.rate.max(1);
        let t0 = self.start_of(i) + self.rng.range(0, interval / 2);
        while let Some(Reverse((t, addr, tw))) = self.frees.peek().copied() {
            if t > t0 {
                break;
            }
            self.frees.pop();
            if tw {
                self.tws.free.push(addr)
            } else {
                self.socks.free.push(addr)
            }
        }
        let rng = &mut self.rng;
        let k = i as u32 % self.cfg.clients.max(1);
        let client = task(3100 + k, 3100 + k, 3000, "loadgen");
        let w = i as u32 % self.cfg.server_workers.max(1);
        let server = task(2201 + w, 2201 + w, 2200, "nginx");
        let timer = task(
            0,
            0,
            0,
            if i.is_multiple_of(2) {
                "swapper/0"
            } else {
                "swapper/1"
            },
        );
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let port = 32768 + (i % 28232) as u16;
        let (cl, sv) = (SocketAddr::new(lo, port), SocketAddr::new(lo, 8080));
        let csk = self.socks.alloc(rng);
        let ssk = self.socks.alloc(rng);
        let twsk = self.tws.alloc(rng);
        let ns = self.cfg.netns;

        let mut t = t0;
        let mut at = |rng: &mut Rng, lo: u64, hi: u64| {
            t += rng.range(lo, hi);
            t
        };
        use TcpState::*;
        let st = |sk, local, remote, old, new| {
            EventKind::State(StateChange {
                sk,
                local,
                remote,
                old,
                new,
            })
        };
        let unbound = SocketAddr::new(lo, 0);
        let tw = |op, remaining_jiffies| {
            EventKind::TimeWait(crate::event::TimeWait {
                tw: twsk,
                local: cl,
                remote: sv,
                op,
                substate: FinWait2,
                remaining_jiffies,
            })
        };
        let mut evs = Vec::with_capacity(EVENTS_PER_CONNECTION);
        evs.push((t0, client, st(csk, unbound, sv, Close, SynSent)));
        evs.push((
            at(rng, 8_000, 20_000),
            client,
            st(csk, cl, sv, SynSent, Established),
        ));
        evs.push((
            at(rng, 1_000, 5_000),
            client,
            st(ssk, sv, cl, Listen, SynRecv),
        ));
        evs.push((
            at(rng, 300, 1_500),
            client,
            st(ssk, sv, cl, SynRecv, Established),
        ));
        evs.push((
            at(rng, 50_000, 500_000),
            client,
            st(csk, cl, sv, Established, FinWait1),
        ));
        evs.push((
            at(rng, 3_000, 9_000),
            client,
            st(ssk, sv, cl, Established, CloseWait),
        ));
        evs.push((
            at(rng, 1_000, 4_000),
            client,
            st(csk, cl, sv, FinWait1, FinWait2),
        ));
        let tw_start = at(rng, 500, 2_000);
        evs.push((tw_start, client, tw(TwOp::Start, 15_000)));
        let csk_gone = at(rng, 300, 1_200);
        evs.push((csk_gone, client, st(csk, cl, sv, FinWait2, Close)));
        evs.push((
            at(rng, 20_000, 200_000),
            server,
            st(ssk, sv, cl, CloseWait, LastAck),
        ));
        let ssk_gone = at(rng, 5_000, 15_000);
        evs.push((ssk_gone, server, st(ssk, sv, cl, LastAck, Close)));
        // The timer fires 60 s (15000 jiffies at HZ=250) after it was armed, give or take a tick.
        let fire = tw_start + 60_000_000_000 + rng.range(0, 4_000_000);
        let remaining = -(rng.range(0, 2) as i32);
        evs.push((fire, timer, tw(TwOp::Cancel, remaining)));
        let tw_gone = fire + rng.range(2_000, 8_000);
        evs.push((tw_gone, timer, tw(TwOp::Expire, 0)));
        for (ts, task, kind) in evs {
            self.emit(ts, ns, task, kind);
        }
        self.frees.push(Reverse((csk_gone, csk, false)));
        self.frees.push(Reverse((ssk_gone, ssk, false)));
        self.frees.push(Reverse((tw_gone, twsk, true)));
    }
}

impl Iterator for Churn {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        while self.next_conn < self.cfg.connections {
            let next_start = self.start_of(self.next_conn);
            match self.heap.peek() {
                Some(Reverse(p)) if p.0 < next_start => break,
                _ => {
                    self.connection(self.next_conn);
                    self.next_conn += 1;
                }
            }
        }
        self.heap.pop().map(|Reverse(p)| p.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_is_ordered_and_complete() {
        let evs: Vec<Event> = churn(500).collect();
        assert_eq!(evs.len(), 500 * EVENTS_PER_CONNECTION);
        assert!(evs.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        // Freed sockets are reused, as slab objects are.
        let mut sks: Vec<u64> = evs
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::State(s) => Some(s.sk),
                _ => None,
            })
            .collect();
        sks.sort_unstable();
        sks.dedup();
        assert!(sks.len() < 1000, "{} distinct sockets for 1000", sks.len());
        assert!(sks.iter().all(|&sk| sk >> 40 == 0xff_ff88));
    }
}
