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

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{
    CloseStats, Model, NS, PoolKey, ProcRef, RateStats, StateCounts, owner::LinkKey,
    pool::PoolKeyInt, socket::NONE,
};
use crate::event::Comm;

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
/// The peak's owners are read again at most this often.
const PEAK_OWNERS_EVERY_NS: u64 = NS;

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
    last_seen_ns: u64,
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
    last_full_ns: u64,
    #[serde(skip)]
    peak_owners_due: bool,
    #[serde(skip)]
    peak_owners_ns: u64,
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

/// A pool's pressure now.
struct Pressure {
    blocking: u32,
    capacity: u32,
}

impl Pressure {
    fn threshold(&self) -> u32 {
        // Rounded up: a 10-port pool is under it at 8.
        (u64::from(self.capacity) * u64::from(HYSTERESIS_NUM)).div_ceil(u64::from(HYSTERESIS_DEN))
            as u32
    }
}

impl Model {
    fn pressure(&self, pool: u32) -> (Pressure, bool) {
        let p = self.pools.get(pool);
        let n = &self.netns[p.ns as usize];
        let tw_reusable = n
            .sysctls
            .tw_reusable(p.key.src.is_loopback() || p.key.dst.is_loopback());
        let in_use = p.in_use();
        let blocking = if tw_reusable {
            in_use - p.consuming.get(crate::event::TcpState::TimeWait)
        } else {
            in_use
        };
        (
            Pressure {
                blocking,
                capacity: n.ports.capacity(),
            },
            tw_reusable,
        )
    }

    /// After a consuming socket of `pool` was counted in (`sign` 1) or out (−1): opens an
    /// episode when the pool is full, follows its peak and when it was last full. O(1) unless
    /// an episode opens.
    pub(super) fn episode_on_count(&mut self, pool: u32, sign: i32) {
        let open = self.pools.get(pool).episode_open;
        if !open && sign < 0 {
            return;
        }
        let (pr, _) = self.pressure(pool);
        if !open {
            if pr.capacity > 0 && pr.blocking >= pr.capacity {
                self.open_episode(pool, Trigger::PoolFull);
            }
            return;
        }
        let key = self.pools.get(pool).key;
        let states = self.pools.get(pool).consuming;
        let now = self.now_ns;
        let before = if sign < 0 {
            pr.blocking + 1
        } else {
            pr.blocking
        };
        let Some(e) = self.episodes.open_mut(&key) else {
            return;
        };
        if before >= pr.threshold() {
            e.last_full_ns = now;
        }
        if sign > 0 && pr.blocking > e.peak.blocking {
            e.peak.at_ns = now;
            e.peak.states = states;
            e.peak.in_use = states.total() - states.get(crate::event::TcpState::Close);
            e.peak.blocking = pr.blocking;
            e.peak.capacity = pr.capacity;
            e.peak_owners_due = true;
        }
    }

    /// `connect()` failed with EADDRNOTAVAIL for `pool`: opens an episode if none is, and
    /// counts the failure in its burst (a new burst takes the pool's composition).
    pub(super) fn episode_on_failure(&mut self, pool: u32) {
        if !self.pools.get(pool).episode_open {
            self.open_episode(pool, Trigger::Eaddrnotavail);
        }
        let key = self.pools.get(pool).key;
        let now = self.now_ns;
        let new_burst = match self.episodes.open_mut(&key) {
            None => return,
            Some(e) => e
                .bursts
                .last()
                .is_none_or(|b| now > b.end_ns + BURST_GAP_NS),
        };
        let comp = new_burst.then(|| self.composition(pool));
        let Some(e) = self.episodes.open_mut(&key) else {
            return;
        };
        e.failures += 1;
        e.first_failure_ns.get_or_insert(now);
        e.last_failure_ns = Some(now);
        match comp {
            Some(composition) => {
                if e.bursts.len() >= MAX_BURSTS {
                    // Keep the first burst: drop the oldest of the latest ones.
                    e.bursts.remove(1);
                    e.bursts_dropped += 1;
                }
                e.bursts.push(FailureBurst {
                    start_ns: now,
                    end_ns: now,
                    failures: 1,
                    composition,
                });
            }
            None => {
                if let Some(b) = e.bursts.last_mut() {
                    b.end_ns = now;
                    b.failures += 1;
                }
            }
        }
    }

    fn open_episode(&mut self, pool: u32, trigger: Trigger) {
        let key = self.pools.get(pool).key;
        if self.episodes.open.contains_key(&key) {
            // Still open from before the pool was evicted and made again.
            self.pools.get_mut(pool).episode_open = true;
            return;
        }
        if !self.episodes.make_room(&key.public()) {
            self.episodes.dropped += 1;
            return;
        }
        let peak = self.composition(pool);
        let eps = &mut self.episodes;
        eps.next_id += 1;
        eps.opened += 1;
        let id = eps.next_id;
        eps.list.push(Episode {
            id,
            pool: key.public(),
            trigger,
            start_ns: self.now_ns,
            end_ns: None,
            failures: 0,
            first_failure_ns: None,
            last_failure_ns: None,
            peak_owners_ns: self.now_ns,
            peak,
            bursts: Vec::new(),
            bursts_dropped: 0,
            last_full_ns: self.now_ns,
            peak_owners_due: false,
        });
        eps.open.insert(key, id);
        self.pools.get_mut(pool).episode_open = true;
    }

