//! The pure model: every event, snapshot and sysctl reading goes in; everything the views and
//! the explain engine show comes out (see `tables`). Synchronous, no I/O, no clock: time
//! comes from events (`ts_ns`, CLOCK_MONOTONIC) and from [`Model::tick`].
//!
//! What it tracks (docs/kernel-facts.md is the source of every rule):
//! - live sockets keyed by kernel address and by namespace + 4-tuple (`socket.rs`), each with
//!   state, owner, since-when and which side closed first;
//! - owners taken only in process context and inherited by accepted sockets (`owner.rs`,
//!   `listener.rs`);
//! - TIME_WAIT from the timewait timer events (`timewait.rs`);
//! - pools (namespace, source IP, destination IP:port) with capacity (`capacity.rs`) and rates
//!   (`rates.rs`); failures (`failures.rs`); snapshot merge and reconciliation (`snapshot.rs`).
//!
//! Memory is bounded by [`ModelConfig`]; whatever is evicted or does not match is counted in
//! [`ModelCounters`], never a panic.
//!
//! Use: [`Model::feed`] every [`Input`] in order (events, the start-up snapshot, each
//! reconciliation, loss counters, warnings, clock ticks: `feed.rs`); read with `tables` (or the
//! finer `pools`, `pool_sockets`, `pool_history`, `processes`, `process`, `process_groups`, `listeners`,
//! `failures`, `totals`, `sysctls`, `port_holders`, `close_wait`, `counters`).
//!
//! Performance (release, one core, this machine): ~9 M events/s replaying connect + active
//! close + TIME_WAIT expiry churn; ~94 bytes of socket table per tracked socket at 2 M
//! sockets; `tick` is O(pools).

mod addr;
mod apply;
mod books;
mod capacity;
mod closewait;
mod counters;
mod counts;
pub(crate) mod episodes;
mod exes;
mod failures;
mod feed;
pub mod input;
mod latency;
mod listener;
pub mod nat;
mod owner;
mod pool;
mod rates;
mod read;
mod search;
mod slots;
mod snapshot;
mod socket;
mod summary;
mod tables;
mod timewait;
mod workloads;

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

pub use capacity::CapacityBreakdown;
pub use closewait::{CLOSE_WAIT_RECENT_S, CloseWaitStats};
pub use counters::{ModelCounters, OddEvents};
pub use counts::StateCounts;
pub use episodes::{Composition, Episode, EpisodeOwner, FailureBurst, Trigger};
pub use exes::ProcessExe;
pub use failures::{FailCount, FailureRecord, GROUP_PIDS, NetnsFailures};
pub use feed::{MAX_WARNINGS, Warnings};
pub use input::{Input, NetnsSnapshot, Owner, SnapSocket, Stamped, Sysctls, SystemSnapshot};
pub use latency::{
    ConnectLatency, LATENCY_MIN_CALLS, LATENCY_WINDOW_S, LatencyCounts, LatencyReading,
};
pub use pool::{CloseStats, PoolKey};
pub use rates::{HISTORY_S, RATE_WINDOW_S, RateStats};
pub use search::{PARITY_SAMPLE, Parity, PortSearch};
pub use snapshot::{Correction, CorrectionScope};
pub use socket::{Closer, Role};
pub use summary::*;
pub use tables::process_groups;
pub use workloads::{CgroupWorkload, GroupBy, WorkloadGroupStats, WorkloadRef};

use capacity::PortSpace;
use failures::Failures;
use listener::Listeners;
use owner::{Links, Procs};
use pool::{PoolKeyInt, Pools};
use socket::{SockTable, flag};
use workloads::Workloads;

use crate::event::{Event, EventKind};

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
    /// `TCPTimeWaitOverflow` at the first reading, to show its growth since.
    pub tw_overflow_base: Option<u64>,
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
            tw_overflow_base: None,
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
    workloads: Workloads,
    counters: ModelCounters,
    corrections: VecDeque<Correction>,
    /// Timewait sockets whose timer was cancelled with time left: (slot, tw, when).
    pending_cancel: VecDeque<(u32, u64, u64)>,
    noport: Vec<(u64, PoolKeyInt)>,
    noport_pos: usize,
    removed: Vec<(u64, u64)>,
    now_ns: u64,
    start_ns: Option<u64>,
    /// The collector's loss counters, as last fed.
    loss: crate::collect::Counters,
    warnings: Warnings,
    last_corrections: Vec<Correction>,
    nat: nat::NatBook,
    episodes: episodes::Episodes,
    latency: latency::LatencyBook,
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
            workloads: Workloads::default(),
            counters: ModelCounters::default(),
            corrections: VecDeque::new(),
            pending_cancel: VecDeque::new(),
            noport: Vec::with_capacity(NOPORT_SLOTS),
            noport_pos: 0,
            removed: vec![(0, 0); REMOVED_SLOTS],
            now_ns: 0,
            start_ns: None,
            loss: Default::default(),
            warnings: Warnings::default(),
            last_corrections: Vec::new(),
            nat: nat::NatBook::default(),
            episodes: episodes::Episodes::default(),
            latency: latency::LatencyBook::default(),
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
        self.episodes_tick();
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
        n.tw_overflow_base.get_or_insert(sysctls.tw_overflow);
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
}
