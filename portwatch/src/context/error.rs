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

/// Each message is whole: it names the object and says its cause (the `cause` field) once.
/// The cause is deliberately not also returned from `source()`, or `{:#}` chains (anyhow, at
/// the edges) would print it twice; the message is also what warnings and notes keep.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },

    #[error("parse {}: {cause}", path.display())]
    Parse { path: PathBuf, cause: ParseError },

    #[error("enter netns {netns}: {cause}")]
    Enter { netns: u32, cause: io::Error },

    #[error("netns {netns}: sock_diag {what}: {cause}")]
    Netlink {
        netns: u32,
        what: &'static str,
        cause: io::Error,
    },

    #[error("netns {netns}: netfilter netlink {what}: {source}")]
    Netfilter {
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
            cause: source,
        }
    }
}
