//! How much of a recording could be read, and what stopped it.

use std::fmt;

use serde::Serialize;

use super::format::EndSummary;

/// The file ended before its END chunk: the writer was killed, lost power, ran out of disk,
/// or is still writing. Everything before `offset` was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Truncation {
    pub offset: u64,
    pub reason: String,
}

/// A damaged stretch of the file: `skipped` bytes from `offset` were not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub offset: u64,
    pub skipped: u64,
    pub reason: String,
}

/// The reader's account of the file; final once iteration has ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Integrity {
    /// Data chunks read whole.
    pub chunks: u64,
    /// The END chunk's counts, when the writer finished.
    pub end: Option<EndSummary>,
    pub truncated: Option<Truncation>,
    pub damage: Vec<Damage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every chunk read, END chunk found.
    Complete,
    /// Cut short, no damage before the cut.
    Truncated,
    /// At least one damaged stretch was skipped.
    Corrupt,
}

impl Integrity {
    pub fn status(&self) -> Status {
        if !self.damage.is_empty() {
            Status::Corrupt
        } else if self.truncated.is_some() || self.end.is_none() {
            Status::Truncated
        } else {
            Status::Complete
        }
    }

    pub fn is_complete(&self) -> bool {
        self.status() == Status::Complete
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status() {
            Status::Complete => write!(f, "complete ({} chunks)", self.chunks)?,
            Status::Truncated => write!(f, "cut short")?,
            Status::Corrupt => write!(f, "damaged")?,
        }
        for d in &self.damage {
            write!(
                f,
                "; corrupt at offset {}: {} (skipped {} bytes)",
                d.offset, d.reason, d.skipped
            )?;
        }
        if let Some(t) = &self.truncated {
            write!(
                f,
                "; truncated at offset {}: {}; {} complete chunks read",
                t.offset, t.reason, self.chunks
            )?;
        }
        Ok(())
    }
}
