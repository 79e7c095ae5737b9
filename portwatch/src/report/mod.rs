//! Reports: the findings, then the tables that back them, for one window of a live run or a
//! recording. [`Report`] is the `--json` document (schema in the README, "Report JSON
//! schema"); [`text::render`] is the plain-text diagnosis for people.
//!
//! A report is a [`Snapshot`] with its context (host, window, source); it computes nothing
//! itself (docs/design.md: views render the snapshot).

mod nat;
mod tables;
pub mod text;
mod wrap;

#[cfg(test)]
pub(crate) mod tests;

use serde::Serialize;

pub use crate::snapshot::{Limits, LostEvents};
use crate::{model::Model, snapshot::Snapshot};

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

impl Context {
    /// Window length in seconds.
    pub fn window_s(&self) -> f64 {
        self.window_end_ns.saturating_sub(self.window_start_ns) as f64 / 1e9
    }
}

/// One report: `portwatch report --json` prints exactly this: the context, then the snapshot's
/// findings and tables.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub context: Context,
    /// Its `process_groups` are only groups of more than one process (loops of short-lived
    /// clients).
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

impl Report {
    /// A report of `snapshot`, taken at `context.window_end_ns`.
    pub fn new(context: Context, mut snapshot: Snapshot) -> Report {
        snapshot.process_groups.retain(|g| g.processes > 1);
        Report {
            schema_version: SCHEMA_VERSION,
            context,
            snapshot,
        }
    }

    /// Builds a report of the model at `context.window_end_ns`.
    pub fn build(model: &Model, context: Context, lost: LostEvents, limits: Limits) -> Report {
        let warnings = model.warnings().texts.clone();
        let snapshot = Snapshot::build(model, context.window_end_ns, &limits, lost, warnings);
        Report::new(context, snapshot)
    }

    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

/// A report reads as its snapshot (`report.pools`, `report.findings`, …).
impl std::ops::Deref for Report {
    type Target = Snapshot;

    fn deref(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl std::ops::DerefMut for Report {
    fn deref_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }
}
