//! portwatch: who is exhausting ephemeral ports, and why.
//!
//! One event stream, one pure model, many views:
//! `collect` (kernel → typed [`event::Event`]s) feeds everything else.

pub mod collect;
pub mod event;
/// Finding types only, until the explain engine lands (its branch turns this into
/// `pub mod explain;` with its own `explain/mod.rs`).
pub mod explain {
    pub mod finding;
}
pub mod lab;
pub mod model;
pub mod privileges;
pub mod tui;
