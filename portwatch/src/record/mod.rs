//! Recording: the same [`Event`]s the model consumes, plus context records, written to a
//! compact, checksummed, versioned file; and reading them back in order.
//!
//! ```text
//! Writer::create(path, &host, opts) ─ push(&Event) / context(&ContextRecord)
//!                                    ─ flush_if_due(now) ─ finish() -> Summary
//! Reader::open(path) ─ Iterator<Item = Result<Item, Error>> ─ integrity()
//! Info::scan(reader)  export::{CsvWriter, JsonlWriter}
//! ```
//!
//! The byte layout is specified in `docs/recording-format.md`.
//!
//! ```no_run
//! use std::time::Instant;
//! use portwatch::record::{self, ContextRecord, Counters, Host, Item, Options, Reader, Writer};
//! # fn events() -> Vec<portwatch::event::Event> { Vec::new() }
//! # fn main() -> Result<(), record::Error> {
//! let host = Host::current();
//! let mut w = Writer::create("incident.pwr", &host, Options::default())?;
//! w.context(&ContextRecord::Host(host.clone()))?;
//! for e in events() {
//!     w.push(&e)?;
//!     w.flush_if_due(Instant::now())?; // also call it on a timer
//! }
//! // Any Serialize value: nested fields become dotted names ("state.lost").
//! let lost = serde_json::json!({"state": {"seen": 10, "lost": 0}});
//! let loss = Counters::from_serialize(record::context::monotonic_ns(), "loss", &lost)
//!     .map_err(record::Error::Json)?;
//! w.context(&ContextRecord::Counters(loss))?;
//! let summary = w.finish()?;
//!
//! let mut r = Reader::open("incident.pwr")?;
//! for item in r.by_ref() {
//!     match item {
//!         Ok(Item::Event(e)) => { /* model.apply(&e) */ }
//!         Ok(Item::Context(c)) => { /* snapshot, sysctls, loss… */ }
//!         Err(e) => eprintln!("warning: {e}"), // damaged chunk: skipped, reading goes on
//!     }
//! }
//! if !r.integrity().is_complete() {
//!     eprintln!("warning: {}", r.integrity()); // cut short at offset X / corrupt at offset Y
//! }
//! # let _ = summary;
//! # Ok(())
//! # }
//! ```

mod chunk;
mod codec;
pub mod context;
pub mod export;
pub mod format;
mod info;
mod integrity;
mod intern;
mod reader;
mod writer;

#[cfg(any(test, feature = "bench"))]
pub mod bench;
#[cfg(any(test, feature = "bench"))]
pub mod churn;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use self::{
    context::{ContextRecord, Counters, Host, Note, Payload, Process},
    format::{EndSummary, Header},
    info::{Info, KindCounts},
    integrity::{Damage, Integrity, Status, Truncation},
    reader::Reader,
    writer::{Options, Summary, Writer},
};
use crate::event::Event;

/// One thing read back from a recording, in the order it was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Event(Event),
    Context(ContextRecord),
}

/// Each message is whole: it names the object and says its cause (the `cause` field) once.
/// The cause is deliberately not also returned from `source()`, or `{:#}` chains (anyhow, at
/// the edges) would print it twice; the message is also what warnings and notes keep.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{} already exists (pass --force to replace it)", path.display())]
    Exists { path: PathBuf },
    #[error("{} is a symbolic link: refusing to write through it", path.display())]
    Symlink { path: PathBuf },
    #[error("{} exists and is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error(
        "disk full writing {}: the recording stays readable up to offset {kept} (its last complete chunk)",
        path.display()
    )]
    DiskFull { path: PathBuf, kept: u64 },
    #[error(
        "{}: an earlier write failed; the recording stays readable up to offset {kept}",
        path.display()
    )]
    Failed { path: PathBuf, kept: u64 },
    #[error("{}: not a portwatch recording", path.display())]
    NotARecording { path: PathBuf },
    #[error(
        "{}: recording format {major}.{minor}, this portwatch reads {}.x",
        path.display(),
        format::VERSION_MAJOR
    )]
    Version {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("{}: corrupt at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{what} of {bytes} bytes is larger than the format allows ({max} bytes)")]
    TooLarge {
        what: String,
        bytes: usize,
        max: usize,
    },
    #[error("encode JSON: {0}")]
    Json(serde_json::Error),
}
