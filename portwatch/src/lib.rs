//! portwatch: who is exhausting ephemeral ports, and why.
//!
//! One event stream, one pure model, many views:
//! `collect` (kernel → typed [`event::Event`]s) feeds everything else.

pub mod collect;
pub mod console;
pub mod context;
pub mod demo;
pub mod event;
pub mod explain;
pub mod html;
pub mod model;
pub mod netns;
pub mod privileges;
pub mod record;
pub mod report;
pub mod serve;
pub mod session;
pub mod timeline;
pub mod tui;
pub mod workload;
