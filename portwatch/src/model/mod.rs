//! The pure model: every event, snapshot and sysctl reading goes in; everything the views and
//! the explain engine show comes out (see `summary`). Synchronous, no I/O, no clock: time
//! comes from events (`ts_ns`, CLOCK_MONOTONIC) and from [`Model::tick`].
//!
//! What it tracks (FACTS.md is the source of every rule):
//! - live sockets keyed by kernel address and by namespace + 4-tuple ([`socket`]), each with
//!   state, owner, since-when and which side closed first;
//! - owners taken only in process context and inherited by accepted sockets ([`owner`],
//!   [`listener`]);
//! - TIME_WAIT from the timewait timer events ([`timewait`]);
//! - pools (namespace, source IP, destination IP:port) with capacity ([`capacity`]) and rates
//!   ([`rates`]); failures ([`failures`]); snapshot merge and reconciliation ([`snapshot`]).
//!
//! Memory is bounded by [`ModelConfig`]; whatever is evicted or does not match is counted in
//! [`ModelCounters`], never a panic.

mod addr;
mod apply;
mod capacity;
mod counts;
mod failures;
pub mod input;
mod listener;
mod owner;
mod pool;
mod rates;
mod read;
mod snapshot;
mod socket;
mod summary;
mod timewait;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::Serialize;

pub use capacity::CapacityBreakdown;
pub use counts::StateCounts;
pub use failures::{FailCount, FailureRecord};
pub use input::{NetnsSnapshot, Owner, SnapSocket, Sysctls, SystemSnapshot};
pub use pool::{CloseStats, PoolKey};
pub use rates::{HISTORY_S, RATE_WINDOW_S, RateStats};
pub use snapshot::{Correction, CorrectionScope};
pub use socket::{Closer, Role};
pub use summary::*;

use addr::{Ip, Tuple};
use capacity::PortSpace;
use failures::Failures;
use listener::Listeners;
use owner::{LinkKey, Links, Procs};
use pool::{PoolKeyInt, Pools};
use socket::{NONE, Sock, SockTable, flag};

use crate::event::{Event, EventKind, Task, TcpState};

const NS: u64 = 1_000_000_000;
/// A timewait timer cancelled with time left ends the TIME_WAIT unless a START for the same
/// timewait socket follows (a re-arm is CANCEL immediately followed by START on the same CPU);
/// this is how long the model waits for that START.
pub const TW_REARM_GRACE_NS: u64 = 100_000_000;
/// Recently removed 4-tuples remembered for reconciliation races (direct-mapped).
const REMOVED_SLOTS: usize = 4096;
/// Sockets whose port search failed, remembered until `connect()` returns EADDRNOTAVAIL.
const NOPORT_SLOTS: usize = 64;

/// Limits on what the model keeps.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Tracked sockets (TIME_WAIT entries included); beyond it the oldest-looking go first.
    pub max_sockets: usize,
    pub max_pools: usize,
    pub max_processes: usize,
    /// Keys in each failure table (by process, by destination).
    pub max_failure_keys: usize,
    /// Failures kept in the recent log.
    pub failure_log_len: usize,
    /// Corrections kept in the recent log.
    pub correction_log_len: usize,
}

impl Default for ModelConfig {
    fn default() -> ModelConfig {
        ModelConfig {
            max_sockets: 2_000_000,
            max_pools: 65_536,
            max_processes: 65_536,
            max_failure_keys: 4096,
            failure_log_len: 256,
            correction_log_len: 256,
        }
    }
}

/// Events the model could not place as expected. None is fatal; all are visible.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OddEvents {
    /// A transition of a socket never seen (it predates portwatch, or was evicted): tracked
    /// from here on, owner unknown.
    pub unknown_socket: u64,
    /// A socket the model did not know went to CLOSE.
    pub unknown_close: u64,
    /// The event's old state differs from the model's (a lost event).
    pub state_mismatch: u64,
    /// A known `sk` started a new life before its old one was seen to end.
    pub stale_replaced: u64,
    /// An accepted socket with no listener known on its port.
    pub accept_without_listener: u64,
    /// Timewait cancel/expire for a timewait socket never seen.
    pub tw_unknown: u64,
    /// TW_START with no live socket for that 4-tuple (owner unknown).
    pub tw_without_socket: u64,
    /// Successful `bind()` without a resolvable socket (cannot be tracked).
    pub bind_without_sk: u64,
    /// Sockets left without pool or owner because those tables were full.
    pub untracked: u64,
    /// Namespaces beyond the model's limit (65535), folded into namespace 0.
    pub netns_overflow: u64,
}

