//! Incident scenarios for rule tests, on top of `testutil::Seq`: connections opened at a
//! rate, closed first by this side (TIME_WAIT expiring 60 s later, in time order), kept open,
//! left in CLOSE_WAIT or SYN_SENT, bound before connect. Ports are handed out as the kernel
//! does (even first, then odd, skipping ports held by bind) and exhaustion emits what the
//! kernel emits (SYN_SENT → CLOSE with port 0, then EADDRNOTAVAIL).

use std::collections::{BTreeSet, VecDeque};

use rustc_hash::FxHashMap;

use crate::{
    event::{Task, TwOp},
    model::{Model, Sysctls, testutil::*},
};

/// A TIME_WAIT to expire: (time, tw, local, remote, pool).
type Expiry = (u64, u64, String, String, (String, String));

pub(crate) struct Sim {
    pub m: Model,
    pub s: Seq,
    range: (u16, u16),
    next_sk: u64,
    /// Free ports per (source IP, destination), in the kernel's order.
    free: FxHashMap<(String, String), VecDeque<u16>>,
    /// Ports held by bind() (for every destination), and reserved ones.
    held: BTreeSet<u16>,
    /// Pending TIME_WAIT expiries, in time order.
    expiries: VecDeque<Expiry>,
    last_tick: u64,
    /// Connections `open` keeps ESTABLISHED: (sk, local, destination).
    established: Vec<(u64, String, String)>,
}

impl Sim {
    pub fn new(sys: Sysctls) -> Sim {
        let mut m = Model::default();
        let range = sys.port_range;
        // connect() and bind(0) skip reserved ports like held ones.
        let held = sys
            .reserved_ports
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .collect();
        m.set_sysctls(NETNS, sys);
        Sim {
            m,
            s: Seq::new(),
            range,
            next_sk: 0x1000,
            free: FxHashMap::default(),
            held,
            expiries: VecDeque::new(),
            last_tick: 0,
            established: Vec::new(),
        }
    }

    /// Default kernel sysctls (28,232 ports, tcp_tw_reuse=2).
    pub fn default_range() -> Sim {
        Sim::new(Sysctls::kernel_defaults())
    }

    pub fn range(lo: u16, hi: u16, tw_reuse: u8) -> Sim {
        Sim::new(sysctls((lo, hi), &[], tw_reuse))
    }

    pub fn now(&self) -> u64 {
        self.s.now()
    }

    fn sk(&mut self) -> u64 {
        self.next_sk += 0x40;
        self.next_sk
    }

    /// Next port `connect()` would choose toward `dst` from `src`, if any.
    fn port(&mut self, src: &str, dst: &str) -> Option<u16> {
        let (lo, hi) = self.range;
        let scan = u32::from(hi) + 1 - u32::from(lo);
        let q = self
            .free
            .entry((src.to_string(), dst.to_string()))
            .or_insert_with(|| {
                let ports = (0..scan).map(|k| lo + k as u16);
                ports
                    .clone()
                    .filter(|p| p % 2 == 0)
                    .chain(ports.filter(|p| p % 2 == 1))
                    .collect()
            });
        let n = q.len();
        for _ in 0..n {
            let p = q.pop_front()?;
            if !self.held.contains(&p) {
                return Some(p);
            }
            q.push_back(p);
        }
        None
    }

    fn release(&mut self, pool: (String, String), port: u16) {
        self.free.entry(pool).or_default().push_back(port);
    }

    /// Moves time forward to `t`, expiring TIME_WAITs and ticking once a second on the way.
    fn run_until(&mut self, t: u64) {
        while let Some((at, ..)) = self.expiries.front() {
            if *at > t {
                break;
            }
            let (at, tw, local, remote, pool) = self.expiries.pop_front().unwrap_or_default();
            self.s.t = self.s.t.max(at);
            self.s.tw_expire(tw, &local, &remote);
            let port = local.rsplit(':').next().and_then(|p| p.parse().ok());
            if let Some(port) = port {
                self.release(pool, port);
            }
        }
        self.s.t = self.s.t.max(t);
        self.s.run(&mut self.m);
        if t / SEC > self.last_tick {
            self.m.tick(t);
            self.last_tick = t / SEC;
        }
    }

    pub fn advance(&mut self, secs: f64) -> &mut Sim {
        let end = self.s.t + (secs * SEC as f64) as u64;
        while self.s.t < end {
            let next = (self.s.t + SEC).min(end);
            self.run_until(next);
        }
        self
    }

