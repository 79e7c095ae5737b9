//! `info`: what a recording holds, from one pass over it.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Seek},
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{ContextRecord, Error, Header, Integrity, Item, Reader};
use crate::{
    collect::Counters,
    event::{CallKind, EventKind, TwOp},
    model::Input,
};

/// Events by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct KindCounts {
    pub state: u64,
    pub connect_ok: u64,
    pub connect_failed: u64,
    pub bind_ok: u64,
    pub bind_failed: u64,
    pub tw_start: u64,
    pub tw_cancel: u64,
    pub tw_expire: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub header: Header,
    pub minor_version: u16,
    /// Earliest and latest event timestamp (CLOCK_MONOTONIC ns).
    pub first_ts_ns: Option<u64>,
    pub last_ts_ns: Option<u64>,
    pub events: u64,
    pub by_kind: KindCounts,
    /// Context records by type.
    pub contexts: BTreeMap<String, u64>,
    /// The last loss counters (events the kernel could not deliver), if any were recorded.
    pub loss: Option<Counters>,
    /// Warnings recorded (degraded hooks, namespaces not read, failed reconciliations).
    pub warnings: Vec<String>,
    pub netns: BTreeSet<u32>,
    pub processes: usize,
    pub integrity: Integrity,
    /// Errors met while reading (damaged chunks), in file order.
    pub errors: Vec<String>,
}

impl Info {
    pub fn open(path: impl AsRef<Path>) -> Result<Info, Error> {
        Ok(Info::scan(Reader::open(path)?))
    }

    /// Reads `reader` to the end.
    pub fn scan<R: Read + Seek>(mut reader: Reader<R>) -> Info {
        let mut info = Info {
            path: reader.path().to_path_buf(),
            file_bytes: reader.file_len(),
            header: reader.header().clone(),
            minor_version: reader.minor_version(),
            first_ts_ns: None,
            last_ts_ns: None,
            events: 0,
            by_kind: KindCounts::default(),
            contexts: BTreeMap::new(),
            loss: None,
            warnings: Vec::new(),
            netns: BTreeSet::new(),
            processes: 0,
            integrity: Integrity::default(),
            errors: Vec::new(),
        };
        let mut pids = BTreeSet::new();
        for item in reader.by_ref() {
            match item {
                Ok(Item::Event(e)) => {
                    info.events += 1;
                    info.first_ts_ns = Some(info.first_ts_ns.map_or(e.ts_ns, |t| t.min(e.ts_ns)));
                    info.last_ts_ns = Some(info.last_ts_ns.map_or(e.ts_ns, |t| t.max(e.ts_ns)));
                    info.netns.insert(e.netns);
                    // pid 0: a record without a task (a softirq transition, a timer).
                    if e.task.pid != 0 {
                        pids.insert(e.task.pid);
                    }
                    let k = &mut info.by_kind;
                    match e.kind {
                        EventKind::State(_) => k.state += 1,
                        EventKind::Call(c) => match (c.call, c.error.is_some()) {
                            (CallKind::Connect, false) => k.connect_ok += 1,
                            (CallKind::Connect, true) => k.connect_failed += 1,
                            (CallKind::Bind, false) => k.bind_ok += 1,
                            (CallKind::Bind, true) => k.bind_failed += 1,
                        },
                        EventKind::TimeWait(t) => match t.op {
                            TwOp::Start => k.tw_start += 1,
                            TwOp::Cancel => k.tw_cancel += 1,
                            TwOp::Expire => k.tw_expire += 1,
                        },
                    }
                }
                Ok(Item::Context(c)) => {
                    *info.contexts.entry(c.kind().to_string()).or_default() += 1;
                    match c {
                        ContextRecord::Input(Input::Loss(l)) => info.loss = Some(l.value),
                        ContextRecord::Input(Input::Warning(w)) => info.warnings.push(w.value),
                        _ => {}
                    }
                }
                Err(e) => info.errors.push(e.to_string()),
            }
        }
        info.processes = pids.len();
        info.integrity = reader.integrity().clone();
        info
    }

    /// Recorded time span in nanoseconds.
    pub fn span_ns(&self) -> u64 {
        match (self.first_ts_ns, self.last_ts_ns) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        }
    }
}