impl OddEvents {
    pub fn total(&self) -> u64 {
        self.unknown_socket
            + self.unknown_close
            + self.state_mismatch
            + self.stale_replaced
            + self.accept_without_listener
            + self.tw_unknown
            + self.tw_without_socket
            + self.bind_without_sk
            + self.untracked
            + self.netns_overflow
    }
}

/// The model's own health: what it holds, dropped, could not match, and corrected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelCounters {
    pub events: u64,
    pub sockets_tracked: u64,
    pub pools_tracked: u64,
    pub processes_tracked: u64,
    pub listeners_tracked: u64,
    pub sockets_evicted: u64,
    /// Evicted sockets by the state they were in.
    pub sockets_evicted_by_state: StateCounts,
    pub pools_evicted: u64,
    pub processes_evicted: u64,
    pub failure_keys_evicted: u64,
    pub odd: OddEvents,
    pub tw_started: u64,
    pub tw_expired: u64,
    pub tw_ended_early: u64,
    pub tw_reused: u64,
    pub tw_rearmed: u64,
    pub snapshot_sockets_loaded: u64,
    /// Snapshot sockets later matched to their kernel address by an event.
    pub snapshot_sockets_adopted: u64,
    pub reconciliations: u64,
    /// Count corrections made by reconciliation (see [`Correction`]).
    pub corrections: u64,
    pub reconcile_added: u64,
    pub reconcile_removed: u64,
    pub reconcile_state_fixed: u64,
    /// Heap bytes of the socket table (records + indexes).
    pub socket_table_bytes: u64,
}

/// One network namespace: its sysctls, port space and per-state totals.
pub(crate) struct Netns {
    pub inode: u32,
    pub sysctls: Sysctls,
    /// Sysctls never read: kernel defaults assumed.
    pub assumed: bool,
    pub ports: PortSpace,
    pub totals: StateCounts,
    /// Timewait sockets (either substate), for `tcp_max_tw_buckets`.
    pub tw_entries: u32,
}

impl Netns {
    #[cfg(test)]
    pub fn ports_held(&self) -> impl Iterator<Item = (&u16, &u32)> {
        self.ports.held()
    }

    fn new(inode: u32) -> Netns {
        let sysctls = Sysctls::kernel_defaults();
        Netns {
            inode,
            ports: PortSpace::new(&sysctls),
            sysctls,
            assumed: true,
            totals: StateCounts::default(),
            tw_entries: 0,
        }
    }
}

pub struct Model {
    cfg: ModelConfig,
    socks: SockTable,
    procs: Procs,
    links: Links,
    pools: Pools,
    listeners: Listeners,
    netns: Vec<Netns>,
    ns_index: FxHashMap<u32, u16>,
    failures: Failures,
    counters: ModelCounters,
    corrections: VecDeque<Correction>,
    /// Timewait sockets whose timer was cancelled with time left: (slot, tw, when).
    pending_cancel: VecDeque<(u32, u64, u64)>,
    noport: Vec<(u64, PoolKeyInt)>,
    noport_pos: usize,
    removed: Vec<(u64, u64)>,
    now_ns: u64,
    start_ns: Option<u64>,
}

impl Default for Model {
    fn default() -> Model {
        Model::new(ModelConfig::default())
    }
}

