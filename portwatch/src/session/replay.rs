//! Replay: a recording read back into the same model the live session uses. The recording
//! is the sequence of [`Input`]s the live model took (events, the start-up snapshot, every
//! reconciliation, loss counters, warnings, clock ticks); replay decodes the same inputs and
//! feeds them through the same [`Model::feed`], so the model ends in the same state: `report
//! FILE` gives the report the live session gave. Problems met while reading (a damaged
//! chunk, a file cut short) enter the model as warnings.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::{
    event::Event,
    model::{Input, Model, ModelConfig},
    record::{Host, Item, Reader},
};

pub struct Replay {
    reader: Reader,
    path: PathBuf,
    pub model: Model,
    pub host: Host,
    /// An input read ahead by `advance_to` (it belongs after the target time).
    ahead: Option<Input>,
    /// CLOCK_MONOTONIC ns of the last item applied.
    pub position_ns: u64,
    /// Events applied so far.
    pub events: u64,
    ended: bool,
}

impl Replay {
    pub fn open(path: &Path, cfg: ModelConfig) -> anyhow::Result<Replay> {
        let reader = Reader::open(path).context("open recording")?;
        let host = reader.header().host.clone();
        let start = host.start_mono_ns;
        Ok(Replay {
            reader,
            path: path.to_path_buf(),
            model: Model::new(cfg),
            host,
            ahead: None,
            position_ns: start,
            events: 0,
            ended: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once every item has been applied.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Applies every input up to `ts_ns` (CLOCK_MONOTONIC of the recorded machine) and
    /// appends the events to `out`. Returns false at the end of the recording.
    pub fn advance_to(&mut self, ts_ns: u64, out: &mut Vec<Event>) -> anyhow::Result<bool> {
        loop {
            let input = match self.ahead.take() {
                Some(input) => input,
                None => match self.reader.next() {
                    Some(Ok(item)) => match Item::into_input(item) {
                        Some(input) => input,
                        None => continue, // a note, or a record of a newer portwatch
                    },
                    Some(Err(e)) => {
                        // The reader resumes after damage; keep going, but say so.
                        let text = format!("{}: {e}", self.path.display());
                        Input::warning(self.position_ns, text)
                    }
                    None => {
                        self.finish_reading();
                        return Ok(false);
                    }
                },
            };
            if input.at_ns() > ts_ns {
                self.ahead = Some(input);
                self.model.tick(ts_ns.max(self.position_ns));
                return Ok(true);
            }
            self.apply(input, out);
        }
    }

    /// Applies everything left.
    pub fn run_to_end(&mut self) -> anyhow::Result<()> {
        let mut sink = Vec::new();
        while self.advance_to(u64::MAX, &mut sink)? {
            sink.clear();
        }
        Ok(())
    }

    fn finish_reading(&mut self) {
        if !self.ended {
            self.ended = true;
            let integrity = self.reader.integrity();
            if !integrity.is_complete() {
                let text = format!("{}: {integrity}", self.path.display());
                self.model.feed(&Input::warning(self.position_ns, text));
            }
            self.model.tick(self.position_ns);
        }
    }

    fn apply(&mut self, input: Input, out: &mut Vec<Event>) {
        self.position_ns = self.position_ns.max(input.at_ns());
        self.model.feed(&input);
        if let Input::Event(ev) = input {
            self.events += 1;
            out.push(ev);
        }
    }

    /// Warnings the recording holds and problems met reading it.
    pub fn warnings(&self) -> &[String] {
        &self.model.warnings().texts
    }
}
