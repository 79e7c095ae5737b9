//! Sessions: what drives the model. Every input — from the kernel live ([`Live`]) or from a
//! recording ([`Replay`]) — enters the model through [`crate::model::Model::feed`]; a live
//! session then hands each input to its [`Sink`]s (recorder, event printer, TUI event log).
//! [`run`] is the one loop of the tracing commands (report, record, events); the TUI runs
//! [`Live::pump`] from its own frame loop. [`traced`] builds the runtime and checks
//! privileges, once, for all of them.

mod driver;
mod exes;
pub mod live;
pub mod nat;
pub mod printer;
pub mod replay;
pub mod sink;
pub mod workloads;

pub use driver::{Until, block_on, run, traced};
pub use live::{Live, LiveOptions, Pumped};
pub use replay::Replay;
pub use sink::{EventTap, Flow, Recorder, Sink, StderrWarnings};

#[cfg(test)]
mod tests;
