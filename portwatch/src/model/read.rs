//! The read API, pools and sockets: owned views of the model for the snapshot, the explain
//! engine and drill-downs. Processes, listeners and failures are in `tables.rs`.

use rustc_hash::FxHashMap;

use super::{
    Model, NS,
    counts::StateCounts,
    owner::LinkKey,
    pool::{Pool, PoolKey, PoolKeyInt},
    socket::{Role, Sock, flag},
    summary::*,
};
use crate::event::TcpState;

/// Failures newer than this make a pool urgent.
const RECENT_FAILURE_NS: u64 = 60 * NS;
/// Time to exhaustion below which urgency rises.
const TTE_URGENT_S: f64 = 300.0;

impl Model {
    /// The model's own counters, with current table sizes.
    pub fn counters(&self) -> super::ModelCounters {
        let mut c = self.counters.clone();
        c.sockets_tracked = self.socks.len() as u64;
        c.pools_tracked = self.pools.len() as u64;
        c.processes_tracked = self.procs.len() as u64;
        c.listeners_tracked = self.listeners.len() as u64;
        c.pools_evicted = self.pools.evicted;
        c.processes_evicted = self.procs.evicted;
        c.failure_keys_evicted = self.failures.evicted();
        (c.episodes_opened, c.episodes_dropped) = self.episode_counts();
        c.socket_table_bytes = self.socks.heap_bytes() as u64;
        c
    }

    /// Latest time seen (events, ticks).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// When the model's picture begins: the time of the first input it was fed (live, the
    /// start-up snapshot, taken once the programs are attached), if any.
    pub fn start_ns(&self) -> Option<u64> {
        self.start_ns
    }

    /// The window a report of this model covers: from [`Model::start_ns`] (or `fallback_ns`
    /// before any input, e.g. the host's start) to [`Model::now_ns`].
    pub fn window_ns(&self, fallback_ns: u64) -> (u64, u64) {
        let start = self.start_ns.unwrap_or(fallback_ns);
        (start, self.now_ns.max(start))
    }

    pub(super) fn proc_ref(&self, id: u32) -> Option<ProcRef> {
        self.procs.opt(id).map(|p| ProcRef {
            pid: p.pid,
            ppid: p.ppid,
            comm: p.comm,
            exe: p.exe.clone(),
            workload: self.workloads.get(p.cgroup),
        })
    }

    pub fn totals(&self) -> Totals {
        let mut all = StateCounts::default();
        let mut per_netns = Vec::new();
        for n in &self.netns {
            all.merge(&n.totals);
            if n.totals.total() > 0 {
                per_netns.push(NetnsTotals {
                    netns: n.inode,
                    states: n.totals,
                    timewait_sockets: n.tw_entries,
                });
            }
        }
        Totals { all, per_netns }
    }

    /// Sysctls of every namespace seen (the unknown namespace 0 only if used).
    pub fn sysctls(&self) -> Vec<NetnsSysctls> {
        self.netns
            .iter()
            .filter(|n| n.inode != 0 || n.totals.total() > 0)
            .map(|n| NetnsSysctls {
                netns: n.inode,
                sysctls: n.sysctls.clone(),
                assumed: n.assumed,
                tw_overflow_since_start: n
                    .sysctls
                    .tw_overflow
                    .saturating_sub(n.tw_overflow_base.unwrap_or(n.sysctls.tw_overflow)),
                timewait_sockets: n.tw_entries,
                capacity: n.ports.breakdown(),
            })
            .collect()
    }

    /// A namespace's sysctls and whether they are assumed (never set).
    pub fn sysctls_for(&self, netns: u32) -> Option<(&super::Sysctls, bool)> {
        let n = &self.netns[*self.ns_index.get(&netns)? as usize];
        Some((&n.sysctls, n.assumed))
    }

