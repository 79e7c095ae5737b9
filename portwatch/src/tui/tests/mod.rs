//! TUI tests: pure key → action tables and TestBackend snapshots of fixture models.

mod chart;
mod fit;
pub(crate) mod fixtures;
mod keys;
mod nat;
mod snapshots;
