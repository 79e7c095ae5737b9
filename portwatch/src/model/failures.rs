//! Failed `connect()`/`bind()` calls: totals by errno, by process and by destination, repeats
//! grouped by (errno, call, command, address), and a bounded log of the most recent ones. Every
//! table keyed by something the traced machine chooses is bounded ([`Bounded`]).
//!
//! The syscall's return is the only place the errno is visible (docs/kernel-facts.md "What the
//! tracepoint shows": exhaustion is SYN_SENT → CLOSE with source port 0, then `connect()` returning
//! EADDRNOTAVAIL, both in the caller's context), so the caller here *is* the owner.

use std::{
    collections::VecDeque,
    hash::Hash,
    net::{IpAddr, SocketAddr},
};

use rustc_hash::FxHashMap;
use serde::{Serialize, Serializer};

use super::pool::PoolKey;
use crate::event::{CallKind, Comm, Errno};

/// One failed call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureRecord {
    pub at_ns: u64,
    pub netns: u32,
    pub pid: u32,
    pub ppid: u32,
    pub comm: Comm,
    pub call: CallKind,
    pub errno: Errno,
    /// connect: the destination; bind: the requested local address.
    pub addr: SocketAddr,
    /// The source address the kernel had chosen, when the socket was seen.
    pub src: Option<IpAddr>,
    /// The pool the failure belongs to (connect, when the socket was seen).
    pub pool: Option<PoolKey>,
    #[serde(serialize_with = "hex_opt")]
    pub sk: Option<u64>,
    /// The caller's cgroup id (0 unknown).
    #[serde(skip)]
    pub cgroup: u64,
    /// Where the caller lives, filled in when read (`Model::failures`).
    #[serde(flatten)]
    pub workload: Option<super::WorkloadRef>,
}

fn hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:#x}")),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailCount {
    pub count: u64,
    pub first_ns: u64,
    pub last_ns: u64,
}

impl FailCount {
    pub(crate) fn hit(&mut self, now: u64) {
        if self.count == 0 {
            self.first_ns = now;
        }
        self.count += 1;
        self.last_ns = now;
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct ProcFailKey {
    pub pid: u32,
    pub comm: Comm,
    pub call: CallKind,
    pub errno: Errno,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct DestFailKey {
    pub netns: u32,
    pub addr: SocketAddr,
    pub call: CallKind,
    pub errno: Errno,
}

/// Repeats of one failure: the same errno from the same call of the same command toward the
/// same address, in one network namespace. The command, not the pid: a shell loop of `curl`s
/// or a pool of workers fails from a new or another pid each time, and pids wrap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct GroupKey {
    pub netns: u32,
    pub comm: Comm,
    pub call: CallKind,
    pub errno: Errno,
    pub addr: SocketAddr,
}

/// Distinct pids a group counts exactly; past it, [`FailureGroup::pids`] is a lower bound.
pub const GROUP_PIDS: usize = 8;

/// A group's counts and what its newest failure said.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GroupHits {
    pub count: FailCount,
    pub pid: u32,
    pub ppid: u32,
    pub src: Option<IpAddr>,
    pub pool: Option<PoolKey>,
    pids: [u32; GROUP_PIDS],
    n_pids: u8,
}

impl GroupHits {
    fn hit(&mut self, r: &FailureRecord) {
        self.count.hit(r.at_ns);
        self.pid = r.pid;
        self.ppid = r.ppid;
        self.src = r.src.or(self.src);
        self.pool = r.pool.or(self.pool);
        let n = usize::from(self.n_pids);
        if n < GROUP_PIDS && !self.pids[..n].contains(&r.pid) {
            self.pids[n] = r.pid;
            self.n_pids += 1;
        }
    }

