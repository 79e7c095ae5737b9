//! The terminal UI (issue 5): one screen that says whether a pool is running out, which process
//! and destination, why, and what to do.
//!
//! The boundary with the session loop (live tracing or replay, same code):
//!
//! ```text
//! let mut app = App::new(Options { color: theme::color_from_env(), ..Default::default() });
//! let mut term = TerminalGuard::enter()?;            // or run_terminal(|term| …)
//! loop (1–4 Hz, and after every key or resize):
//!     app.push_events(&new_events);                   // events tab (bounded ring)
//!     let drill = app.drill_request().map(|t| snapshot::drill(&model, &t, now));
//!     let snapshot = Snapshot::build(&model, now, &Limits::screen(50), loss, warnings);
//!     app.update(ViewData { snapshot, source, drill });
//!     term.draw(&app)?;
//! on a key:  match on_key(&mut app, key) { Quit => break, TogglePause | Speed | Seek => replay, … }
//! on SIGTERM/SIGINT: terminal::restore()
//! ```
//!
//! State lives in [`App`]; [`on_key`] is pure; `render` draws `(frame, area, &App)` and never
//! computes; `terminal` is the only terminal I/O.

mod app;
mod data;
mod eventlog;
mod keys;
mod render;
mod rows;
pub mod terminal;
pub mod theme;
mod widgets;

#[cfg(test)]
pub(crate) mod tests;

pub use app::{App, DrillState, Options};
pub use data::{Drill, DrillTarget, ReplayInfo, SourceInfo, ViewData};
pub use keys::{Action, HELP, KeyHelp, MAX_SPEED, MIN_SPEED, on_key};
pub use render::draw;
pub use rows::Tab;
pub use terminal::{TerminalGuard, restore, run_terminal};
