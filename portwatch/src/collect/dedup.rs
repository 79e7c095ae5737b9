//! Records a rescuer wrote although the primary had written them already.
//!
//! Each BTF-tracepoint hook has a primary and a rescuer program (`portwatch-ebpf/src/nest.rs`):
//! the rescuer does the work only for firings the kernel skipped the primary for. Under
//! floods, about once in 10⁵–10⁶ firings, a rescuer does the work for a firing whose primary
//! had run too (seen as a rescue with no recursion miss to match it; cause not found yet).
//! Its record is then an exact repeat of the primary's: same socket, same transition (or the
//! same timewait operation), written a few microseconds to a few milliseconds later. Every
//! rescued record is checked against the recent primary records here; a repeat is dropped
//! and counted (`Counters::duplicates`), so neither the model nor the accounting sees a
//! transition twice.

use crate::event::{Event, EventKind};

/// Primary records remembered: at 50,000 records/s, the last ~80 ms.
const RECENT: usize = 4096;
/// A rescued record repeats a primary one only if written within this time after it.
const WINDOW_NS: u64 = 1_000_000_000;

/// What makes two records the same firing's.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Key {
    /// Socket or timewait socket address.
    addr: u64,
    /// Transition (old << 8 | new) or timewait operation | 0x10000.
    what: u32,
    /// Local and remote ports.
    ports: [u16; 2],
}

fn key(ev: &Event) -> Option<Key> {
    let (addr, what) = match &ev.kind {
        EventKind::State(s) => (s.sk, (s.old as u32) << 8 | s.new as u32),
        EventKind::TimeWait(t) => (t.tw, 0x10000 | t.op as u32),
        EventKind::Call(_) => return None,
    };
    Some(Key {
        addr,
        what,
        ports: ev.ports(),
    })
}

/// The last [`RECENT`] primary records' keys, with their timestamps.
pub struct Dedup {
    keys: Box<[(Key, u64)]>,
    next: usize,
}

impl Default for Dedup {
    fn default() -> Self {
        Dedup {
            keys: vec![(Key::default(), 0); RECENT].into_boxed_slice(),
            next: 0,
        }
    }
}

impl Dedup {
    /// Whether `ev` (written by a rescuer when `rescued`) repeats a recent primary record;
    /// remembers primary records. One store per primary record; a scan only for rescued
    /// ones (hundreds per second at most).
    pub fn is_repeat(&mut self, ev: &Event, rescued: bool) -> bool {
        let Some(k) = key(ev) else {
            return false;
        };
        if !rescued {
            self.keys[self.next] = (k, ev.ts_ns);
            self.next = (self.next + 1) % RECENT;
            return false;
        }
        self.keys
            .iter()
            .any(|&(p, ts)| p == k && ev.ts_ns >= ts && ev.ts_ns - ts <= WINDOW_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comm, StateChange, Task, TcpState, TimeWait, TwOp};

    const TASK: Task = Task {
        cgroup: 0,
        pid: 1,
        tid: 1,
        ppid: 0,
        comm: Comm([0; 16]),
    };

    fn state(ts_ns: u64, sk: u64, sport: u16, old: TcpState, new: TcpState) -> Event {
        Event {
            ts_ns,
            netns: 1,
            task: TASK,
            kind: EventKind::State(StateChange {
                sk,
                local: format!("10.0.0.1:{sport}").parse().unwrap(),
                remote: "10.0.0.2:80".parse().unwrap(),
                old,
                new,
            }),
        }
    }

    fn tw(ts_ns: u64, addr: u64, op: TwOp) -> Event {
        Event {
            ts_ns,
            netns: 1,
            task: TASK,
            kind: EventKind::TimeWait(TimeWait {
                tw: addr,
                local: "10.0.0.1:40000".parse().unwrap(),
                remote: "10.0.0.2:80".parse().unwrap(),
                op,
                substate: TcpState::TimeWait,
                remaining_jiffies: 0,
            }),
        }
    }

    use TcpState::*;

    #[test]
    fn a_rescued_repeat_of_a_primary_record_is_dropped() {
        let mut d = Dedup::default();
        assert!(!d.is_repeat(&state(1_000, 0xa0, 40000, SynSent, Established), false));
        assert!(d.is_repeat(&state(60_000, 0xa0, 40000, SynSent, Established), true));
        assert!(!d.is_repeat(&tw(2_000, 0xb0, TwOp::Start), false));
        assert!(d.is_repeat(&tw(3_000, 0xb0, TwOp::Start), true));
    }

    #[test]
    fn genuine_rescues_are_kept() {
        let mut d = Dedup::default();
        d.is_repeat(&state(1_000, 0xa0, 40000, SynSent, Established), false);
        d.is_repeat(&tw(1_000, 0xb0, TwOp::Start), false);
        // Another transition of the same socket, the same transition of another socket or
        // of the same address reused by another connection (another port), another
        // timewait operation: all real.
        for ev in [
            state(2_000, 0xa0, 40000, Established, FinWait1),
            state(2_000, 0xa8, 40000, SynSent, Established),
            state(2_000, 0xa0, 40001, SynSent, Established),
            tw(2_000, 0xb0, TwOp::Expire),
        ] {
            assert!(!d.is_repeat(&ev, true), "{ev:?}");
        }
        // The same key long after, or before: not a repeat of that record.
        assert!(!d.is_repeat(
            &state(1_000 + 2 * WINDOW_NS, 0xa0, 40000, SynSent, Established),
            true
        ));
        assert!(!d.is_repeat(&state(500, 0xa0, 40000, SynSent, Established), true));
        // Rescued records are not remembered: a second rescued copy is kept.
        assert!(!d.is_repeat(&state(3_000, 0xc0, 40000, Listen, SynRecv), true));
        assert!(!d.is_repeat(&state(3_100, 0xc0, 40000, Listen, SynRecv), true));
    }

    #[test]
    fn only_the_last_records_are_remembered() {
        let mut d = Dedup::default();
        d.is_repeat(&state(1_000, 0xa0, 40000, SynSent, Established), false);
        for i in 0..RECENT as u64 {
            d.is_repeat(&state(1_000 + i, 0x1000 + i, 1, Close, SynSent), false);
        }
        assert!(!d.is_repeat(&state(9_000, 0xa0, 40000, SynSent, Established), true));
    }
}