    /// Per-pool owners: pool id → (owner, counts, bind-before-connect sockets).
    fn pool_owners(&self) -> FxHashMap<u32, Vec<(u32, StateCounts, u32)>> {
        let mut m: FxHashMap<u32, Vec<(u32, StateCounts, u32)>> = FxHashMap::default();
        for (_, l) in self.links.iter() {
            if let LinkKey::Out { owner, pool } = l.key {
                m.entry(pool)
                    .or_default()
                    .push((owner, l.counts, l.bind_any));
            }
        }
        m
    }

    /// A pool's ports in use and those that block `connect()` (in use minus the TIME_WAIT
    /// entries `tcp_tw_reuse` lets it take over), and whether reuse applies to it.
    pub(in crate::model) fn blocking_of(&self, p: &Pool) -> (u32, u32, bool) {
        let n = &self.netns[p.ns as usize];
        let tw_reusable = n
            .sysctls
            .tw_reusable(p.key.src.is_loopback() || p.key.dst.is_loopback());
        let in_use = p.in_use();
        let blocking = if tw_reusable {
            in_use - p.consuming.get(TcpState::TimeWait)
        } else {
            in_use
        };
        (in_use, blocking, tw_reusable)
    }

    fn pool_stats(&self, p: &Pool, owners: &[(u32, StateCounts, u32)], now: u64) -> PoolStats {
        let n = &self.netns[p.ns as usize];
        let k = p.key.public();
        let capacity = n.ports.capacity();
        let (in_use, blocking, tw_reusable) = self.blocking_of(p);
        let ratio = |x: u32| {
            if capacity == 0 {
                if x > 0 { f64::INFINITY } else { 0.0 }
            } else {
                f64::from(x) / f64::from(capacity)
            }
        };
        let start_sec = self.start_ns.unwrap_or(now) / NS;
        let rates = p.rates.stats(now / NS, start_sec);
        let net = rates.new_per_s - rates.released_per_s;
        let free = capacity.saturating_sub(blocking);
        let tte = if free == 0 && blocking > 0 {
            Some(0.0)
        } else if net > 0.0 {
            Some(f64::from(free) / net)
        } else {
            None
        };
        let mut own: Vec<PoolOwner> = owners
            .iter()
            .map(|(o, c, b)| PoolOwner {
                owner: self.proc_ref(*o),
                states: *c,
                total: c.total(),
                bind_before_connect: *b,
            })
            .filter(|o| o.total > 0)
            .collect();
        own.sort_by_key(|o| std::cmp::Reverse(o.total));
        own.truncate(5);
        let eff = ratio(blocking);
        let failing =
            p.last_failure_ns != 0 && now.saturating_sub(p.last_failure_ns) < RECENT_FAILURE_NS;
        let urgency = eff.min(10.0)
            + if failing { 1.0 } else { 0.0 }
            + tte.map_or(0.0, |t| 0.5 * (1.0 - (t / TTE_URGENT_S)).max(0.0));
        PoolStats {
            netns: k.netns,
            src: k.src,
            dst: k.dst,
            states: p.counts,
            states_in_capacity: p.consuming,
            in_use,
            blocking,
            outside_capacity: p.counts.total() - p.consuming.total(),
            bind_before_connect: p.bind_any,
            capacity,
            utilisation: ratio(in_use),
            effective_utilisation: eff,
            tw_reusable,
            rates,
            port_search: {
                let (chosen, secs) =
                    p.rates
                        .chosen_recent(now / NS, start_sec, super::PARITY_SAMPLE);
                super::PortSearch {
                    latency: self.latency.get(k.netns, k.dst, now),
                    ..super::PortSearch::from_counts(chosen, secs, n.sysctls.port_range.0)
                }
            },
            time_to_exhaustion_s: tte,
            eaddrnotavail: p.eaddrnotavail,
            last_failure_ns: (p.last_failure_ns != 0).then_some(p.last_failure_ns),
            closes: p.closes,
            owners: own,
            sysctls_assumed: n.assumed,
            urgency,
        }
    }

