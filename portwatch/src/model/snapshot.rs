//! Ground truth from sock_diag + /proc: merged at start-up so the first picture is right, and
//! compared later to correct drift (lost events, evictions, sockets closed without an event,
//! such as a bound socket closed before connecting).
//!
//! Snapshot sockets have no kernel address; the first event with their namespace + 4-tuple
//! adopts them (see `find_unadopted`). Their age is a lower bound (since = snapshot time).
//!
//! A dump is not atomic and events keep arriving, so reconciliation leaves alone what changed
//! after `taken_at_ns`: model sockets newer than the snapshot are kept, and snapshot sockets
//! whose 4-tuple the model removed after it are not re-added.

use std::{collections::VecDeque, fmt};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{
    Model, REMOVED_SLOTS,
    addr::Tuple,
    counts::StateCounts,
    input::{Owner, SnapSocket, SystemSnapshot},
    pool::PoolKey,
    socket::{NONE, Role, Sock, flag},
};
use crate::event::{Comm, Task, TcpState};

/// One count the model had wrong, found by [`Model::reconcile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Correction {
    pub at_ns: u64,
    pub netns: u32,
    pub scope: CorrectionScope,
    /// What the model counted before.
    pub model: u32,
    /// What the kernel listed.
    pub kernel: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CorrectionScope {
    /// Sockets of the namespace in one state.
    State { state: TcpState },
    /// Sockets of one pool (every state).
    Pool { pool: PoolKey },
}

impl Correction {
    /// `kernel − model`: positive when the model had missed sockets.
    pub fn delta(&self) -> i64 {
        i64::from(self.kernel) - i64::from(self.model)
    }
}

impl fmt::Display for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            CorrectionScope::State { state } => write!(f, "netns {} {state}", self.netns)?,
            CorrectionScope::Pool { pool } => {
                write!(f, "netns {} pool {} > {}", self.netns, pool.src, pool.dst)?
            }
        }
        write!(
            f,
            ": model had {}, kernel lists {} ({:+})",
            self.model,
            self.kernel,
            self.delta()
        )
    }
}

/// Port-less outbound sockets by the hash of their 4-tuple (port 0), built on first need.
type Portless = FxHashMap<u64, Vec<u32>>;

/// Which model sockets a snapshot socket in `state` can be.
fn same_class(s: &Sock, state: TcpState) -> bool {
    match state {
        TcpState::TimeWait => s.has(flag::TW),
        TcpState::FinWait2 => matches!(s.role, Role::Outbound | Role::Inbound),
        TcpState::Listen => s.role == Role::Listener,
        TcpState::BoundInactive => s.role == Role::Bound,
        _ => !s.has(flag::TW) && matches!(s.role, Role::Outbound | Role::Inbound),
    }
}

/// Listeners first (accepted sockets are classified by them), then bound sockets, then the rest.
fn order(state: TcpState) -> u8 {
    match state {
        TcpState::Listen => 0,
        TcpState::BoundInactive => 1,
        _ => 2,
    }
}

impl Model {
    /// Merges the sockets and sysctls of a start-up snapshot (nothing is removed).
    pub fn load_snapshot(&mut self, snap: &SystemSnapshot, now_ns: u64) {
        self.clock(now_ns);
        self.merge(snap, now_ns, false);
    }

