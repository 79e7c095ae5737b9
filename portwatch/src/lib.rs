//! portwatch: who is exhausting ephemeral ports, and why.
//!
//! One input stream, one pure model, one snapshot, many views (docs/design.md):
//! `collect` (kernel → typed [`event::Event`]s) and `context` (sock_diag, /proc) feed the
//! `model`; the views render what it and explain produce.
//!
//! The `portwatch` binary is [`cli::main`]: the subcommands (`cmd/`) live in this crate, so the
//! views and rules they use (`explain`, `report`, `html`, `privileges`) stay private. The
//! public modules are what the integration tests, the benchmark, the load generators and the
//! fuzzer use:
//!
//! - [`collect`]: load and attach the programs, read and decode events ([`collect::Collector`]);
//! - [`context`]: the start-up and reconciliation snapshots (sock_diag, owners, sysctls);
//! - [`event`]: the typed events;
//! - [`model`]: the pure model they feed;
//! - [`record`]: recordings (writer, reader, the synthetic churn of the benchmarks);
//! - [`session`]: a live or replayed session;
//! - [`serve`]: the metrics agent (its default port);
//! - [`netns`]: network namespace handles (the one place that enters one).
//!
//! `console`, `demo`, `timeline`, `tui` and `workload` are public but hidden from the docs:
//! no outside crate uses them, but each still holds items that nothing else in the crate uses
//! (a private module would flag them as dead code: `cargo build` lists them once they are made
//! private). Their owners should use or remove those, then drop the `pub`.

pub mod cli;
mod cmd;
pub mod collect;
#[doc(hidden)]
pub mod console;
pub mod context;
#[doc(hidden)]
pub mod demo;
pub mod event;
mod explain;
mod html;
pub mod model;
pub mod netns;
mod privileges;
pub mod record;
mod report;
pub mod serve;
pub mod session;
mod snapshot;
#[doc(hidden)]
pub mod timeline;
#[doc(hidden)]
pub mod tui;
#[doc(hidden)]
pub mod workload;
