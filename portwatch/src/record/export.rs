//! One row per event with readable names, as CSV or JSON Lines, for DuckDB, pandas and
//! spreadsheets.
//!
//! The columns are stable (new ones are only ever appended) and the same in both formats;
//! an absent value is an empty CSV field and a JSON `null`:
//!
//! | column | content |
//! | --- | --- |
//! | `time` | wall-clock time, RFC 3339 UTC with nanoseconds (from the header's clocks) |
//! | `ts_ns` | CLOCK_MONOTONIC nanoseconds, as recorded |
//! | `netns` | network namespace inode |
//! | `pid`, `tid`, `ppid` | process, thread, parent process |
//! | `comm` | task name |
//! | `type` | `state`, `call` or `timewait` |
//! | `op` | call: `connect`/`bind`; timewait: `start`/`cancel`/`expire`; state: empty |
//! | `old_state`, `new_state` | state: the transition; timewait: `new_state` is the substate |
//! | `local`, `remote` | `ip:port`; call: `remote` for connect, `local` for bind |
//! | `errno` | call: `EADDRNOTAVAIL`…, empty on success |
//! | `fd` | call: the file descriptor |
//! | `sk` | kernel socket address (timewait: the timewait socket), hex |
//! | `bound_port` | successful bind: the port the socket got |
//! | `remaining_jiffies` | timewait: timer expiry minus now, in jiffies |

use std::{
    io::{self, Read, Seek, Write},
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{Error, Host, Item, Reader};
use crate::event::{CallKind, Event, EventKind, TwOp};

/// The columns, in order: the CSV header and the JSON keys.
pub const COLUMNS: [&str; 18] = [
    "time",
    "ts_ns",
    "netns",
    "pid",
    "tid",
    "ppid",
    "comm",
    "type",
    "op",
    "old_state",
    "new_state",
    "local",
    "remote",
    "errno",
    "fd",
    "sk",
    "bound_port",
    "remaining_jiffies",
];

/// Maps event timestamps to wall time with the header's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    wall_minus_mono: Option<i128>,
}

impl Clock {
    pub fn new(host: &Host) -> Clock {
        Clock {
            wall_minus_mono: (host.start_wall_ns != 0)
                .then(|| i128::from(host.start_wall_ns) - i128::from(host.start_mono_ns)),
        }
    }

    /// RFC 3339, UTC, nanoseconds; `None` without clocks or before the epoch.
    pub fn format(&self, ts_ns: u64) -> Option<String> {
        let wall = self.wall_minus_mono? + i128::from(ts_ns);
        let wall = u64::try_from(wall).ok()?;
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(wall);
        Some(humantime::format_rfc3339_nanos(t).to_string())
    }
}

/// One exported event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub time: Option<String>,
    pub ts_ns: u64,
    pub netns: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub comm: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub op: Option<&'static str>,
    pub old_state: Option<&'static str>,
    pub new_state: Option<&'static str>,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub errno: Option<String>,
    pub fd: Option<i32>,
    pub sk: Option<String>,
    pub bound_port: Option<u16>,
    pub remaining_jiffies: Option<i32>,
}

impl Row {
    pub fn new(e: &Event, clock: &Clock) -> Row {
        let mut r = Row {
            time: clock.format(e.ts_ns),
            ts_ns: e.ts_ns,
            netns: e.netns,
            pid: e.task.pid,
            tid: e.task.tid,
            ppid: e.task.ppid,
            comm: e.task.comm.to_string(),
            kind: "",
            op: None,
            old_state: None,
            new_state: None,
            local: None,
            remote: None,
            errno: None,
            fd: None,
            sk: None,
            bound_port: None,
            remaining_jiffies: None,
        };
        match &e.kind {
            EventKind::State(s) => {
                r.kind = "state";
                r.old_state = Some(s.old.name());
                r.new_state = Some(s.new.name());
                r.local = Some(s.local.to_string());
                r.remote = Some(s.remote.to_string());
                r.sk = Some(format!("{:#x}", s.sk));
            }
            EventKind::Call(c) => {
                r.kind = "call";
                match c.call {
                    CallKind::Connect => {
                        r.op = Some("connect");
                        r.remote = Some(c.addr.to_string());
                    }
                    CallKind::Bind => {
                        r.op = Some("bind");
                        r.local = Some(c.addr.to_string());
                    }
                }
                r.errno = c.error.map(|e| e.name());
                r.fd = Some(c.fd);
                r.sk = c.sk.map(|sk| format!("{sk:#x}"));
                r.bound_port = c.bound_port;
            }
            EventKind::TimeWait(t) => {
                r.kind = "timewait";
                r.op = Some(match t.op {
                    TwOp::Start => "start",
                    TwOp::Cancel => "cancel",
                    TwOp::Expire => "expire",
                });
                r.new_state = Some(t.substate.name());
                r.local = Some(t.local.to_string());
                r.remote = Some(t.remote.to_string());
                r.sk = Some(format!("{:#x}", t.tw));
                r.remaining_jiffies = Some(t.remaining_jiffies);
            }
        }
        r
    }

