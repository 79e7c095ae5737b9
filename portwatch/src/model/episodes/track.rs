//! How the model keeps its episodes (see the module above): the hooks on a pool's counts
//! and failures, the tick that ends them, and the compositions they keep.

use rustc_hash::FxHashMap;

use super::{
    BURST_GAP_NS, Composition, Episode, EpisodeOwner, FailureBurst, HYSTERESIS_DEN, HYSTERESIS_NUM,
    MAX_BURSTS, OWNERS_KEPT, QUIET_NS, Trigger,
};
use crate::{
    event::{Comm, TcpState},
    model::{Model, NS, ProcRef, StateCounts, owner::LinkKey, pool::PoolKeyInt, socket::NONE},
};

/// The peak's owners are read again at most this often.
const PEAK_OWNERS_EVERY_NS: u64 = NS;

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
        let (_, blocking, tw_reusable) = self.blocking_of(p);
        (
            Pressure {
                blocking,
                capacity: self.netns[p.ns as usize].ports.capacity(),
            },
            tw_reusable,
        )
    }

    /// After a consuming socket of `pool` was counted in (`sign` 1) or out (−1): opens an
    /// episode when the pool is full, follows its peak and when it was last full. O(1) unless
    /// an episode opens.
    pub(in crate::model) fn episode_on_count(&mut self, pool: u32, sign: i32) {
        let p = self.pools.get(pool);
        let open = p.episode_open;
        if !open && (sign < 0 || p.in_use() < self.netns[p.ns as usize].ports.capacity()) {
            // Not full (blocking ≤ in use): nothing to open, the common case.
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
            e.peak.in_use = states.total() - states.get(TcpState::Close);
            e.peak.blocking = pr.blocking;
            e.peak.capacity = pr.capacity;
            e.peak_owners_due = true;
        }
    }

    /// `connect()` failed with EADDRNOTAVAIL for `pool`: opens an episode if none is, and
    /// counts the failure in its burst (a new burst takes the pool's composition).
    pub(in crate::model) fn episode_on_failure(&mut self, pool: u32) {
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
    pub(in crate::model) fn episodes_tick(&mut self) {
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
            // Including the second in progress: a pool emptied in a burst that began this
            // second has its whole demand there.
            rates: p.rates.stats(self.now_ns / NS + 1, start_sec),
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
                        exe: p.exe.clone(),
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
                g.process.exe.clone_from(&p.exe);
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
