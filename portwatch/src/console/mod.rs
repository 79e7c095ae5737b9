//! The interactive console: a session — live tracing ([`LiveSource`]) or a recording
//! ([`Player`]) — driving the TUI. Both implement [`Source`]; the terminal loop (`portwatch`,
//! `portwatch replay`, `portwatch demo`) is written once against it, and [`Frames`] turns a
//! source and the App's requests into one [`ViewData`] per refresh. No terminal I/O here, so
//! tests drive a source and an App directly.

mod live;
mod player;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

pub use live::LiveSource;
pub use player::Player;

use crate::{
    event::Event,
    model::Model,
    snapshot::{self, Drill, DrillTarget, Limits, LostEvents, Snapshot},
    tui::{Action, App, SourceInfo, ViewData},
};

/// Pools, processes and listeners per list in a refresh.
pub const TOP_N: usize = 50;
/// Drill-downs scan the socket table: at most this often for an unchanged target.
pub const DRILL_EVERY: Duration = Duration::from_secs(1);

/// What feeds the console: events as they come, and a model to show.
pub trait Source {
    /// Waits for new events, applies them to the model and appends them to `out`. A source
    /// that only moves on [`Source::tick`] (a replay) never returns.
    fn next_events(
        &mut self,
        out: &mut Vec<Event>,
    ) -> impl std::future::Future<Output = anyhow::Result<()>>;
    /// Brings the model to now before a refresh (live: the clock and reconciliation; replay:
    /// plays up to the playing position). Appends the events it applied to `out`.
    fn tick(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()>;
    fn model(&self) -> &Model;
    /// The time to explain the model at (CLOCK_MONOTONIC ns of the traced machine).
    fn now_ns(&self) -> u64;
    fn info(&self) -> SourceInfo;
    /// Replay controls ([`Action::TogglePause`], [`Action::Speed`], [`Action::Seek`]); a live
    /// source ignores them. Appends the events a seek applied to `out`.
    fn control(&mut self, action: Action, out: &mut Vec<Event>) -> anyhow::Result<()>;
}

/// Builds refreshes, answering the App's drill-down requests at most every [`DRILL_EVERY`]
/// (the last answer is reused in between).
#[derive(Default)]
pub struct Frames {
    drill: Option<(Drill, Instant)>,
}

impl Frames {
    /// One refresh: the snapshot (findings, tables, loss, warnings), the source and the
    /// drill-down asked for.
    pub fn view(&mut self, src: &impl Source, app: &App, now: Instant) -> ViewData {
        let snapshot = Snapshot::build(
            src.model(),
            src.now_ns(),
            &Limits::screen(TOP_N),
            // Loss counters and warnings are inputs: the model has them, live and replayed.
            LostEvents::from(src.model().loss()),
            src.model().warnings().texts.clone(),
        );
        ViewData {
            snapshot,
            source: src.info(),
            drill: app.drill_request().map(|t| self.drill(src, &t, now, false)),
        }
    }

    /// Answers a drill-down request that just changed (a key opened one), so the App need
    /// not wait for the next refresh. Does nothing when it is already answered.
    pub fn answer_new_request(&mut self, src: &impl Source, app: &mut App, now: Instant) {
        if let Some(t) = app.drill_request()
            && self.drill.as_ref().is_none_or(|(d, _)| d.target != t)
        {
            let d = self.drill(src, &t, now, true);
            app.set_drill(d);
        }
    }

    /// Forgets the cached drill-down (the model was rebuilt, e.g. a seek back).
    pub fn invalidate(&mut self) {
        self.drill = None;
    }

    fn drill(&mut self, src: &impl Source, t: &DrillTarget, now: Instant, force: bool) -> Drill {
        match &self.drill {
            Some((d, at)) if &d.target == t && !force && now.duration_since(*at) < DRILL_EVERY => {
                d.clone()
            }
            _ => {
                let d = snapshot::drill(src.model(), t, src.now_ns());
                self.drill = Some((d.clone(), now));
                d
            }
        }
    }
}

/// Frames per second allowed for the console.
pub const FPS_RANGE: std::ops::RangeInclusive<f64> = 1.0..=4.0;