    /// Compares the model with ground truth, namespace by namespace (only those listed), and
    /// corrects it: missing sockets are added, sockets the kernel no longer has are removed,
    /// wrong states fixed. Returns (and logs, and counts) every per-state and per-pool count
    /// that was off.
    pub fn reconcile(&mut self, snap: &SystemSnapshot, now_ns: u64) -> Vec<Correction> {
        self.clock(now_ns);
        self.counters.reconciliations += 1;
        let covered: FxHashSet<u32> = snap.namespaces.iter().map(|n| n.netns).collect();
        let before_states: FxHashMap<u32, StateCounts> = covered
            .iter()
            .filter_map(|inode| {
                let ns = *self.ns_index.get(inode)?;
                Some((*inode, self.netns[ns as usize].totals))
            })
            .collect();
        let before_pools: FxHashMap<u32, u32> = self
            .pools
            .iter()
            .filter(|(_, p)| covered.contains(&p.key.netns))
            .map(|(id, p)| (id, p.counts.total()))
            .collect();
        let truth_pools = self.merge(snap, now_ns, true);

        let lists_bound = snap
            .namespaces
            .iter()
            .flat_map(|n| &n.sockets)
            .any(|s| s.state == TcpState::BoundInactive);
        let mut out = Vec::new();
        for n in &snap.namespaces {
            let mut truth = StateCounts::default();
            for s in &n.sockets {
                truth.add(s.state, 1);
            }
            let before = before_states.get(&n.netns).copied().unwrap_or_default();
            for st in TcpState::ALL {
                // CLOSE sockets are never tracked (they hold nothing); bound ones only when the
                // kernel lists them.
                if st == TcpState::Close || (st == TcpState::BoundInactive && !lists_bound) {
                    continue;
                }
                if before.get(st) != truth.get(st) {
                    out.push(Correction {
                        at_ns: now_ns,
                        netns: n.netns,
                        scope: CorrectionScope::State { state: st },
                        model: before.get(st),
                        kernel: truth.get(st),
                    });
                }
            }
        }
        let mut pool_ids: Vec<u32> = before_pools
            .keys()
            .chain(truth_pools.keys())
            .copied()
            .collect::<FxHashSet<u32>>()
            .into_iter()
            .collect();
        pool_ids.sort_unstable();
        for id in pool_ids {
            let (model, kernel) = (
                before_pools.get(&id).copied().unwrap_or(0),
                truth_pools.get(&id).copied().unwrap_or(0),
            );
            if model != kernel {
                let key = self.pools.get(id).key;
                out.push(Correction {
                    at_ns: now_ns,
                    netns: key.netns,
                    scope: CorrectionScope::Pool { pool: key.public() },
                    model,
                    kernel,
                });
            }
        }
        self.counters.corrections += out.len() as u64;
        for c in &out {
            push_bounded(
                &mut self.corrections,
                c.clone(),
                self.cfg.correction_log_len,
            );
        }
        out
    }

    /// Merges a snapshot; with `prune`, also removes what the kernel no longer lists. Returns
    /// the snapshot's socket count per pool (for reconciliation).
    fn merge(&mut self, snap: &SystemSnapshot, now_ns: u64, prune: bool) -> FxHashMap<u32, u32> {
        let taken = if snap.taken_at_ns == 0 {
            now_ns
        } else {
            snap.taken_at_ns
        };
        let lists_bound = snap
            .namespaces
            .iter()
            .flat_map(|n| &n.sockets)
            .any(|s| s.state == TcpState::BoundInactive);
        let mut seen: FxHashSet<u32> = FxHashSet::default();
        let mut portless: Option<Portless> = None;
        let mut truth_pools: FxHashMap<u32, u32> = FxHashMap::default();
        for n in &snap.namespaces {
            if let Some(s) = &n.sysctls {
                self.set_sysctls(n.netns, s.clone());
            } else {
                self.ns(n.netns);
            }
            let mut socks: Vec<&SnapSocket> = n.sockets.iter().collect();
            socks.sort_by_key(|s| order(s.state));
            for ss in socks {
                let tuple = Tuple::new(n.netns, ss.local, ss.remote);
                let found = self.socks.find_tuple_idx(&tuple, |i, s| {
                    s.has(flag::COUNTED) && same_class(s, ss.state) && !seen.contains(&i)
                });
                let found = found.or_else(|| {
                    let i = self.portless_match(&mut portless, &tuple, ss.state, &seen)?;
                    self.learn_port(i, tuple);
                    Some(i)
                });
                let i = match found {
                    Some(i) => {
                        self.refresh(i, ss, taken, prune);
                        i
                    }
                    None => {
                        if prune && self.removed_since(&tuple, taken) {
                            continue;
                        }
                        let Some(i) = self.add_snapshot_socket(ss, tuple, taken) else {
                            continue;
                        };
                        if prune {
                            self.counters.reconcile_added += 1;
                        } else {
                            self.counters.snapshot_sockets_loaded += 1;
                        }
                        i
                    }
                };
                seen.insert(i);
                if let Some(p) = self.pool_of(self.socks.get(i)) {
                    *truth_pools.entry(p).or_default() += 1;
                }
            }
        }
        if prune {
            let covered: FxHashSet<u32> = snap.namespaces.iter().map(|n| n.netns).collect();
            let gone: Vec<u32> = self
                .socks
                .iter()
                .filter(|(i, s)| {
                    covered.contains(&s.tuple.netns)
                        && s.since_ns <= taken
                        && !seen.contains(i)
                        && (s.role != Role::Bound || lists_bound)
                })
                .map(|(i, _)| i)
                .collect();
            for i in gone {
                if self.socks.get(i).has(flag::COUNTED) {
                    self.counters.reconcile_removed += 1;
                }
                self.drop_sock(i);
            }
        }
        truth_pools
    }

