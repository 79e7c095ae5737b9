//! Live tracing as a console [`Source`]: the session's inputs (events, ticks, loss counters,
//! snapshots, warnings) feed the model between frames through [`Live::pump`], as in every
//! other live command.

use super::Source;
use crate::{
    collect::monotonic_now_ns,
    event::Event,
    model::Model,
    session::{Live, Pumped},
    tui::{Action, SourceInfo},
};

pub struct LiveSource {
    pub live: Live,
    now_ns: u64,
}

impl LiveSource {
    pub fn new(live: Live) -> LiveSource {
        LiveSource {
            live,
            now_ns: monotonic_now_ns(),
        }
    }
}

impl Source for LiveSource {
    async fn next_events(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()> {
        if self.live.next_batch(out).await? == Pumped::Ended {
            anyhow::bail!("the collector stopped");
        }
        Ok(())
    }

    fn tick(&mut self, _out: &mut Vec<Event>) -> anyhow::Result<()> {
        self.now_ns = monotonic_now_ns().max(self.live.model.now_ns());
        Ok(())
    }

    fn model(&self) -> &Model {
        &self.live.model
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn info(&self) -> SourceInfo {
        SourceInfo::Live
    }

    fn control(&mut self, _action: Action, _out: &mut Vec<Event>) -> anyhow::Result<()> {
        Ok(())
    }
}
