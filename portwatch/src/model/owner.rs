//! Owners (processes) and links (owner × pool, listener × remote IP).
//!
//! docs/kernel-facts.md "What the tracepoint shows": only CLOSE → SYN_SENT (`connect()`), CLOSE →
//! LISTEN (`listen()`), `bind()` and a failing `connect()` run in the owner's context; every later
//! transition runs in softirq context with an unrelated task. So the owner is taken at those
//! moments and remembered per socket, never read from a later event.
//!
//! Processes are keyed by (pid, comm): an `exec` (same pid, new comm) or a recycled pid starts
//! a new entry instead of re-labelling old sockets. Short-lived processes (a `curl` loop) share
//! (comm, ppid), which views use to group them.

use rustc_hash::FxHashMap;

use super::{addr::Ip, counts::StateCounts, slots::Slots, socket::NONE};
use crate::event::{Comm, Task};

#[derive(Clone, Debug)]
pub(crate) struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub comm: Comm,
    /// The cgroup id it was last seen in (0: never seen in owner context).
    pub cgroup: u64,
    /// The file name of its executable, once learned (`exes.rs`).
    pub exe: Option<std::sync::Arc<str>>,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Sockets, listener entries and links that name this process.
    pub refs: u32,
    /// Sockets it owns right now.
    pub sockets: u32,
    /// `connect()` calls seen (CLOSE → SYN_SENT).
    pub connects: u64,
    /// Failed `connect()`/`bind()` calls.
    pub failures: u64,
}

#[derive(Default)]
pub(crate) struct Procs {
    map: FxHashMap<(u32, Comm), u32>,
    slots: Slots<Proc>,
    pub evicted: u64,
    /// Cgroup ids that processes entered since the model last asked (see `workloads.rs`).
    pub new_cgroups: Vec<u64>,
    /// Processes created since the model last asked what they execute (see `exes.rs`).
    pub new_procs: super::exes::NewProcs,
}

impl Procs {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The process running `task`, created if new. When `cap` processes are tracked, those
    /// referenced by nothing and idle longest are evicted (1/8 of the cap at a time); `None`
    /// when nothing can go (the socket then has no known owner).
    pub fn intern(&mut self, task: &Task, now_ns: u64, cap: usize) -> Option<u32> {
        let key = (task.pid, task.comm);
        if let Some(&id) = self.map.get(&key) {
            let p = self.get_mut(id);
            p.last_ns = p.last_ns.max(now_ns);
            if task.ppid != 0 {
                p.ppid = task.ppid;
            }
            let moved = task.cgroup != 0 && task.cgroup != p.cgroup;
            if moved {
                p.cgroup = task.cgroup;
                self.new_cgroups.push(task.cgroup);
            }
            return Some(id);
        }
        if self.map.len() >= cap {
            self.evict((cap / 8).max(1));
            if self.map.len() >= cap {
                return None;
            }
        }
        let p = Proc {
            pid: task.pid,
            ppid: task.ppid,
            comm: task.comm,
            cgroup: task.cgroup,
            exe: None,
            first_ns: now_ns,
            last_ns: now_ns,
            refs: 0,
            sockets: 0,
            connects: 0,
            failures: 0,
        };
        if task.cgroup != 0 {
            self.new_cgroups.push(task.cgroup);
        }
        let id = self.slots.insert(p);
        self.map.insert(key, id);
        self.new_procs.push(task.pid, task.comm);
        Some(id)
    }

    fn evict(&mut self, n: usize) {
        let mut idle: Vec<(u64, u32)> = self
            .iter()
            .filter(|(_, p)| p.refs == 0)
            .map(|(id, p)| (p.last_ns, id))
            .collect();
        idle.sort_unstable();
        for &(_, id) in idle.iter().take(n) {
            if let Some(p) = self.slots.remove(id) {
                self.map.remove(&(p.pid, p.comm));
                self.evicted += 1;
            }
        }
    }

    /// The process (pid, comm), if tracked.
    pub fn find_mut(&mut self, pid: u32, comm: Comm) -> Option<&mut Proc> {
        let id = *self.map.get(&(pid, comm))?;
        self.slots.get_mut(id)
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Proc {
        self.slots
            .get_mut(id)
            .expect("process ids are only held while referenced")
    }

    pub fn opt(&self, id: u32) -> Option<&Proc> {
        if id == NONE {
            return None;
        }
        self.slots.get(id)
    }

    pub fn retain(&mut self, id: u32) {
        if id != NONE {
            self.get_mut(id).refs += 1;
        }
    }

    pub fn release(&mut self, id: u32) {
        if id != NONE {
            let p = self.get_mut(id);
            p.refs = p.refs.saturating_sub(1);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Proc)> {
        self.slots.iter()
    }
}

/// What a link aggregates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum LinkKey {
    /// Outbound sockets of one owner (or [`NONE`]) in one pool.
    Out { owner: u32, pool: u32 },
    /// Accepted sockets of one listener from one remote IP.
    In { listener: u32, rip: Ip },
}

#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub key: LinkKey,
    pub counts: StateCounts,
    /// Counted sockets whose port came from bind-before-connect (`flag::BIND_ANY`).
    pub bind_any: u32,
    /// Sockets pointing here; the link is freed at 0.
    pub refs: u32,
}

/// Interned links. A link lives while sockets use it, so there are at most as many as
/// tracked sockets (in practice owners × destinations + listeners × client IPs).
#[derive(Default)]
pub(crate) struct Links {
    map: FxHashMap<LinkKey, u32>,
    slots: Slots<Link>,
}

impl Links {
    /// The link's id and whether it was just created (the caller then retains what the key
    /// names).
    pub fn intern(&mut self, key: LinkKey) -> (u32, bool) {
        if let Some(&id) = self.map.get(&key) {
            return (id, false);
        }
        let l = Link {
            key,
            counts: StateCounts::default(),
            bind_any: 0,
            refs: 0,
        };
        let id = self.slots.insert(l);
        self.map.insert(key, id);
        (id, true)
    }

    pub fn get(&self, id: u32) -> &Link {
        self.slots
            .get(id)
            .expect("link ids are only held while referenced")
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Link {
        self.slots
            .get_mut(id)
            .expect("link ids are only held while referenced")
    }

    /// Drops one socket's reference; returns the key when the link is freed.
    pub fn release(&mut self, id: u32) -> Option<LinkKey> {
        let l = self.get_mut(id);
        l.refs -= 1;
        if l.refs > 0 {
            return None;
        }
        let key = l.key;
        self.slots.remove(id);
        self.map.remove(&key);
        Some(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Link)> {
        self.slots.iter()
    }
}
