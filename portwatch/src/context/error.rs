//! Errors of the context readers, each naming the namespace or file it is about.

use std::{io, path::PathBuf};

/// A text that did not parse: what was expected, and the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found:?}")]
pub struct ParseError {
    pub expected: &'static str,
    pub found: String,
}

impl ParseError {
    pub fn new(expected: &'static str, found: &str) -> ParseError {
        ParseError {
            expected,
            found: found.chars().take(80).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("parse {}: {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },

    #[error("enter netns {netns}: {source}")]
    Enter { netns: u32, source: io::Error },

    #[error("netns {netns}: sock_diag {what}: {source}")]
    Netlink {
        netns: u32,
        what: &'static str,
        source: io::Error,
    },

    #[error("netns {netns}: bad sock_diag message: {reason}")]
    Decode { netns: u32, reason: String },

    #[error("netns {netns}: no process and no /run/netns entry has it")]
    NoSuchNetns { netns: u32 },

    #[error("spawn a namespace worker thread: {0}")]
    Spawn(io::Error),
}

impl ContextError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> ContextError {
        ContextError::Read {
            path: path.into(),
            source,
        }
    }
}
