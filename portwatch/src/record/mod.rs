//! Recording: the same [`Event`]s the model consumes, plus context records, written to a
//! compact, checksummed, versioned file; and reading them back in order.
//!
//! A recording is exactly the sequence of [`Input`]s a live model took: events in columns,
//! the other inputs (snapshots, loss counters, warnings, clock ticks) as context records.
//!
//! ```text
//! Writer::create(path, &host, opts) ─ input(&Input) (push(&Event) / context(&ContextRecord))
//!                                    ─ flush_if_due(now) ─ finish() -> Summary
//! Reader::open(path) ─ Iterator<Item = Result<Item, Error>> ─ Item::into_input ─ integrity()
//! Info::scan(reader)  export::{CsvWriter, JsonlWriter}
//! ```
//!
//! The byte layout is specified in `docs/recording-format.md`.
//!
//! ```no_run
//! use std::time::Instant;
//! use portwatch::model::{Input, Model};
//! use portwatch::record::{self, Host, Options, Reader, Writer};
//! # fn inputs() -> Vec<Input> { Vec::new() }
//! # fn main() -> Result<(), record::Error> {
//! let host = Host::current();
//! let mut w = Writer::create("incident.pwr", &host, Options::default())?;
//! for input in inputs() {
//!     w.input(&input)?;
//!     w.flush_if_due(Instant::now())?; // also call it on a timer
//! }
//! let summary = w.finish()?;
//!
//! let mut model = Model::default();
//! let mut r = Reader::open("incident.pwr")?;
//! for item in r.by_ref() {
//!     match item {
//!         Ok(item) => {
//!             if let Some(input) = item.into_input() {
//!                 model.feed(&input);
//!             }
//!         }
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
    context::{ContextRecord, Host, Note},
    format::{EndSummary, Header},
    info::{Info, KindCounts},
    integrity::{Damage, Integrity, Status, Truncation},
    reader::Reader,
    writer::{Options, Summary, Writer},
};
use crate::{event::Event, model::Input};

/// One thing read back from a recording, in the order it was written.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Event(Event),
    Context(ContextRecord),
}

impl Item {
    /// The model input this item is, if it is one (notes and unknown records are not).
    pub fn into_input(self) -> Option<Input> {
        match self {
            Item::Event(e) => Some(Input::Event(e)),
            Item::Context(ContextRecord::Input(i)) => Some(i),
            Item::Context(_) => None,
        }
    }
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
