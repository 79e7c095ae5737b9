//! TUI tests: pure key → action tables and TestBackend snapshots of fixture models.

mod chart;
pub(crate) mod fixtures;
mod keys;
mod snapshots;