impl Model {
    pub fn new(cfg: ModelConfig) -> Model {
        let mut m = Model {
            cfg,
            socks: SockTable::default(),
            procs: Procs::default(),
            links: Links::default(),
            pools: Pools::default(),
            listeners: Listeners::default(),
            netns: Vec::new(),
            ns_index: FxHashMap::default(),
            failures: Failures::new(),
            counters: ModelCounters::default(),
            corrections: VecDeque::new(),
            pending_cancel: VecDeque::new(),
            noport: Vec::with_capacity(NOPORT_SLOTS),
            noport_pos: 0,
            removed: vec![(0, 0); REMOVED_SLOTS],
            now_ns: 0,
            start_ns: None,
        };
        m.ns(0);
        m
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Feeds one event.
    pub fn apply(&mut self, ev: &Event) {
        self.counters.events += 1;
        self.clock(ev.ts_ns);
        match &ev.kind {
            EventKind::State(s) => self.on_state(ev, s),
            EventKind::Call(c) => self.on_call(ev, c),
            EventKind::TimeWait(t) => self.on_timewait(ev, t),
        }
    }

    /// Advances time without an event: ends timewait sockets whose cancel was not a re-arm and
    /// rolls every pool's per-second history. O(pools); cheap at 4 Hz.
    pub fn tick(&mut self, now_ns: u64) {
        self.clock(now_ns);
        let sec = self.now_ns / NS;
        for p in self.pools.iter_mut() {
            let cur = p.in_use();
            p.history.advance(sec, cur);
        }
    }

    /// Sets a namespace's sysctls (no longer "assumed"). Recomputes which sockets take a usable
    /// port when the range or the reserved ports changed.
    pub fn set_sysctls(&mut self, netns: u32, sysctls: Sysctls) {
        let ns = self.ns(netns);
        let n = &mut self.netns[ns as usize];
        let ports_changed = n.assumed
            || n.sysctls.port_range != sysctls.port_range
            || n.sysctls.reserved_ports != sysctls.reserved_ports;
        n.ports.configure(&sysctls);
        n.sysctls = sysctls;
        n.assumed = false;
        if !ports_changed {
            return;
        }
        let idx: Vec<u32> = self
            .socks
            .iter()
            .filter(|(_, s)| s.ns == ns && s.role == Role::Outbound)
            .map(|(i, _)| i)
            .collect();
        for i in idx {
            let s = *self.socks.get(i);
            if self.consumes(&s) != s.has(flag::CONSUMES) {
                self.account(i, -1);
                self.socks.get_mut(i).flags ^= flag::CONSUMES;
                self.account(i, 1);
            }
        }
    }

    fn clock(&mut self, ts: u64) {
        if self.start_ns.is_none() && ts != 0 {
            self.start_ns = Some(ts);
        }
        self.now_ns = self.now_ns.max(ts);
        while let Some(&(i, tw, t)) = self.pending_cancel.front() {
            if t + TW_REARM_GRACE_NS > self.now_ns {
                break;
            }
            self.pending_cancel.pop_front();
            self.finish_cancel(i, tw);
        }
    }

    /// Index of a namespace, created with assumed kernel defaults when new.
    fn ns(&mut self, inode: u32) -> u16 {
        if let Some(&i) = self.ns_index.get(&inode) {
            return i;
        }
        let Ok(i) = u16::try_from(self.netns.len()) else {
            self.counters.odd.netns_overflow += 1;
            return 0;
        };
        self.netns.push(Netns::new(inode));
        self.ns_index.insert(inode, i);
        i
    }

    fn owner_of(&mut self, task: &Task) -> u32 {
        match self.procs.intern(task, self.now_ns, self.cfg.max_processes) {
            Some(id) => id,
            None => {
                self.counters.odd.untracked += 1;
                NONE
            }
        }
    }

    /// Whether an outbound socket takes one of its pool's usable ports: not when its port is
    /// held by `bind()` (that port already left every pool) or lies outside the connect range
    /// (bound explicitly, or the range changed since). Unknown port (SYN_SENT): yes.
    fn consumes(&self, s: &Sock) -> bool {
        s.role == Role::Outbound
            && !s.has(flag::BOUND_PORT)
            && (s.tuple.lport == 0 || self.netns[s.ns as usize].ports.is_usable(s.tuple.lport))
    }

    fn pool_key(t: &Tuple) -> PoolKeyInt {
        PoolKeyInt {
            netns: t.netns,
            dport: t.rport,
            src: t.lip,
            dst: t.rip,
        }
    }

    /// The owner×pool link for an outbound socket.
    fn out_link(&mut self, owner: u32, t: &Tuple, ns: u16) -> u32 {
        let key = Model::pool_key(t);
        let Some(pool) = self.pools.intern(key, ns, self.now_ns, self.cfg.max_pools) else {
            self.counters.odd.untracked += 1;
            return NONE;
        };
        let (id, new) = self.links.intern(LinkKey::Out { owner, pool });
        if new {
            self.procs.retain(owner);
            self.pools.get_mut(pool).refs += 1;
        }
        id
    }

    fn in_link(&mut self, listener: u32, rip: Ip) -> u32 {
        let (id, new) = self.links.intern(LinkKey::In { listener, rip });
        if new {
            self.listeners.get_mut(listener).refs += 1;
        }
        id
    }

    fn listener_entry(&mut self, t: &Tuple, owner: u32) -> u32 {
        let (id, new) = self
            .listeners
            .intern(t.netns, t.lip, t.lport, owner, self.now_ns);
        let l = self.listeners.get_mut(id);
        if new {
            self.procs.retain(owner);
        } else if l.owner == NONE && owner != NONE {
            l.owner = owner;
            self.procs.retain(owner);
        }
        id
    }

    /// Role, owner and link of a socket whose beginning was not seen: accepted if a listener
    /// takes its local address (owner inherited), else outbound with owner unknown.
    fn classify(&mut self, t: &Tuple, ns: u16) -> (Role, u32, u32) {
        match self.listeners.find_for(t.netns, t.lip, t.lport) {
            Some(l) => {
                let owner = self.listeners.get(l).owner;
                (Role::Inbound, owner, self.in_link(l, t.rip))
            }
            None => (Role::Outbound, NONE, self.out_link(NONE, t, ns)),
        }
    }

    fn pool_of(&self, s: &Sock) -> Option<u32> {
        if s.role != Role::Outbound || s.link == NONE {
            return None;
        }
        match self.links.get(s.link).key {
            LinkKey::Out { pool, .. } => Some(pool),
            LinkKey::In { .. } => None,
        }
    }

    fn listener_of(&self, s: &Sock) -> Option<u32> {
        match s.role {
            Role::Listener if s.link != NONE => Some(s.link),
            Role::Inbound if s.link != NONE => match self.links.get(s.link).key {
                LinkKey::In { listener, .. } => Some(listener),
                LinkKey::Out { .. } => None,
            },
            _ => None,
        }
    }

    /// Adds or removes a counted socket's current state from every aggregate.
    fn account(&mut self, i: u32, sign: i32) {
        let s = *self.socks.get(i);
        if !s.has(flag::COUNTED) {
            return;
        }
        let n = &mut self.netns[s.ns as usize];
        n.totals.add(s.state, sign);
        if s.has(flag::TW) {
            n.tw_entries = n.tw_entries.wrapping_add_signed(sign);
        }
        if s.link == NONE || !matches!(s.role, Role::Outbound | Role::Inbound) {
            return;
        }
        let link = self.links.get_mut(s.link);
        link.counts.add(s.state, sign);
        if let LinkKey::Out { pool, .. } = link.key {
            let p = self.pools.get_mut(pool);
            p.touch(self.now_ns / NS, self.now_ns);
            p.counts.add(s.state, sign);
            if s.has(flag::CONSUMES) {
                p.consuming.add(s.state, sign);
            }
        }
    }

    /// Takes the references a socket's fields name.
    fn attach(&mut self, i: u32) {
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.retain(s.owner);
            self.procs.get_mut(s.owner).sockets += 1;
        }
        match s.role {
            Role::Outbound | Role::Inbound if s.link != NONE => {
                self.links.get_mut(s.link).refs += 1
            }
            Role::Listener if s.link != NONE => {
                let l = self.listeners.get_mut(s.link);
                l.refs += 1;
                l.listening += 1;
            }
            _ => {}
        }
        if s.has(flag::BOUND_PORT) {
            self.netns[s.ns as usize].ports.hold(s.tuple.lport);
        }
    }

