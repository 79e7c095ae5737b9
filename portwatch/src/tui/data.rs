//! What the session hands the TUI each refresh: the same structure from live tracing and from
//! replay, so both drive one TUI (trippy's engine/TUI split).

use crate::{
    collect::Counters,
    explain::finding::Finding,
    model::{PoolKey, PoolStats, ProcessStats, SocketInfo, Summary},
};

/// One refresh worth of data. Built by the session at 1–4 Hz from the model, the explain
/// engine and the collector (or the replay reader); never by the TUI.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewData {
    /// `Model::summary(now, top_n)`.
    pub summary: Summary,
    /// Ranked findings, most important first.
    pub findings: Vec<Finding>,
    /// Collector counters (lost events); all zero in replay unless the recording carries them.
    pub loss: Counters,
    pub source: SourceInfo,
    /// The drill-down the App asked for with [`super::App::drill_request`], if the session
    /// has computed it (see [`super::drill::collect`]).
    pub drill: Option<Drill>,
    /// Degraded hooks, assumed sysctls and the like: one short sentence each.
    pub warnings: Vec<String>,
}

impl ViewData {
    /// Nothing seen yet (before the first refresh).
    pub fn empty(source: SourceInfo) -> ViewData {
        ViewData {
            summary: Summary {
                at_ns: 0,
                counters: Default::default(),
                totals: crate::model::Totals {
                    all: Default::default(),
                    per_netns: Vec::new(),
                },
                sysctls: Vec::new(),
                pools: Vec::new(),
                processes: Vec::new(),
                process_groups: Vec::new(),
                listeners: Vec::new(),
                failures: crate::model::FailureStats {
                    total: 0,
                    by_errno: Vec::new(),
                    by_process: Vec::new(),
                    by_destination: Vec::new(),
                    recent: Vec::new(),
                },
                corrections: Vec::new(),
            },
            findings: Vec::new(),
            loss: Counters::default(),
            source,
            drill: None,
            warnings: Vec::new(),
        }
    }
}

/// Where the events come from.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceInfo {
    /// Tracing this host now.
    Live,
    Replay(ReplayInfo),
}

impl SourceInfo {
    pub fn is_replay(&self) -> bool {
        matches!(self, SourceInfo::Replay(_))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplayInfo {
    /// The recording, as the user named it.
    pub file: String,
    /// Seconds since the start of the recording.
    pub position_s: f64,
    /// Length of the recording, when known.
    pub duration_s: Option<f64>,
    /// Replay speed (1.0 = real time).
    pub speed: f64,
    pub paused: bool,
    /// The last event has been replayed.
    pub ended: bool,
}

/// What to drill into. The App asks for one with [`super::App::drill_request`]; the session
/// answers with a [`Drill`] for the same target in the next [`ViewData`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrillTarget {
    Pool(PoolKey),
    Process { pid: u32 },
}

/// Sockets and history of one pool or process.
#[derive(Clone, Debug, PartialEq)]
pub struct Drill {
    pub target: DrillTarget,
    /// The pool now, even if it fell out of the summary's top pools (for a process: the
    /// pool of `history`).
    pub pool: Option<PoolStats>,
    /// The process now (process target).
    pub process: Option<ProcessStats>,
    /// Its sockets, oldest first (at most [`super::drill::SOCKET_LIMIT`]).
    pub sockets: Vec<SocketInfo>,
    /// `sockets` was cut at the limit.
    pub truncated: bool,
    /// Ports in use per second, oldest first (`Model::pool_history`): the pool's, or for a
    /// process the pool where it has the most sockets.
    pub history: Vec<u32>,
    /// The pool `history` belongs to.
    pub history_pool: Option<PoolKey>,
}
