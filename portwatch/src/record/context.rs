//! Context records: what a recording keeps beside the events. Most are the model's other
//! inputs ([`Input`]: the start-up and reconciliation snapshots, loss counters, warnings,
//! clock ticks), so that the recording is exactly the sequence of inputs the live model took
//! and replay rebuilds the same model; the rest are free-text notes. The host and its clocks
//! are in the file header ([`Host`]).
//!
//! Each record is stored as its type name and one JSON object (self-describing, so a field
//! added later is ignored by older readers and defaults in newer ones). A record of a type
//! this build does not know reads back as [`ContextRecord::Unknown`], never as an error.

use std::fmt;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::Input;
use serde_json::value::RawValue;

/// Bound on the JSON of a small record (loss, warning, tick, note): parsed as it is read, it
/// must not be able to take much memory.
pub const MAX_SMALL_JSON: usize = 1 << 20;
/// Bound on the JSON of a large record (start-up and reconciliation snapshots, unknown types).
pub const MAX_PAYLOAD_JSON: usize = 32 << 20;

/// JSON text, checked to be well-formed, kept as is.
#[derive(Clone)]
pub struct Json(Box<RawValue>);

impl Json {
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Json, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Json)
    }

    /// Checks that `text` is one JSON value.
    pub fn parse(text: &[u8]) -> Result<Json, serde_json::Error> {
        serde_json::from_slice::<Box<RawValue>>(text).map(Json)
    }

    pub fn get(&self) -> &str {
        self.0.get()
    }

    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        Box::<RawValue>::deserialize(d).map(Json)
    }
}

/// A context record, in the order it was written among the events.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextRecord {
    /// A model input other than an event (events have columns of their own): the start-up
    /// and reconciliation snapshots, loss counters, warnings, workloads, conntrack and
    /// `connect()` latency readings, clock ticks. Stored under the input's name ([`Input::kind`]) as its
    /// [`crate::model::Stamped`] value (a conntrack reading carries its own time).
    Input(Input),
    /// Free text that does not enter the model: a marker, an operator's note.
    Note(Note),
    /// A record from a newer portwatch: its type and JSON, kept as they were.
    Unknown { kind: String, json: Json },
}

/// The JSON of a clock tick.
#[derive(Serialize, Deserialize)]
struct Tick {
    at_ns: u64,
}

impl ContextRecord {
    /// The record's type name, as stored.
    pub fn kind(&self) -> &str {
        match self {
            ContextRecord::Input(i) => i.kind(),
            ContextRecord::Note(_) => "note",
            ContextRecord::Unknown { kind, .. } => kind,
        }
    }

    /// The JSON stored for the record (its type name is stored beside it).
    pub fn body_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            ContextRecord::Input(i) => input_json(i),
            ContextRecord::Note(v) => serde_json::to_vec(v),
            ContextRecord::Unknown { json, .. } => Ok(json.get().as_bytes().to_vec()),
        }
    }

    /// The largest JSON a record of this type may have.
    pub fn max_json(kind: &str) -> usize {
        match kind {
            "loss" | "warning" | "tick" | "note" => MAX_SMALL_JSON,
            _ => MAX_PAYLOAD_JSON,
        }
    }

    /// Parses a stored record; an unknown type gives [`ContextRecord::Unknown`].
    pub fn from_parts(kind: &str, json: &[u8]) -> Result<ContextRecord, String> {
        let max = ContextRecord::max_json(kind);
        if json.len() > max {
            return Err(format!(
                "{kind} record of {} bytes (at most {max})",
                json.len()
            ));
        }
        let input = |r: Result<Input, serde_json::Error>| r.map(ContextRecord::Input);
        let r = match kind {
            "startup" => input(serde_json::from_slice(json).map(Input::Startup)),
            "reconcile" => input(serde_json::from_slice(json).map(Input::Reconcile)),
            "loss" => input(serde_json::from_slice(json).map(Input::Loss)),
            "warning" => input(serde_json::from_slice(json).map(Input::Warning)),
            "workloads" => input(serde_json::from_slice(json).map(Input::Workloads)),
            "executables" => input(serde_json::from_slice(json).map(Input::Executables)),
            "conntrack" => input(serde_json::from_slice(json).map(Input::Conntrack)),
            "latency" => input(serde_json::from_slice(json).map(Input::Latency)),
            "tick" => input(serde_json::from_slice::<Tick>(json).map(|t| Input::Tick(t.at_ns))),
            "note" => serde_json::from_slice(json).map(ContextRecord::Note),
            _ => Json::parse(json).map(|json| ContextRecord::Unknown {
                kind: kind.to_string(),
                json,
            }),
        };
        r.map_err(|e| format!("{kind} record: {e}"))
    }
}

/// The stored JSON of an input other than an event.
pub fn input_json(input: &Input) -> Result<Vec<u8>, serde_json::Error> {
    match input {
        Input::Startup(s) | Input::Reconcile(s) => serde_json::to_vec(s),
        Input::Loss(s) => serde_json::to_vec(s),
        Input::Warning(s) => serde_json::to_vec(s),
        Input::Workloads(s) => serde_json::to_vec(s),
        Input::Executables(s) => serde_json::to_vec(s),
        Input::Conntrack(r) => serde_json::to_vec(r),
        Input::Latency(r) => serde_json::to_vec(r),
        Input::Tick(at_ns) => serde_json::to_vec(&Tick { at_ns: *at_ns }),
        Input::Event(_) => Err(serde::ser::Error::custom(
            "events are stored in columns, not as context records",
        )),
    }
}

/// The machine and the clocks that map event timestamps to wall time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    pub hostname: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v`.
    pub kernel_version: String,
    /// `uname -m`.
    pub machine: String,
    /// `/proc/sys/kernel/random/boot_id`: monotonic timestamps compare only within one boot.
    pub boot_id: String,
    /// Wall-clock time the recording started, nanoseconds since the Unix epoch.
    pub start_wall_ns: u64,
    /// CLOCK_MONOTONIC at the same instant: the clock of every event's `ts_ns`.
    pub start_mono_ns: u64,
    /// The portwatch that wrote the file.
    pub portwatch_version: String,
}

impl Host {
    /// This machine, now. Fields that cannot be read stay empty.
    pub fn current() -> Host {
        // SAFETY: uname fills the struct it is given; a zeroed utsname is valid input.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable utsname.
        let ok = unsafe { libc::uname(&mut u) } == 0;
        let field = |f: &[libc::c_char]| -> String {
            if !ok {
                return String::new();
            }
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let (start_wall_ns, start_mono_ns) = clocks_now();
        Host {
            hostname: field(&u.nodename),
            kernel_release: field(&u.release),
            kernel_version: field(&u.version),
            machine: field(&u.machine),
            boot_id,
            start_wall_ns,
            start_mono_ns,
            portwatch_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Wall-clock nanoseconds since the epoch for a CLOCK_MONOTONIC timestamp of this boot.
    pub fn wall_ns(&self, mono_ns: u64) -> i128 {
        i128::from(self.start_wall_ns) + i128::from(mono_ns) - i128::from(self.start_mono_ns)
    }
}

/// (wall ns since the epoch, CLOCK_MONOTONIC ns), read back to back.
pub fn clocks_now() -> (u64, u64) {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (wall, monotonic_ns())
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns` (one implementation,
/// the collector's).
pub use crate::collect::monotonic_now_ns as monotonic_ns;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    pub ts_ns: u64,
    /// `info`, `warning` or `error`.
    pub level: String,
    pub text: String,
}
