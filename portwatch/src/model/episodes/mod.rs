//! Exhaustion episodes: what held a pool's ports at the moment it ran out, kept after the
//! pool has emptied again.
//!
//! A pool's current composition says what holds it *now*; when a load generator's 1,000
//! ESTABLISHED connections end by RST a second after 500 connects failed, "now" is an empty
//! pool with one TIME_WAIT, and classifying from it names the wrong cause. So the model keeps
//! **episodes**: one opens when a pool's blocking ports reach its capacity, or when
//! `connect()` fails with EADDRNOTAVAIL for it; it records the composition (ports by state,
//! the owners grouped by command and parent, rates, how connections ended) at the peak and at
//! the first failure of each failure burst, and its failure count; it ends when the pool has
//! been under [`HYSTERESIS_NUM`]/[`HYSTERESIS_DEN`] of its capacity with no failure for
//! [`QUIET_NS`], at the last moment it was full or failing.
//!
//! Pure: fed by the same inputs as the rest of the model, on model time only. An episode's
//! end is the time of the last failure or of the change that took the pool under the
//! threshold (exact event times); ticks only notice that the quiet time has passed, so when
//! ticks arrive does not change what is recorded (live and replay agree).
//!
//! Cost: the composition's owners come from the link table (O(links)), read at the first
//! failure of a burst (a burst is failures less than [`BURST_GAP_NS`] apart) and, for the peak,
//! at most once a second on a tick; the peak's states are copied when it grows (O(1)).
//! Memory is bounded: [`MAX_BURSTS`] per episode (the first and the latest),
//! [`MAX_PER_POOL`] episodes per pool and [`MAX_EPISODES`] in all (the oldest ended ones
//! go first); what is dropped is counted.

mod track;

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{CloseStats, NS, PoolKey, ProcRef, RateStats, StateCounts, pool::PoolKeyInt};

/// An episode ends when blocking ports are under this share of the capacity…
pub const HYSTERESIS_NUM: u32 = 9;
pub const HYSTERESIS_DEN: u32 = 10;
/// … and nothing failed, for this long.
pub const QUIET_NS: u64 = 10 * NS;
/// Failures closer than this belong to one burst.
pub const BURST_GAP_NS: u64 = NS;
/// Failure bursts kept per episode: the first, and the latest.
pub const MAX_BURSTS: usize = 8;
/// Episodes kept per pool (the latest), and in all.
pub const MAX_PER_POOL: usize = 4;
pub const MAX_EPISODES: usize = 64;
/// Owner groups kept in a composition (most sockets first).
pub const OWNERS_KEPT: usize = 5;

/// What opened an episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The pool's blocking ports reached its capacity.
    PoolFull,
    /// `connect()` failed with EADDRNOTAVAIL for it.
    Eaddrnotavail,
}

/// Processes with one command and parent holding ports of the pool (one long-lived process,
/// or a loop of short-lived ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EpisodeOwner {
    /// The most recently seen process of the group.
    #[serde(flatten)]
    pub process: ProcRef,
    pub processes: u32,
    pub sockets: u32,
    pub states: StateCounts,
    #[serde(skip)]
    pub(crate) cgroup: u64,
    #[serde(skip)]
    pub(crate) last_seen_ns: u64,
}

/// A pool at one moment of an episode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Composition {
    pub at_ns: u64,
    /// Sockets that take one of the pool's ports, by state.
    pub states: StateCounts,
    pub in_use: u32,
    /// `in_use` minus TIME_WAIT that `tcp_tw_reuse` lets `connect()` take over.
    pub blocking: u32,
    pub capacity: u32,
    pub tw_reusable: bool,
    /// Of those sockets, bind-before-connect ones.
    pub bind_before_connect: u32,
    pub rates: RateStats,
    /// How the pool's connections had ended, up to this moment (cumulative).
    pub closes: CloseStats,
    /// Most sockets first (at most [`OWNERS_KEPT`]).
    pub owners: Vec<EpisodeOwner>,
    /// Sockets whose owner is unknown.
    pub unknown_owner_sockets: u32,
}

/// Failures less than [`BURST_GAP_NS`] apart, and the pool at the first of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureBurst {
    pub start_ns: u64,
    pub end_ns: u64,
    pub failures: u64,
    pub composition: Composition,
}

/// One exhaustion episode of one pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Episode {
    /// Increasing from 1, in the order episodes opened.
    pub id: u64,
    pub pool: PoolKey,
    pub trigger: Trigger,
    pub start_ns: u64,
    /// `None` while it lasts.
    pub end_ns: Option<u64>,
    /// `connect()` calls that failed with EADDRNOTAVAIL during it.
    pub failures: u64,
    pub first_failure_ns: Option<u64>,
    pub last_failure_ns: Option<u64>,
    /// The pool when the most ports blocked `connect()`.
    pub peak: Composition,
    /// The first burst and the latest ones, oldest first.
    pub bursts: Vec<FailureBurst>,
    /// Bursts left out between the first and the kept latest ones.
    pub bursts_dropped: u64,
    /// The last moment the pool was at or over the threshold (internal).
    #[serde(skip)]
    pub(crate) last_full_ns: u64,
    #[serde(skip)]
    pub(crate) peak_owners_due: bool,
    #[serde(skip)]
    pub(crate) peak_owners_ns: u64,
}

impl Episode {
    pub fn ongoing(&self) -> bool {
        self.end_ns.is_none()
    }

    /// What held the pool when `connect()` failed (the latest burst), or at the peak when
    /// nothing failed: what the episode's cause is read from.
    pub fn cause_composition(&self) -> &Composition {
        self.bursts.last().map_or(&self.peak, |b| &b.composition)
    }
}

/// Every episode kept, oldest first, and the open one of each pool.
#[derive(Default)]
pub(crate) struct Episodes {
    list: Vec<Episode>,
    open: FxHashMap<PoolKeyInt, u64>,
    next_id: u64,
    pub opened: u64,
    pub dropped: u64,
}

impl Episodes {
    fn index(&self, id: u64) -> Option<usize> {
        self.list.binary_search_by_key(&id, |e| e.id).ok()
    }

    fn open_mut(&mut self, key: &PoolKeyInt) -> Option<&mut Episode> {
        let id = *self.open.get(key)?;
        let i = self.index(id)?;
        Some(&mut self.list[i])
    }

    /// Makes room for a new episode of `key`: its pool's oldest ended episodes beyond
    /// [`MAX_PER_POOL`] − 1, then the oldest ended overall. `false` when every kept episode
    /// is open (the new one is dropped).
    fn make_room(&mut self, key: &PoolKey) -> bool {
        let of_pool: Vec<u64> = self
            .list
            .iter()
            .filter(|e| e.pool == *key && !e.ongoing())
            .map(|e| e.id)
            .collect();
        let surplus = (of_pool.len() + 1).saturating_sub(MAX_PER_POOL);
        for id in of_pool.into_iter().take(surplus) {
            if let Some(i) = self.index(id) {
                self.list.remove(i);
                self.dropped += 1;
            }
        }
        if self.list.len() < MAX_EPISODES {
            return true;
        }
        match self.list.iter().position(|e| !e.ongoing()) {
            Some(i) => {
                self.list.remove(i);
                self.dropped += 1;
                true
            }
            None => false,
        }
    }
}
