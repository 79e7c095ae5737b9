//! One refresh's picture: the model's tables and the explain engine's findings, taken once at
//! one moment, cut to what the views show. Every view only renders a [`Snapshot`]: the TUI,
//! the text and JSON reports (`crate::report`), the metrics exporter.
//!
//! ```text
//! Model ──tables(now)──▶ Tables ──explain_tables──▶ findings, pool severities
//!                          └───────────────┬───────────────┘
//!                                 Snapshot::build (cut to Limits)
//! ```
//!
//! Each table is built once per refresh from indexes kept by the model; the explain engine
//! reads the same tables (no second query). Drill-downs ([`drill()`]) scan the socket table and
//! are answered on demand, not per refresh.

pub mod cells;
mod drill;
mod lost;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use drill::{Drill, DrillTarget, drill};
pub use lost::LostEvents;

use crate::{
    explain::{Finding, Severity, explain_tables},
    model::{
        CloseWaitStats, Correction, Episode, FailureStats, GroupBy, ListenerStats, Model,
        ModelCounters, NetnsSysctls, PoolKey, PoolStats, ProcessGroupStats, ProcessStats, Totals,
        WorkloadGroupStats,
        nat::{ConntrackStats, NatPoolStats},
    },
};

/// How much of each table a snapshot keeps (the explain engine always reads them whole).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub pools: usize,
    /// Processes, process groups and CLOSE_WAIT owners.
    pub processes: usize,
    pub listeners: usize,
    /// Remote IPs per listener.
    pub remotes: usize,
    /// Rows of each failure table (by process, by destination, repeat groups).
    pub failures: usize,
    /// Failures of the recent log (the newest).
    pub recent_failures: usize,
    /// `--group-by`: also group processes by container, pod or unit.
    pub group_by: Option<GroupBy>,
}

impl Limits {
    /// What a report keeps (the default).
    pub const REPORT: Limits = Limits {
        pools: 10,
        processes: 10,
        listeners: 5,
        remotes: 5,
        failures: 10,
        recent_failures: 10,
        group_by: None,
    };

    /// What a screen can scroll through: `n` rows of each table, the whole recent log.
    pub const fn screen(n: usize) -> Limits {
        Limits {
            pools: n,
            processes: n,
            listeners: n,
            remotes: n,
            failures: n,
            recent_failures: usize::MAX,
            group_by: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::REPORT
    }
}

/// Everything the views show at one moment. Serialised, it is the body of the JSON report (the
/// field names and order are the README's "Report JSON schema"); what the schema does not have
/// is skipped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// CLOCK_MONOTONIC ns of the traced machine the snapshot was taken at.
    #[serde(skip)]
    pub at_ns: u64,
    /// Ranked, most severe first.
    pub findings: Vec<Finding>,
    /// Most urgent first.
    pub pools: Vec<PoolStats>,
    /// Each pool's severity as the explain engine judged it (`None`: healthy), aligned with
    /// `pools`: what views colour a pool by.
    #[serde(skip)]
    pub pool_severity: Vec<Option<Severity>>,
    /// Most sockets first.
    pub processes: Vec<ProcessStats>,
    /// Processes sharing a command and a parent, most sockets first (groups of one included).
    pub process_groups: Vec<ProcessGroupStats>,
    /// With `--group-by`: processes by container, pod or unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<WorkloadGroups>,
    /// Listeners with their accepted connections by remote IP.
    pub listeners: Vec<ListenerStats>,
    pub close_wait: Vec<CloseWaitStats>,
    /// Totals, top processes and destinations, and the most recent failures (last).
    pub failures: FailureStats,
    /// Per network namespace.
    pub sysctls: Vec<NetnsSysctls>,
    /// Ports of source-NAT rules per (NAT namespace, protocol, translated IP, destination),
    /// fullest first, with the clients behind them.
    pub nat_pools: Vec<NatPoolStats>,
    /// Conntrack of each namespace that does source NAT.
    pub conntrack: Vec<ConntrackStats>,
    /// Exhaustion episodes (ongoing and past), the latest `Limits::pools`, oldest first:
    /// what held each pool at its peak and when `connect()` failed.
    pub episodes: Vec<Episode>,
    pub totals: Totals,
    /// Events that never reached the model (see [`LostEvents`]).
    pub lost_events: LostEvents,
    /// The model's own health (evictions, events it could not place).
    pub model: ModelCounters,
    /// Corrections by reconciliation, most recent last.
    #[serde(skip)]
    pub corrections: Vec<Correction>,
    /// What the sources could not do (hooks not attached, namespaces not read, failed
    /// reconciliations, a damaged recording), one short sentence each, in the order first
    /// seen: the model keeps them (they are inputs), so a recording's replay has them too.
    pub warnings: Vec<String>,
}

