//! Replay: a recording read back into the same model the live session uses. The recording
//! holds the events and, in order among them, the context that fed the live model (the
//! start-up snapshot, every reconciliation, the loss counters), so the model ends in the
//! same state: `report FILE` gives the findings the live report gave.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::recording::{self, Schema};
use crate::{
    collect::Counters,
    event::Event,
    model::{Model, ModelConfig, SystemSnapshot},
    record::{ContextRecord, Host, Item, Reader},
};

pub struct Replay {
    reader: Reader,
    path: PathBuf,
    pub model: Model,
    pub host: Host,
    /// The loss counters as last recorded.
    pub loss: Counters,
    /// Notes and problems met while reading (undecodable context, integrity warnings).
    pub warnings: Vec<String>,
    /// An item read ahead by `advance_to` (it belongs after the target time).
    ahead: Option<Item>,
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
            loss: Counters::default(),
            warnings: Vec::new(),
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

    /// Applies every item up to `ts_ns` (CLOCK_MONOTONIC of the recorded machine) and appends
    /// the events to `out`. Returns false at the end of the recording.
    pub fn advance_to(&mut self, ts_ns: u64, out: &mut Vec<Event>) -> anyhow::Result<bool> {
        loop {
            let item = match self.ahead.take() {
                Some(item) => item,
                None => match self.reader.next() {
                    Some(Ok(item)) => item,
                    Some(Err(e)) => {
                        // The reader resumes after damage; keep going, but say so.
                        self.warnings.push(format!("{}: {e}", self.path.display()));
                        continue;
                    }
                    None => {
                        self.finish_reading();
                        return Ok(false);
                    }
                },
            };
            let at = item_ts(&item).unwrap_or(self.position_ns);
            if at > ts_ns {
                self.ahead = Some(item);
                self.model.tick(ts_ns.max(self.position_ns));
                return Ok(true);
            }
            self.apply(item, out);
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
                self.warnings
                    .push(format!("{}: {integrity}", self.path.display()));
            }
            self.model.tick(self.position_ns);
        }
    }

    fn apply(&mut self, item: Item, out: &mut Vec<Event>) {
        match item {
            Item::Event(ev) => {
                self.position_ns = self.position_ns.max(ev.ts_ns);
                self.model.apply(&ev);
                self.events += 1;
                out.push(ev);
            }
            Item::Context(rec) => self.apply_context(rec),
        }
    }

    fn apply_context(&mut self, rec: ContextRecord) {
        match rec {
            ContextRecord::Snapshot(p) if p.schema == recording::WORKLOADS => {
                match p.decode::<Vec<crate::model::CgroupWorkload>>() {
                    Ok(learned) => self.model.learn_workloads(&learned),
                    Err(e) => self.warnings.push(format!("undecodable {}: {e}", p.schema)),
                }
            }
            ContextRecord::Snapshot(p) => {
                let schema = Schema::of(&p.schema);
                match (schema, p.decode::<SystemSnapshot>()) {
                    (Some(Schema::Startup), Ok(snap)) => {
                        self.position_ns = self.position_ns.max(p.ts_ns);
                        self.model.load_snapshot(&snap, p.ts_ns);
                    }
                    (Some(Schema::Reconcile), Ok(snap)) => {
                        self.position_ns = self.position_ns.max(p.ts_ns);
                        self.model.tick(p.ts_ns);
                        self.model.reconcile(&snap, p.ts_ns);
                    }
                    (None, _) => self
                        .warnings
                        .push(format!("unknown snapshot schema {}", p.schema)),
                    (_, Err(e)) => self.warnings.push(format!("undecodable {}: {e}", p.schema)),
                }
            }
            ContextRecord::Counters(c) if c.name == recording::LOSS => {
                self.position_ns = self.position_ns.max(c.ts_ns);
                match recording::counters_from_record(&c) {
                    Ok(loss) => self.loss = loss,
                    Err(e) => self
                        .warnings
                        .push(format!("undecodable loss counters: {e}")),
                }
            }
            ContextRecord::Note(n) => {
                self.position_ns = self.position_ns.max(n.ts_ns);
                if n.level == recording::WARNING_NOTE {
                    self.warnings.push(n.text);
                }
            }
            _ => {}
        }
    }
}

/// When an item happened, if it says.
fn item_ts(item: &Item) -> Option<u64> {
    match item {
        Item::Event(e) => Some(e.ts_ns),
        Item::Context(ContextRecord::Snapshot(p) | ContextRecord::Sysctls(p)) => Some(p.ts_ns),
        Item::Context(ContextRecord::Counters(c)) => Some(c.ts_ns),
        Item::Context(ContextRecord::Note(n)) => Some(n.ts_ns),
        Item::Context(ContextRecord::Process(p)) => Some(p.ts_ns),
        Item::Context(_) => None,
    }
}