    /// Distinct pids seen, at most [`GROUP_PIDS`].
    pub fn pids(&self) -> u32 {
        u32::from(self.n_pids)
    }
}

/// When a value of a [`Bounded`] map was last hit (what eviction goes by).
pub(crate) trait LastHit {
    fn last_ns(&self) -> u64;
}

impl LastHit for FailCount {
    fn last_ns(&self) -> u64 {
        self.last_ns
    }
}

impl LastHit for GroupHits {
    fn last_ns(&self) -> u64 {
        self.count.last_ns
    }
}

/// A map with at most `cap` keys: when full, the 1/8 least recently hit go (counted).
pub(crate) struct Bounded<K, V = FailCount> {
    pub map: FxHashMap<K, V>,
    pub evicted: u64,
}

impl<K: Hash + Eq + Copy, V: Default + LastHit> Bounded<K, V> {
    fn new() -> Self {
        Bounded {
            map: FxHashMap::default(),
            evicted: 0,
        }
    }

    /// The value of `k`, made room for (and defaulted) when new.
    fn entry(&mut self, k: K, cap: usize) -> &mut V {
        if !self.map.contains_key(&k) && self.map.len() >= cap {
            let mut v: Vec<(u64, K)> = self.map.iter().map(|(k, c)| (c.last_ns(), *k)).collect();
            v.sort_unstable_by_key(|e| e.0);
            for (_, k) in v.iter().take((cap / 8).max(1)) {
                self.map.remove(k);
                self.evicted += 1;
            }
        }
        self.map.entry(k).or_default()
    }
}

pub(crate) struct Failures {
    pub by_errno: FxHashMap<Errno, FailCount>,
    /// Per network namespace, call and errno: never evicted (a few errnos per namespace), so
    /// that these totals only grow (the exporter's `_total` counters).
    pub by_netns: FxHashMap<(u32, CallKind, Errno), FailCount>,
    pub by_process: Bounded<ProcFailKey>,
    pub by_dest: Bounded<DestFailKey>,
    pub groups: Bounded<GroupKey, GroupHits>,
    pub recent: VecDeque<FailureRecord>,
    pub total: u64,
}

impl Failures {
    pub fn new() -> Failures {
        Failures {
            by_errno: FxHashMap::default(),
            by_netns: FxHashMap::default(),
            by_process: Bounded::new(),
            by_dest: Bounded::new(),
            groups: Bounded::new(),
            recent: VecDeque::new(),
            total: 0,
        }
    }

    pub fn record(&mut self, r: FailureRecord, key_cap: usize, log_cap: usize) {
        let now = r.at_ns;
        self.total += 1;
        self.by_errno.entry(r.errno).or_default().hit(now);
        self.by_netns
            .entry((r.netns, r.call, r.errno))
            .or_default()
            .hit(now);
        let process = ProcFailKey {
            pid: r.pid,
            comm: r.comm,
            call: r.call,
            errno: r.errno,
        };
        self.by_process.entry(process, key_cap).hit(now);
        let dest = DestFailKey {
            netns: r.netns,
            addr: r.addr,
            call: r.call,
            errno: r.errno,
        };
        self.by_dest.entry(dest, key_cap).hit(now);
        let group = GroupKey {
            netns: r.netns,
            comm: r.comm,
            call: r.call,
            errno: r.errno,
            addr: r.addr,
        };
        self.groups.entry(group, key_cap).hit(&r);
        if log_cap > 0 {
            if self.recent.len() >= log_cap {
                self.recent.pop_front();
            }
            self.recent.push_back(r);
        }
    }

    pub fn evicted(&self) -> u64 {
        self.by_process.evicted + self.by_dest.evicted + self.groups.evicted
    }
}

/// Failed calls of one kind with one errno in one network namespace, since the model started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct NetnsFailures {
    pub netns: u32,
    pub call: CallKind,
    pub errno: Errno,
    pub count: u64,
}

impl super::Model {
    /// Failure totals per (netns, call, errno), in that order; they only grow.
    pub fn failures_by_netns(&self) -> Vec<NetnsFailures> {
        let mut v: Vec<NetnsFailures> = self
            .failures
            .by_netns
            .iter()
            .map(|(&(netns, call, errno), c)| NetnsFailures {
                netns,
                call,
                errno,
                count: c.count,
            })
            .collect();
        v.sort_by_key(|f| (f.netns, f.call as u8, f.errno));
        v
    }
}