/// Processes grouped by container, pod or unit (`report --group-by`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadGroups {
    pub by: GroupBy,
    pub groups: Vec<WorkloadGroupStats>,
}

fn cut<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
    v.truncate(n);
    v
}

impl Snapshot {
    /// The model at `now_ns`, explained, cut to `limits`. Takes every table once.
    pub fn build(
        model: &Model,
        now_ns: u64,
        limits: &Limits,
        lost_events: LostEvents,
        warnings: Vec<String>,
    ) -> Snapshot {
        let t = model.tables(now_ns);
        let explained = explain_tables(model, &t);
        let mut listeners = cut(t.listeners, limits.listeners);
        for l in &mut listeners {
            l.by_remote.truncate(limits.remotes);
        }
        let mut failures = t.failures;
        failures.by_process.truncate(limits.failures);
        failures.by_destination.truncate(limits.failures);
        failures.groups.truncate(limits.failures);
        let keep = failures.recent.len().saturating_sub(limits.recent_failures);
        failures.recent.drain(..keep);
        Snapshot {
            at_ns: now_ns,
            findings: explained.findings,
            pools: cut(t.pools, limits.pools),
            pool_severity: cut(explained.pool_severity, limits.pools),
            processes: cut(t.processes, limits.processes),
            process_groups: cut(t.process_groups, limits.processes),
            groups: limits.group_by.map(|by| WorkloadGroups {
                by,
                groups: model.workload_groups(by, limits.processes),
            }),
            listeners,
            close_wait: cut(t.close_wait, limits.processes),
            failures,
            sysctls: t.sysctls,
            nat_pools: cut(t.nat_pools, limits.pools),
            conntrack: t.conntrack,
            episodes: {
                let mut e = t.episodes;
                e.drain(..e.len().saturating_sub(limits.pools));
                e
            },
            totals: t.totals,
            lost_events,
            model: t.counters,
            corrections: t.corrections,
            warnings,
        }
    }

    /// Nothing seen yet (before the first refresh).
    pub fn empty() -> Snapshot {
        Snapshot {
            at_ns: 0,
            findings: Vec::new(),
            pools: Vec::new(),
            pool_severity: Vec::new(),
            processes: Vec::new(),
            process_groups: Vec::new(),
            groups: None,
            listeners: Vec::new(),
            close_wait: Vec::new(),
            failures: FailureStats {
                total: 0,
                by_errno: Vec::new(),
                by_process: Vec::new(),
                by_destination: Vec::new(),
                groups: Vec::new(),
                recent: Vec::new(),
            },
            sysctls: Vec::new(),
            nat_pools: Vec::new(),
            conntrack: Vec::new(),
            episodes: Vec::new(),
            totals: Totals {
                all: Default::default(),
                per_netns: Vec::new(),
            },
            lost_events: LostEvents::default(),
            model: ModelCounters::default(),
            corrections: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The severity of pool `i` (of [`Snapshot::pools`]).
    pub fn severity_of_pool(&self, i: usize) -> Option<Severity> {
        self.pool_severity.get(i).copied().flatten()
    }

    /// The severity of the pool with this key, if it is among the snapshot's pools (a
    /// drill-down's pool; a linear search, on demand).
    pub fn severity_of(&self, key: &PoolKey) -> Option<Severity> {
        let i = self.pools.iter().position(|p| p.key() == *key)?;
        self.severity_of_pool(i)
    }
}
