//! Reports: the findings, then the tables that back them, for one window of a live run or a
//! recording. [`Report`] is the `--json` document (schema in the README, "Report JSON
//! schema"); [`text::render`] is the plain-text diagnosis for people.
//!
//! A report is built from the model, the explain engine and the loss counters, and computes
//! nothing itself beyond copying them (docs/design.md: views render the snapshot).

mod lost;
mod tables;
pub mod text;
mod wrap;

#[cfg(test)]
mod tests;

use serde::Serialize;

pub use lost::LostEvents;

use crate::{
    explain::{Finding, explain},
    model::{
        CloseWaitStats, FailureStats, GroupBy, ListenerStats, Model, ModelCounters, NetnsSysctls,
        PoolStats, ProcessGroupStats, ProcessStats, Totals, WorkloadGroupStats,
    },
};

/// Version of the JSON layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Where the events came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Live,
    Recording,
}

/// What the report covers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Context {
    pub host: String,
    /// `uname -r`.
    pub kernel: String,
    pub source: Source,
    /// The recording file, for `source = recording`.
    pub recording: Option<String>,
    /// CLOCK_MONOTONIC ns of the first and last moment covered (the events' clock).
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    /// Wall-clock time of the window's end (RFC 3339), when the caller knows it.
    pub generated_at: Option<String>,
}

/// Processes grouped by container, pod or unit (`report --group-by`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadGroups {
    pub by: GroupBy,
    pub groups: Vec<WorkloadGroupStats>,
}

impl Context {
    /// Window length in seconds.
    pub fn window_s(&self) -> f64 {
        self.window_end_ns.saturating_sub(self.window_start_ns) as f64 / 1e9
    }
}

/// How much of each table a report keeps.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub pools: usize,
    pub processes: usize,
    pub listeners: usize,
    /// Remote IPs per listener.
    pub remotes: usize,
    pub failures: usize,
    /// `--group-by`: also group processes by container, pod or unit.
    pub group_by: Option<GroupBy>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            pools: 10,
            processes: 10,
            listeners: 5,
            remotes: 5,
            failures: 10,
            group_by: None,
        }
    }
}

/// One report: `portwatch report --json` prints exactly this.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub context: Context,
    /// Ranked, most severe first.
    pub findings: Vec<Finding>,
    /// Most urgent first.
    pub pools: Vec<PoolStats>,
    /// Most sockets first.
    pub processes: Vec<ProcessStats>,
    /// Processes sharing a command and a parent (loops of short-lived clients).
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
    pub totals: Totals,
    /// Events that never reached the model (see [`LostEvents`]).
    pub lost_events: LostEvents,
    /// The model's own health (evictions, events it could not place).
    pub model: ModelCounters,
}

impl Report {
    /// Builds a report of the model at `context.window_end_ns`.
    pub fn build(model: &Model, context: Context, lost: LostEvents, limits: Limits) -> Report {
        let now = context.window_end_ns;
        let mut process_groups = model.process_groups(limits.processes);
        process_groups.retain(|g| g.processes > 1);
        let mut failures = model.failures(limits.failures);
        let keep = failures.recent.len().saturating_sub(limits.failures);
        failures.recent.drain(..keep);
        Report {
            schema_version: SCHEMA_VERSION,
            findings: explain(model, now),
            pools: model.pools(now, limits.pools),
            processes: model.processes(limits.processes),
            process_groups,
            groups: limits.group_by.map(|by| WorkloadGroups {
                by,
                groups: model.workload_groups(by, limits.processes),
            }),
            listeners: model.listeners(limits.listeners, limits.remotes),
            close_wait: model.close_wait(now, limits.processes),
            failures,
            sysctls: model.sysctls(),
            totals: model.totals(),
            lost_events: lost,
            model: model.counters(),
            context,
        }
    }

    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}