    /// A tracked outbound socket whose port the model never learnt (its `connect()` is
    /// still in SYN_SENT and its port was not reported) that can be this snapshot socket:
    /// same namespace, addresses and destination port, in a state it can have reached. It is
    /// the same socket — matching it keeps its owner, where removing it and adding the
    /// snapshot's would forget who made it.
    fn portless_match(
        &self,
        portless: &mut Option<Portless>,
        t: &Tuple,
        state: TcpState,
        seen: &FxHashSet<u32>,
    ) -> Option<u32> {
        if t.lport == 0 || !matches!(state, TcpState::SynSent | TcpState::Established) {
            return None;
        }
        let index = portless.get_or_insert_with(|| {
            let mut m: Portless = FxHashMap::default();
            for (i, s) in self.socks.iter() {
                if s.tuple.lport == 0
                    && s.role == Role::Outbound
                    && s.has(flag::COUNTED)
                    && !s.has(flag::TW)
                    && s.state == TcpState::SynSent
                {
                    m.entry(s.tuple.hash()).or_default().push(i);
                }
            }
            m
        });
        let key = Tuple { lport: 0, ..*t };
        let slots = index.get_mut(&key.hash())?;
        let pos = slots
            .iter()
            .position(|&i| self.socks.get(i).tuple == key && !seen.contains(&i))?;
        Some(slots.swap_remove(pos))
    }

    /// A snapshot socket the model already has: fix its state (if it has not changed since the
    /// snapshot) and give it the snapshot's owner if it had none.
    fn refresh(&mut self, i: u32, ss: &SnapSocket, taken: u64, prune: bool) {
        let s = *self.socks.get(i);
        if s.state != ss.state && s.since_ns <= taken && s.role != Role::Bound {
            self.set_state(i, ss.state, s.since_ns);
            if prune {
                self.counters.reconcile_state_fixed += 1;
            }
        }
        if s.owner == NONE
            && let Some(o) = &ss.owner
        {
            let owner = self.snapshot_owner(o);
            if owner != NONE {
                self.reown(i, owner);
            }
        }
    }

    fn snapshot_owner(&mut self, o: &Owner) -> u32 {
        let task = Task {
            cgroup: o.cgroup,
            pid: o.pid,
            tid: o.pid,
            ppid: 0,
            comm: Comm::new(&o.comm),
        };
        self.owner_of(&task)
    }

    fn add_snapshot_socket(&mut self, ss: &SnapSocket, tuple: Tuple, taken: u64) -> Option<u32> {
        if ss.state == TcpState::Close {
            return None;
        }
        self.make_room();
        let owner = match &ss.owner {
            Some(o) => self.snapshot_owner(o),
            None => NONE,
        };
        let ns = self.ns(tuple.netns);
        let mut s = Sock {
            sk: 0,
            since_ns: taken,
            tuple,
            owner,
            link: NONE,
            flags: flag::COUNTED | flag::SNAPSHOT,
            ns,
            state: ss.state,
            role: Role::Outbound,
            closer: super::Closer::None,
        };
        match ss.state {
            TcpState::Listen => {
                s.role = Role::Listener;
                s.link = self.listener_entry(&tuple, owner);
                if tuple.lport != 0 {
                    s.flags |= flag::BOUND_PORT;
                }
            }
            TcpState::BoundInactive => {
                s.role = Role::Bound;
                if tuple.lport != 0 {
                    s.flags |= flag::BOUND_PORT;
                }
            }
            _ => {
                if ss.state == TcpState::TimeWait {
                    s.flags |= flag::TW;
                    s.closer = super::Closer::Local;
                }
                match self.listeners.find_for(tuple.netns, tuple.lip, tuple.lport) {
                    Some(l) => {
                        s.role = Role::Inbound;
                        if s.owner == NONE {
                            s.owner = self.listeners.get(l).owner;
                        }
                        s.link = self.in_link(l, tuple.rip);
                    }
                    None => s.link = self.out_link(owner, &tuple, ns),
                }
                if self.consumes(&s) {
                    s.flags |= flag::CONSUMES;
                }
            }
        }
        Some(self.add(s))
    }

    fn removed_since(&self, t: &Tuple, taken: u64) -> bool {
        let h = t.hash();
        let (hh, ts) = self.removed[(h as usize) % REMOVED_SLOTS];
        hh == h && ts >= taken
    }
}

pub(super) fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if cap == 0 {
        return;
    }
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}
