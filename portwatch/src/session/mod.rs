//! Sessions: what drives the model. `live` attaches to the kernel; replay (of a recording)
//! feeds the same model from a file. Views (report, TUI, recorder) consume either.

pub mod live;
pub mod recording;
pub mod replay;
pub mod workloads;

pub use live::{Live, LiveOptions};
pub use replay::Replay;
