//! What a session feeds besides the model: a [`Sink`] sees every [`Input`] right after the
//! model took it (and may look at the model). The recorder, the event printer, the TUI's
//! event log and the stderr warning line are sinks; the model itself is fed by the session.

use std::time::Instant;

use anyhow::Context as _;

use crate::{
    event::Event,
    model::{Input, Model},
    record::{Summary, Writer},
};

/// Whether the session should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// This sink is done (its output closed): the session may stop.
    Stop,
}

pub trait Sink {
    /// Sees the input before the model takes it (e.g. to learn what a closing event's socket
    /// was, before the model forgets it). Most sinks need not.
    fn before(&mut self, _input: &Input, _model: &Model) {}
    /// Sees the input after the model took it.
    fn feed(&mut self, input: &Input, model: &Model) -> anyhow::Result<Flow>;
}

/// Keeps the events (for views that show raw events).
pub struct EventTap<'a>(pub &'a mut Vec<Event>);

impl Sink for EventTap<'_> {
    fn feed(&mut self, input: &Input, _model: &Model) -> anyhow::Result<Flow> {
        if let Input::Event(e) = input {
            self.0.push(*e);
        }
        Ok(Flow::Continue)
    }
}

/// Writes every input to a recording, as it is given; flushes on the clock's ticks.
pub struct Recorder {
    writer: Writer,
}

impl Recorder {
    pub fn new(writer: Writer) -> Recorder {
        Recorder { writer }
    }

    /// Ends the file (END chunk, sync).
    pub fn finish(self) -> anyhow::Result<Summary> {
        let path = self.writer.path().display().to_string();
        self.writer
            .finish()
            .with_context(|| format!("finish {path}"))
    }
}

impl Sink for Recorder {
    fn feed(&mut self, input: &Input, _model: &Model) -> anyhow::Result<Flow> {
        let w = &mut self.writer;
        w.input(input)
            .with_context(|| format!("write {}", w.path().display()))?;
        if let Input::Tick(_) = input {
            w.flush_if_due(Instant::now())
                .with_context(|| format!("write {}", w.path().display()))?;
        }
        Ok(Flow::Continue)
    }
}

/// Prints each new warning to stderr as it arrives (`portwatch: warning: …`).
#[derive(Default)]
pub struct StderrWarnings;

impl Sink for StderrWarnings {
    fn feed(&mut self, input: &Input, _model: &Model) -> anyhow::Result<Flow> {
        if let Input::Warning(w) = input {
            eprintln!("portwatch: warning: {}", w.value);
        }
        Ok(Flow::Continue)
    }
}
