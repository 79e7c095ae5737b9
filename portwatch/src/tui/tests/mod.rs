//! TUI tests: pure key → action tables and TestBackend snapshots of fixture models.

mod fixtures;
mod keys;
mod snapshots;
