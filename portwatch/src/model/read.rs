//! The read API: owned views of the model for views and the explain engine.

use rustc_hash::FxHashMap;

use super::{
    Model, NS,
    counts::StateCounts,
    owner::LinkKey,
    pool::{Pool, PoolKey, PoolKeyInt},
    socket::{NONE, Role, Sock, flag},
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
        c.socket_table_bytes = self.socks.heap_bytes() as u64;
        c
    }

    /// Latest time seen (events, ticks).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    pub(super) fn proc_ref(&self, id: u32) -> Option<ProcRef> {
        self.procs.opt(id).map(|p| ProcRef {
            pid: p.pid,
            ppid: p.ppid,
            comm: p.comm,
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

    fn pool_stats(&self, p: &Pool, owners: &[(u32, StateCounts, u32)], now: u64) -> PoolStats {
        let n = &self.netns[p.ns as usize];
        let k = p.key.public();
        let capacity = n.ports.capacity();
        let tw_reusable = n
            .sysctls
            .tw_reusable(p.key.src.is_loopback() || p.key.dst.is_loopback());
        let in_use = p.in_use();
        let blocking = if tw_reusable {
            in_use - p.consuming.get(TcpState::TimeWait)
        } else {
            in_use
        };
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

    pub fn pool(&self, key: &PoolKey, now_ns: u64) -> Option<PoolStats> {
        let id = self.pool_id(key)?;
        let owners = self.pool_owners();
        Some(self.pool_stats(
            self.pools.get(id),
            owners.get(&id).map_or(&[][..], Vec::as_slice),
            now_ns,
        ))
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

    /// Processes with sockets or failures, most sockets first (at most `top_n`).
    pub fn processes(&self, top_n: usize) -> Vec<ProcessStats> {
        let mut out: FxHashMap<u32, Vec<DestStats>> = FxHashMap::default();
        for (_, l) in self.links.iter() {
            if let LinkKey::Out { owner, pool } = l.key
                && owner != NONE
            {
                let k = self.pools.get(pool).key.public();
                out.entry(owner).or_default().push(DestStats {
                    netns: k.netns,
                    src: k.src,
                    dst: k.dst,
                    states: l.counts,
                    total: l.counts.total(),
                    bind_before_connect: l.bind_any,
                });
            }
        }
        let mut listening: FxHashMap<u32, Vec<std::net::SocketAddr>> = FxHashMap::default();
        for (_, l) in self.listeners.iter() {
            if l.owner != NONE && l.listening > 0 {
                listening
                    .entry(l.owner)
                    .or_default()
                    .push(std::net::SocketAddr::new(l.ip.get(), l.port));
            }
        }
        let mut v: Vec<ProcessStats> = self
            .procs
            .iter()
            .filter(|(_, p)| p.sockets > 0 || p.failures > 0 || p.connects > 0)
            .map(|(id, p)| {
                let mut outbound = out.remove(&id).unwrap_or_default();
                outbound.sort_by_key(|d| std::cmp::Reverse(d.total));
                let mut outbound_states = StateCounts::default();
                for d in &outbound {
                    outbound_states.merge(&d.states);
                }
                ProcessStats {
                    process: ProcRef {
                        pid: p.pid,
                        ppid: p.ppid,
                        comm: p.comm,
                        workload: self.workloads.get(p.cgroup),
                    },
                    sockets: p.sockets,
                    connects: p.connects,
                    failures: p.failures,
                    outbound_states,
                    outbound,
                    listening: listening.remove(&id).unwrap_or_default(),
                    first_seen_ns: p.first_ns,
                    last_seen_ns: p.last_ns,
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then(b.connects.cmp(&a.connects))
                .then(a.process.pid.cmp(&b.process.pid))
        });
        v.truncate(top_n);
        v
    }

    /// Processes grouped by (comm, ppid), most sockets first.
    pub fn process_groups(&self, top_n: usize) -> Vec<ProcessGroupStats> {
        let per = self.processes(usize::MAX);
        let mut m: FxHashMap<(crate::event::Comm, u32), ProcessGroupStats> = FxHashMap::default();
        for p in per {
            let g = m
                .entry((p.process.comm, p.process.ppid))
                .or_insert_with(|| ProcessGroupStats {
                    comm: p.process.comm,
                    ppid: p.process.ppid,
                    processes: 0,
                    sockets: 0,
                    connects: 0,
                    failures: 0,
                    outbound_states: StateCounts::default(),
                });
            g.processes += 1;
            g.sockets += p.sockets;
            g.connects += p.connects;
            g.failures += p.failures;
            g.outbound_states.merge(&p.outbound_states);
        }
        let mut v: Vec<ProcessGroupStats> = m.into_values().collect();
        v.sort_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then(b.connects.cmp(&a.connects))
                .then(a.ppid.cmp(&b.ppid))
        });
        v.truncate(top_n);
        v
    }

    /// Listeners with their accepted sockets by remote IP (at most `top_remotes` each).
    pub fn listeners(&self, top_n: usize, top_remotes: usize) -> Vec<ListenerStats> {
        let mut remotes: FxHashMap<u32, Vec<RemoteStats>> = FxHashMap::default();
        for (_, l) in self.links.iter() {
            if let LinkKey::In { listener, rip } = l.key {
                remotes.entry(listener).or_default().push(RemoteStats {
                    ip: rip.get(),
                    states: l.counts,
                    total: l.counts.total(),
                });
            }
        }
        let mut v: Vec<ListenerStats> = self
            .listeners
            .iter()
            .map(|(id, l)| {
                let mut by_remote = remotes.remove(&id).unwrap_or_default();
                by_remote.sort_by(|a, b| b.total.cmp(&a.total).then(a.ip.cmp(&b.ip)));
                let mut states = StateCounts::default();
                for r in &by_remote {
                    states.merge(&r.states);
                }
                by_remote.truncate(top_remotes);
                ListenerStats {
                    netns: l.netns,
                    local: std::net::SocketAddr::new(l.ip.get(), l.port),
                    owner: self.proc_ref(l.owner),
                    listening: l.listening,
                    since_ns: l.since_ns,
                    accepted: l.accepted,
                    states,
                    by_remote,
                    closes: l.closes,
                }
            })
            .collect();
        v.sort_by(|a, b| {
            b.states
                .total()
                .cmp(&a.states.total())
                .then(a.local.cmp(&b.local))
        });
        v.truncate(top_n);
        v
    }

    /// Failure totals (top `top_n` per table) and the recent log.
    pub fn failures(&self, top_n: usize) -> FailureStats {
        let f = &self.failures;
        let mut by_errno: Vec<ErrnoCount> = f
            .by_errno
            .iter()
            .map(|(e, c)| ErrnoCount {
                errno: *e,
                count: *c,
            })
            .collect();
        by_errno.sort_by(|a, b| {
            b.count
                .count
                .cmp(&a.count.count)
                .then(a.errno.cmp(&b.errno))
        });
        let mut by_process: Vec<ProcessFailures> = f
            .by_process
            .map
            .iter()
            .map(|(k, c)| ProcessFailures {
                pid: k.pid,
                comm: k.comm,
                call: k.call,
                errno: k.errno,
                count: *c,
            })
            .collect();
        by_process.sort_by(|a, b| b.count.count.cmp(&a.count.count).then(a.pid.cmp(&b.pid)));
        by_process.truncate(top_n);
        let mut by_destination: Vec<DestFailures> = f
            .by_dest
            .map
            .iter()
            .map(|(k, c)| DestFailures {
                netns: k.netns,
                addr: k.addr,
                call: k.call,
                errno: k.errno,
                count: *c,
            })
            .collect();
        by_destination.sort_by(|a, b| b.count.count.cmp(&a.count.count).then(a.addr.cmp(&b.addr)));
        by_destination.truncate(top_n);
        FailureStats {
            total: f.total,
            by_errno,
            by_process,
            by_destination,
            recent: f
                .recent
                .iter()
                .map(|r| super::FailureRecord {
                    workload: self.workloads.get(r.cgroup),
                    ..r.clone()
                })
                .collect(),
        }
    }

    pub fn recent_failures(&self) -> impl Iterator<Item = &super::FailureRecord> {
        self.failures.recent.iter()
    }

    pub fn corrections(&self) -> impl Iterator<Item = &super::Correction> {
        self.corrections.iter()
    }

    /// Everything views need, owned.
    pub fn summary(&self, now_ns: u64, top_n: usize) -> Summary {
        Summary {
            at_ns: now_ns,
            counters: self.counters(),
            totals: self.totals(),
            sysctls: self.sysctls(),
            pools: self.pools(now_ns, top_n),
            processes: self.processes(top_n),
            process_groups: self.process_groups(top_n),
            listeners: self.listeners(top_n, top_n),
            failures: self.failures(top_n),
            corrections: self.corrections.iter().cloned().collect(),
        }
    }
}