    /// Pools, most urgent first (at most `top_n`). Pools with no socket and no failure are
    /// left out.
    pub fn pools(&self, now_ns: u64, top_n: usize) -> Vec<PoolStats> {
        let owners = self.pool_owners();
        let mut v: Vec<PoolStats> = self
            .pools
            .iter()
            .filter(|(_, p)| p.counts.total() > 0 || p.eaddrnotavail > 0)
            .map(|(id, p)| {
                self.pool_stats(p, owners.get(&id).map_or(&[][..], Vec::as_slice), now_ns)
            })
            .collect();
        v.sort_by(|a, b| {
            b.urgency
                .total_cmp(&a.urgency)
                .then(b.in_use.cmp(&a.in_use))
        });
        v.truncate(top_n);
        v
    }

    fn pool_id(&self, key: &PoolKey) -> Option<u32> {
        self.pools.find(&PoolKeyInt::from_public(key))
    }

    /// One pool, even one that [`Model::pools`] leaves out (for drill-downs). Scans the links
    /// for its owners only.
    pub fn pool(&self, key: &PoolKey, now_ns: u64) -> Option<PoolStats> {
        let id = self.pool_id(key)?;
        let owners: Vec<(u32, StateCounts, u32)> = self
            .links
            .iter()
            .filter_map(|(_, l)| match l.key {
                LinkKey::Out { owner, pool } if pool == id => Some((owner, l.counts, l.bind_any)),
                _ => None,
            })
            .collect();
        Some(self.pool_stats(self.pools.get(id), &owners, now_ns))
    }

    /// In-use ports per second, oldest first, for the last [`super::HISTORY_S`] seconds.
    pub fn pool_history(&self, key: &PoolKey) -> Option<Vec<u32>> {
        Some(self.pools.get(self.pool_id(key)?).history.values())
    }

    pub(super) fn socket_info(&self, s: &Sock, now: u64) -> SocketInfo {
        SocketInfo {
            sk: (s.sk != 0).then_some(s.sk),
            netns: s.tuple.netns,
            local: s.tuple.local(),
            remote: s.tuple.remote(),
            state: s.state,
            role: s.role,
            owner: self.proc_ref(s.owner),
            since_ns: s.since_ns,
            age_s: now.saturating_sub(s.since_ns) as f64 / 1e9,
            age_is_lower_bound: s.has(flag::SNAPSHOT),
            closer: s.closer,
            timewait: s.has(flag::TW),
            bind_held: s.has(flag::BOUND_PORT),
        }
    }

    /// A pool's sockets, oldest first (at most `limit`). Scans the socket table: for
    /// drill-downs on demand, not for every refresh.
    pub fn pool_sockets(&self, key: &PoolKey, now_ns: u64, limit: usize) -> Vec<SocketInfo> {
        let Some(id) = self.pool_id(key) else {
            return Vec::new();
        };
        let mut v: Vec<&Sock> = self
            .socks
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.has(flag::COUNTED) && self.pool_of(s) == Some(id))
            .collect();
        v.sort_by_key(|s| s.since_ns);
        v.iter()
            .take(limit)
            .map(|s| self.socket_info(s, now_ns))
            .collect()
    }

    /// Who holds a local port (for EADDRINUSE explanations): listeners, bound sockets, and
    /// outbound sockets using it as their source port (bind-before-connect or `connect()`'s
    /// choice, TIME_WAIT included) — every one is in the port's bind bucket, and `bind()`
    /// conflicts with them unless both sides set `SO_REUSEADDR`. Accepted sockets are left
    /// out: they share their listener's bucket.
    pub fn port_holders(&self, netns: u32, port: u16, now_ns: u64) -> Vec<SocketInfo> {
        self.socks
            .iter()
            .map(|(_, s)| s)
            .filter(|s| {
                s.tuple.netns == netns
                    && s.tuple.lport == port
                    && s.has(flag::COUNTED)
                    && s.role != Role::Inbound
            })
            .map(|s| self.socket_info(s, now_ns))
            .collect()
    }
}