    /// `per_s` connections a second for `secs`, each closed first by this side right away
    /// (TIME_WAIT for 60 s). `tasks` picks the owner of the k-th connection.
    pub fn churn(
        &mut self,
        tasks: impl Fn(u64) -> Task,
        src: &str,
        dst: &str,
        per_s: f64,
        secs: f64,
    ) -> &mut Sim {
        let step = (SEC as f64 / per_s) as u64;
        let total = (per_s * secs) as u64;
        let t0 = self.s.t;
        for k in 0..total {
            self.run_until(t0 + (k + 1) * step);
            let owner = tasks(k);
            let sk = self.sk();
            match self.port(src, dst) {
                Some(port) => {
                    let local = ip_port(src, port);
                    let tw = sk + 1;
                    self.s
                        .connect(owner, sk, src, port, dst)
                        .active_close(owner, sk, tw, &local, dst)
                        // The peer's FIN: the timewait socket moves to TIME_WAIT (re-armed).
                        .tw(tw, &local, dst, TwOp::Start, TimeWait, 60 * 250);
                    let pool = (src.to_string(), dst.to_string());
                    self.expiries.push_back((
                        self.s.t + 60 * SEC,
                        tw,
                        local,
                        dst.to_string(),
                        pool,
                    ));
                }
                None => {
                    self.s.exhausted(owner, sk, src, dst);
                }
            }
        }
        self.s.run(&mut self.m);
        self
    }

    /// `count` connections opened (evenly over `secs`, or at once) and kept ESTABLISHED.
    pub fn open(&mut self, owner: Task, src: &str, dst: &str, count: u32, secs: f64) -> &mut Sim {
        let step = (secs * SEC as f64 / f64::from(count.max(1))) as u64;
        let t0 = self.s.t;
        for k in 0..u64::from(count) {
            self.run_until(t0 + (k + 1) * step);
            let sk = self.sk();
            match self.port(src, dst) {
                Some(port) => {
                    self.s.connect(owner, sk, src, port, dst);
                    self.established
                        .push((sk, ip_port(src, port), dst.to_string()));
                }
                None => {
                    self.s.exhausted(owner, sk, src, dst);
                }
            }
        }
        self.s.run(&mut self.m);
        self
    }

    /// Every connection `open` keeps toward `dst` ends by RST (`SO_LINGER` 0: no TIME_WAIT),
    /// at once.
    pub fn reset_all(&mut self, src: &str, dst: &str) -> &mut Sim {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.established)
            .into_iter()
            .partition(|(_, _, d)| d == dst);
        self.established = kept;
        for (sk, local, d) in gone {
            self.s.reset(sk, &local, &d);
            if let Some(port) = local.rsplit(':').next().and_then(|p| p.parse().ok()) {
                self.release((src.to_string(), d), port);
            }
        }
        self.s.run(&mut self.m);
        self
    }

    /// `count` connects that never complete (SYN_SENT, port not yet visible).
    pub fn syn_sent(&mut self, owner: Task, src: &str, dst: &str, count: u32) -> &mut Sim {
        for _ in 0..count {
            let sk = self.sk();
            let unbound = ip_port(src, 0);
            self.s.state(owner, sk, &unbound, dst, Close, SynSent);
        }
        self.s.run(&mut self.m);
        self
    }

    /// `count` connections whose peer closes them; the process never does.
    pub fn close_wait(&mut self, owner: Task, src: &str, dst: &str, count: u32) -> &mut Sim {
        for _ in 0..count {
            let sk = self.sk();
            if let Some(port) = self.port(src, dst) {
                let local = ip_port(src, port);
                self.s.connect(owner, sk, src, port, dst).state(
                    swapper(),
                    sk,
                    &local,
                    dst,
                    Established,
                    CloseWait,
                );
            }
        }
        self.s.run(&mut self.m);
        self
    }

    /// `count` sockets bound to port 0 (odd ports first, as bind() prefers) and connected to
    /// `dsts` in turn, kept ESTABLISHED. `no_port`: with IP_BIND_ADDRESS_NO_PORT.
    pub fn bind_connect(
        &mut self,
        owner: Task,
        src: &str,
        dsts: &[&str],
        count: u32,
        no_port: bool,
    ) -> &mut Sim {
        let (lo, hi) = self.range;
        let mut odd = (lo..=hi)
            .filter(|p| p % 2 == 1)
            .chain((lo..=hi).filter(|p| p % 2 == 0));
        for k in 0..count {
            let dst = dsts[k as usize % dsts.len()];
            let sk = self.sk();
            if no_port {
                self.s.bind_ok(owner, sk, &ip_port(src, 0), 0);
                if let Some(port) = self.port(src, dst) {
                    self.s.connect(owner, sk, src, port, dst);
                }
                continue;
            }
            let Some(port) = odd.by_ref().find(|p| !self.held.contains(p)) else {
                self.s.call_err(
                    owner,
                    crate::event::CallKind::Bind,
                    Some(sk),
                    &ip_port(src, 0),
                    libc::EADDRINUSE,
                );
                continue;
            };
            self.held.insert(port);
            let local = ip_port(src, port);
            self.s
                .bind_ok(owner, sk, &ip_port(src, 0), port)
                .state(owner, sk, &local, dst, Close, SynSent)
                .state(swapper(), sk, &local, dst, SynSent, Established);
        }
        self.s.run(&mut self.m);
        self
    }
}
