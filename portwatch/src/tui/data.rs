//! What the session hands the TUI each refresh: the same structure from live tracing and from
//! replay, so both drive one TUI (trippy's engine/TUI split).

use crate::snapshot::Snapshot;
pub use crate::snapshot::{Drill, DrillTarget};

/// One refresh worth of data: the session's [`Snapshot`] (built at 1–4 Hz, never by the
/// TUI), where it comes from, and the drill-down asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewData {
    /// Findings, tables, loss and warnings, cut to `Limits::screen`.
    pub snapshot: Snapshot,
    pub source: SourceInfo,
    /// The drill-down the App asked for with [`super::App::drill_request`], if the session
    /// has computed it (see [`crate::snapshot::drill()`]).
    pub drill: Option<Drill>,
}

impl ViewData {
    /// Nothing seen yet (before the first refresh).
    pub fn empty(source: SourceInfo) -> ViewData {
        ViewData {
            snapshot: Snapshot::empty(),
            source,
            drill: None,
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
