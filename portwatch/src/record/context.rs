//! Context records: what a recording keeps beside the events so that a report made later,
//! elsewhere, can say what the machine was (host, kernel, sysctls, the sockets that existed
//! before recording began, process names, loss counters over time).
//!
//! Each record is stored as its type name and one JSON object (self-describing, so a field
//! added later is ignored by older readers and defaults in newer ones). Types that other
//! modules own and evolve (the start-up snapshot, sysctls) travel as a [`Payload`]: a schema
//! name, a version, and the serde value itself as raw JSON text, decoded only when asked for.
//! A record of a type this build does not know reads back as [`ContextRecord::Unknown`],
//! never as an error.

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;

/// Bound on the JSON of a small record (host, process, counters, note): parsed into a tree,
/// it must not be able to take much memory.
pub const MAX_SMALL_JSON: usize = 1 << 20;
/// Bound on the JSON of a payload record (snapshot, sysctls, unknown types): kept as text.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContextRecord {
    /// The machine and the recording's clocks (also in the file header).
    Host(Host),
    /// A snapshot of existing sockets (sock_diag/`/proc` at start), one per network namespace.
    Snapshot(Payload),
    /// The sysctls that bound ephemeral ports and TIME_WAIT, one per network namespace.
    Sysctls(Payload),
    /// A process seen while recording: its name and command line.
    Process(Process),
    /// Loss and other counters, cumulative since the start, written periodically.
    Counters(Counters),
    /// Free text: a marker, a warning, an operator's note.
    Note(Note),
    /// A record from a newer portwatch: its type and JSON, kept as they were.
    #[serde(skip)]
    Unknown { kind: String, json: Json },
}

impl ContextRecord {
    /// The record's type name, as stored.
    pub fn kind(&self) -> &str {
        match self {
            ContextRecord::Host(_) => "host",
            ContextRecord::Snapshot(_) => "snapshot",
            ContextRecord::Sysctls(_) => "sysctls",
            ContextRecord::Process(_) => "process",
            ContextRecord::Counters(_) => "counters",
            ContextRecord::Note(_) => "note",
            ContextRecord::Unknown { kind, .. } => kind,
        }
    }

    /// The JSON stored for the record (its type name is stored beside it).
    pub fn body_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            ContextRecord::Host(v) => serde_json::to_vec(v),
            ContextRecord::Snapshot(v) | ContextRecord::Sysctls(v) => serde_json::to_vec(v),
            ContextRecord::Process(v) => serde_json::to_vec(v),
            ContextRecord::Counters(v) => serde_json::to_vec(v),
            ContextRecord::Note(v) => serde_json::to_vec(v),
            ContextRecord::Unknown { json, .. } => Ok(json.get().as_bytes().to_vec()),
        }
    }

    /// The largest JSON a record of this type may have.
    pub fn max_json(kind: &str) -> usize {
        match kind {
            "host" | "process" | "counters" | "note" => MAX_SMALL_JSON,
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
        let r = match kind {
            "host" => serde_json::from_slice(json).map(ContextRecord::Host),
            "snapshot" => serde_json::from_slice(json).map(ContextRecord::Snapshot),
            "sysctls" => serde_json::from_slice(json).map(ContextRecord::Sysctls),
            "process" => serde_json::from_slice(json).map(ContextRecord::Process),
            "counters" => serde_json::from_slice(json).map(ContextRecord::Counters),
            "note" => serde_json::from_slice(json).map(ContextRecord::Note),
            _ => Json::parse(json).map(|json| ContextRecord::Unknown {
                kind: kind.to_string(),
                json,
            }),
        };
        r.map_err(|e| format!("{kind} record: {e}"))
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

/// A value of a type owned elsewhere (the snapshot, sysctls), with the name and version of
/// its schema so that a reader knows what it holds before decoding it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// CLOCK_MONOTONIC ns when the value was taken.
    pub ts_ns: u64,
    /// Network namespace inode the value is about, 0 if none.
    pub netns: u32,
    /// What the value is, e.g. `portwatch.snapshot`.
    pub schema: String,
    /// The schema's version: bump it when a field changes meaning or is removed.
    pub version: u32,
    /// The value, as JSON text.
    pub data: Json,
}

impl Payload {
    pub fn new<T: Serialize + ?Sized>(
        ts_ns: u64,
        netns: u32,
        schema: &str,
        version: u32,
        value: &T,
    ) -> Result<Payload, serde_json::Error> {
        Ok(Payload {
            ts_ns,
            netns,
            schema: schema.to_string(),
            version,
            data: Json::new(value)?,
        })
    }

    /// The value as `T` (check `schema` and `version` first).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.data.decode()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Process {
    pub ts_ns: u64,
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// `/proc/PID/cmdline`, split at NULs; empty if the process was gone.
    pub cmdline: Vec<String>,
}

/// Named counters, cumulative since the recording started (e.g. events seen/lost per kind).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub ts_ns: u64,
    /// What is counted, e.g. `loss`.
    pub name: String,
    pub values: BTreeMap<String, u64>,
}

impl Counters {
    /// Flattens a serializable value into dotted names: `{"state": {"lost": 3}}` gives
    /// `state.lost = 3`. Non-integer leaves are left out.
    pub fn from_serialize<T: Serialize + ?Sized>(
        ts_ns: u64,
        name: &str,
        value: &T,
    ) -> Result<Counters, serde_json::Error> {
        fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, u64>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                serde_json::Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(&format!("{prefix}.{i}"), v, out);
                    }
                }
                other => {
                    if let Some(n) = other.as_u64() {
                        out.insert(prefix.to_string(), n);
                    }
                }
            }
        }
        let mut values = BTreeMap::new();
        walk("", &serde_json::to_value(value)?, &mut values);
        Ok(Counters {
            ts_ns,
            name: name.to_string(),
            values,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Note {
    pub ts_ns: u64,
    /// `info`, `warning` or `error`.
    pub level: String,
    pub text: String,
}