    fn detach(&mut self, i: u32) {
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.get_mut(s.owner).sockets -= 1;
            self.procs.release(s.owner);
        }
        match s.role {
            Role::Outbound | Role::Inbound if s.link != NONE => self.release_link(s.link),
            Role::Listener if s.link != NONE => {
                self.listeners.get_mut(s.link).listening -= 1;
                self.release_listener(s.link);
            }
            _ => {}
        }
        if s.has(flag::BOUND_PORT) {
            self.netns[s.ns as usize].ports.release(s.tuple.lport);
        }
    }

    /// Drops one socket's reference to a link, and what the link names when it goes.
    fn release_link(&mut self, id: u32) {
        if let Some(key) = self.links.release(id) {
            match key {
                LinkKey::Out { owner, pool } => {
                    self.procs.release(owner);
                    self.pools.get_mut(pool).refs -= 1;
                }
                LinkKey::In { listener, .. } => self.release_listener(listener),
            }
        }
    }

    fn release_listener(&mut self, id: u32) {
        if let Some(owner) = self.listeners.release(id) {
            self.procs.release(owner);
        }
    }

    /// Evicts one socket if the table is full. Call before looking anything up for a socket
    /// about to be added, so that no index held afterwards can be the victim.
    fn make_room(&mut self) {
        self.make_room_sparing(NONE);
    }

    /// Same, never evicting socket `keep` (which the caller holds).
    fn make_room_sparing(&mut self, keep: u32) {
        let mut tries = 0;
        while self.socks.len() >= self.cfg.max_sockets && tries < 4 {
            let Some(v) = self.socks.victim() else { return };
            if v == keep {
                tries += 1;
                continue;
            }
            let st = self.socks.get(v).state;
            self.drop_sock(v);
            self.counters.sockets_evicted += 1;
            self.counters.sockets_evicted_by_state.add(st, 1);
        }
    }

    fn add(&mut self, s: Sock) -> u32 {
        let i = self.socks.insert(s);
        self.attach(i);
        self.account(i, 1);
        i
    }

    fn drop_sock(&mut self, i: u32) -> Sock {
        self.account(i, -1);
        self.detach(i);
        let s = self.socks.remove(i);
        if s.tuple.lport != 0 {
            let h = s.tuple.hash();
            self.removed[(h as usize) % REMOVED_SLOTS] = (h, self.now_ns);
        }
        s
    }

    fn set_state(&mut self, i: u32, state: TcpState, ts: u64) {
        self.account(i, -1);
        let s = self.socks.get_mut(i);
        s.state = state;
        s.since_ns = ts;
        self.account(i, 1);
    }

    /// Gives a socket an owner learnt later (process context, or the snapshot), moving it to
    /// the owner's link.
    fn reown(&mut self, i: u32, owner: u32) {
        self.account(i, -1);
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.get_mut(s.owner).sockets -= 1;
            self.procs.release(s.owner);
        }
        if owner != NONE {
            self.procs.retain(owner);
            self.procs.get_mut(owner).sockets += 1;
        }
        let mut link = s.link;
        if s.role == Role::Outbound {
            // The new link first: the pool stays referenced while the old one goes.
            link = self.out_link(owner, &s.tuple, s.ns);
            if link != NONE {
                self.links.get_mut(link).refs += 1;
            }
            if s.link != NONE {
                self.release_link(s.link);
            }
        }
        let m = self.socks.get_mut(i);
        m.owner = owner;
        m.link = link;
        self.account(i, 1);
    }

    /// A socket from the snapshot (no `sk`) with this 4-tuple, to adopt on its first event.
    fn find_unadopted(&self, t: &Tuple, tw: bool) -> Option<u32> {
        self.socks.find_tuple(t, |s| {
            s.sk == 0
                && s.has(flag::COUNTED)
                && if tw {
                    s.has(flag::TW) || s.state == TcpState::FinWait2
                } else {
                    !s.has(flag::TW)
                }
        })
    }

    fn adopt(&mut self, i: u32, sk: u64) {
        let t = self.socks.get(i).tuple;
        self.socks.rekey(i, sk, t);
        self.counters.snapshot_sockets_adopted += 1;
    }
}
