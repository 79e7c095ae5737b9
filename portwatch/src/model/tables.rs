//! The read API, processes, listeners and failures, and [`Model::tables`]: every table at
//! once.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use super::{
    Model,
    counts::StateCounts,
    owner::{LinkKey, Proc},
    socket::NONE,
    summary::*,
};

impl Model {
    /// Outbound sockets per owner and pool (`only`: one owner's).
    fn outbound(&self, only: Option<u32>) -> FxHashMap<u32, Vec<DestStats>> {
        let mut out: FxHashMap<u32, Vec<DestStats>> = FxHashMap::default();
        for (_, l) in self.links.iter() {
            if let LinkKey::Out { owner, pool } = l.key
                && owner != NONE
                && only.is_none_or(|o| o == owner)
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
        out
    }

    /// Listening addresses per owner (`only`: one owner's).
    fn listening(&self, only: Option<u32>) -> FxHashMap<u32, Vec<SocketAddr>> {
        let mut listening: FxHashMap<u32, Vec<SocketAddr>> = FxHashMap::default();
        for (_, l) in self.listeners.iter() {
            if l.owner != NONE && l.listening > 0 && only.is_none_or(|o| o == l.owner) {
                listening
                    .entry(l.owner)
                    .or_default()
                    .push(SocketAddr::new(l.ip.get(), l.port));
            }
        }
        listening
    }

    fn process_stats(
        &self,
        p: &Proc,
        mut outbound: Vec<DestStats>,
        listening: Vec<SocketAddr>,
    ) -> ProcessStats {
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
                exe: p.exe.clone(),
                workload: self.workloads.get(p.cgroup),
            },
            sockets: p.sockets,
            connects: p.connects,
            failures: p.failures,
            outbound_states,
            outbound,
            listening,
            first_seen_ns: p.first_ns,
            last_seen_ns: p.last_ns,
        }
    }

    /// Processes with sockets or failures, most sockets first (at most `top_n`).
    pub fn processes(&self, top_n: usize) -> Vec<ProcessStats> {
        let mut out = self.outbound(None);
        let mut listening = self.listening(None);
        let mut v: Vec<ProcessStats> = self
            .procs
            .iter()
            .filter(|(_, p)| p.sockets > 0 || p.failures > 0 || p.connects > 0)
            .map(|(id, p)| {
                self.process_stats(
                    p,
                    out.remove(&id).unwrap_or_default(),
                    listening.remove(&id).unwrap_or_default(),
                )
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

    /// The process with this pid, if the model tracks it (for drill-downs; scans the links for
    /// its sockets only).
    pub fn process(&self, pid: u32) -> Option<ProcessStats> {
        let (id, p) = self.procs.iter().find(|(_, p)| p.pid == pid)?;
        Some(self.process_stats(
            p,
            self.outbound(Some(id)).remove(&id).unwrap_or_default(),
            self.listening(Some(id)).remove(&id).unwrap_or_default(),
        ))
    }

    /// Processes grouped by (comm, ppid), most sockets first.
    pub fn process_groups(&self, top_n: usize) -> Vec<ProcessGroupStats> {
        process_groups(&self.processes(usize::MAX), top_n)
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
        let mut groups: Vec<FailureGroup> = f
            .groups
            .map
            .iter()
            .map(|(k, g)| FailureGroup {
                netns: k.netns,
                comm: k.comm,
                call: k.call,
                errno: k.errno,
                addr: k.addr,
                pid: g.pid,
                ppid: g.ppid,
                pids: g.pids(),
                src: g.src,
                pool: g.pool,
                count: g.count,
            })
            .collect();
        groups.sort_by(|a, b| {
            (b.count.last_ns, b.count.count)
                .cmp(&(a.count.last_ns, a.count.count))
                .then(
                    (a.comm.0, a.addr, a.errno, a.netns).cmp(&(b.comm.0, b.addr, b.errno, b.netns)),
                )
        });
        groups.truncate(top_n);
        FailureStats {
            total: f.total,
            by_errno,
            by_process,
            by_destination,
            groups,
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

    /// Every table, each built once, whole (views cut them to their limits): what the
    /// snapshot and the explain engine read at one refresh.
    pub fn tables(&self, now_ns: u64) -> Tables {
        let processes = self.processes(usize::MAX);
        Tables {
            at_ns: now_ns,
            counters: self.counters(),
            totals: self.totals(),
            sysctls: self.sysctls(),
            pools: self.pools(now_ns, usize::MAX),
            process_groups: process_groups(&processes, usize::MAX),
            processes,
            listeners: self.listeners(usize::MAX, usize::MAX),
            close_wait: self.close_wait(now_ns, usize::MAX),
            failures: self.failures(usize::MAX),
            corrections: self.corrections.iter().cloned().collect(),
            nat_pools: self.nat_pools(now_ns),
            conntrack: self.conntrack(),
            episodes: self.episodes(),
        }
    }
}

/// Processes grouped by (comm, ppid), most sockets first (at most `top_n`).
pub fn process_groups(per: &[ProcessStats], top_n: usize) -> Vec<ProcessGroupStats> {
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