    /// On each tick: reads the peak's owners when due, and ends the episodes whose pool has
    /// been under the threshold with no failure for [`QUIET_NS`]. O(open episodes).
    pub(super) fn episodes_tick(&mut self) {
        let now = self.now_ns;
        let open: Vec<(PoolKeyInt, u64)> =
            self.episodes.open.iter().map(|(k, v)| (*k, *v)).collect();
        for (key, id) in open {
            let pool = self.pools.find(&key);
            let full = pool.map(|p| {
                let (pr, _) = self.pressure(p);
                pr.blocking >= pr.threshold() && pr.capacity > 0
            });
            let due = self.episodes.index(id).is_some_and(|i| {
                let e = &self.episodes.list[i];
                e.peak_owners_due && now >= e.peak_owners_ns + PEAK_OWNERS_EVERY_NS
            });
            let owners = match (due, pool) {
                (true, Some(p)) => Some(self.owners_of(p)),
                _ => None,
            };
            let Some(i) = self.episodes.index(id) else {
                self.episodes.open.remove(&key);
                continue;
            };
            let e = &mut self.episodes.list[i];
            if let Some((owners, unknown)) = owners {
                e.peak.owners = owners;
                e.peak.unknown_owner_sockets = unknown;
                e.peak_owners_due = false;
                e.peak_owners_ns = now;
            }
            if full == Some(true) {
                e.last_full_ns = now;
                continue;
            }
            let quiet_from = e.last_full_ns.max(e.last_failure_ns.unwrap_or(0));
            if now >= quiet_from + QUIET_NS {
                e.end_ns = Some(quiet_from);
                self.episodes.open.remove(&key);
                if let Some(p) = pool {
                    self.pools.get_mut(p).episode_open = false;
                }
            }
        }
    }

    /// The pool now, owners included (O(links)).
    fn composition(&self, pool: u32) -> Composition {
        let (pr, tw_reusable) = self.pressure(pool);
        let p = self.pools.get(pool);
        let start_sec = self.start_ns.unwrap_or(self.now_ns) / NS;
        let (owners, unknown) = self.owners_of(pool);
        Composition {
            at_ns: self.now_ns,
            states: p.consuming,
            in_use: p.in_use(),
            blocking: pr.blocking,
            capacity: pr.capacity,
            tw_reusable,
            bind_before_connect: p.bind_any,
            rates: p.rates.stats(self.now_ns / NS, start_sec),
            closes: p.closes,
            owners,
            unknown_owner_sockets: unknown,
        }
    }

    /// The pool's owners grouped by (command, parent), most sockets first, and the sockets
    /// of unknown owners.
    fn owners_of(&self, pool: u32) -> (Vec<EpisodeOwner>, u32) {
        let mut groups: FxHashMap<(Comm, u32), EpisodeOwner> = FxHashMap::default();
        let mut unknown = 0;
        for (_, l) in self.links.iter() {
            let LinkKey::Out { owner, pool: lp } = l.key else {
                continue;
            };
            let n = l.counts.total();
            if lp != pool || n == 0 {
                continue;
            }
            let Some(p) = (owner != NONE).then(|| self.procs.opt(owner)).flatten() else {
                unknown += n;
                continue;
            };
            let g = groups
                .entry((p.comm, p.ppid))
                .or_insert_with(|| EpisodeOwner {
                    process: ProcRef {
                        pid: p.pid,
                        ppid: p.ppid,
                        comm: p.comm,
                        workload: None,
                    },
                    processes: 0,
                    sockets: 0,
                    states: StateCounts::default(),
                    cgroup: p.cgroup,
                    last_seen_ns: p.last_ns,
                });
            g.processes += 1;
            g.sockets += n;
            g.states.merge(&l.counts);
            if (p.last_ns, p.pid) > (g.last_seen_ns, g.process.pid) {
                g.process.pid = p.pid;
                g.cgroup = p.cgroup;
                g.last_seen_ns = p.last_ns;
            }
        }
        let mut v: Vec<EpisodeOwner> = groups.into_values().collect();
        v.sort_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then(b.last_seen_ns.cmp(&a.last_seen_ns))
                .then(a.process.pid.cmp(&b.process.pid))
        });
        v.truncate(OWNERS_KEPT);
        (v, unknown)
    }

    /// Every episode kept, oldest first, with the owners' workloads as now known.
    pub fn episodes(&self) -> Vec<Episode> {
        let fill = |c: &mut Composition| {
            for o in &mut c.owners {
                o.process.workload = self.workloads.get(o.cgroup);
            }
        };
        self.episodes
            .list
            .iter()
            .map(|e| {
                let mut e = e.clone();
                fill(&mut e.peak);
                for b in &mut e.bursts {
                    fill(&mut b.composition);
                }
                e
            })
            .collect()
    }

    /// (episodes opened, episodes dropped) since start.
    pub fn episode_counts(&self) -> (u64, u64) {
        (self.episodes.opened, self.episodes.dropped)
    }
}