    /// The values in [`COLUMNS`] order, `None` for absent.
    pub fn fields(&self) -> [Option<String>; 18] {
        let s = |v: &Option<&str>| v.map(str::to_string);
        let n = |v: Option<i64>| v.map(|v| v.to_string());
        [
            self.time.clone(),
            Some(self.ts_ns.to_string()),
            Some(self.netns.to_string()),
            Some(self.pid.to_string()),
            Some(self.tid.to_string()),
            Some(self.ppid.to_string()),
            Some(self.comm.clone()),
            Some(self.kind.to_string()),
            s(&self.op),
            s(&self.old_state),
            s(&self.new_state),
            self.local.clone(),
            self.remote.clone(),
            self.errno.clone(),
            n(self.fd.map(i64::from)),
            self.sk.clone(),
            n(self.bound_port.map(i64::from)),
            n(self.remaining_jiffies.map(i64::from)),
        ]
    }
}

/// RFC 4180 CSV with a header row.
pub struct CsvWriter<W: Write> {
    w: W,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header row.
    pub fn new(mut w: W) -> io::Result<Self> {
        writeln!(w, "{}", COLUMNS.join(","))?;
        Ok(CsvWriter { w })
    }

    pub fn write(&mut self, row: &Row) -> io::Result<()> {
        for (i, f) in row.fields().iter().enumerate() {
            if i > 0 {
                self.w.write_all(b",")?;
            }
            if let Some(f) = f {
                if f.contains([',', '"', '\n', '\r']) {
                    write!(self.w, "\"{}\"", f.replace('"', "\"\""))?;
                } else {
                    self.w.write_all(f.as_bytes())?;
                }
            }
        }
        self.w.write_all(b"\n")
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// One JSON object a line, every key present (`null` when absent).
pub struct JsonlWriter<W: Write> {
    w: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(w: W) -> Self {
        JsonlWriter { w }
    }

    pub fn write(&mut self, row: &Row) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, row)?;
        self.w.write_all(b"\n")
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

/// What an export wrote and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    pub rows: u64,
    /// Damaged chunks skipped (see the reader's integrity).
    pub errors: Vec<String>,
}

enum Out<W: Write> {
    Csv(CsvWriter<W>),
    Jsonl(JsonlWriter<W>),
}

/// Writes every event of `reader` to `out`; damaged chunks are skipped and listed.
pub fn export<R: Read + Seek, W: Write>(
    reader: &mut Reader<R>,
    format: Format,
    out: W,
) -> Result<Exported, Error> {
    let clock = Clock::new(&reader.header().host);
    let io = |source| Error::Io {
        path: "(export output)".into(),
        cause: source,
    };
    let mut out = match format {
        Format::Csv => Out::Csv(CsvWriter::new(out).map_err(io)?),
        Format::Jsonl => Out::Jsonl(JsonlWriter::new(out)),
    };
    let mut done = Exported::default();
    for item in reader.by_ref() {
        let e = match item {
            Ok(Item::Event(e)) => e,
            Ok(Item::Context(_)) => continue,
            Err(e @ Error::Corrupt { .. }) => {
                done.errors.push(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        let row = Row::new(&e, &clock);
        match &mut out {
            Out::Csv(w) => w.write(&row),
            Out::Jsonl(w) => w.write(&row),
        }
        .map_err(io)?;
        done.rows += 1;
    }
    match out {
        Out::Csv(w) => w.into_inner().flush(),
        Out::Jsonl(w) => w.into_inner().flush(),
    }
    .map_err(io)?;
    Ok(done)
}
