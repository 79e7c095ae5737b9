//! Process → executable: what a process runs, whatever it calls its threads. The kernel's
//! `comm` is the *thread's* name, which programs set freely (Envoy's workers are
//! `wrk:worker_0`, a JVM's are its thread pools' names, a Python service may call itself
//! anything), so the program a finding names for its remedies is recognised by the file it
//! executes first (`/proc/PID/exe`), by `comm` only when that is all there is.
//!
//! As with workloads (`workloads.rs`), the model never reads the system: it hands out each
//! new process once ([`Model::processes_to_resolve`]); the session reads the link and feeds
//! the answers back as an input ([`super::Input::Executables`]), which the recording keeps,
//! so that a report read later recognises the same programs. A process gone before it was
//! asked about (a `curl` of a shell loop) keeps only its `comm`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Model;
use crate::event::Comm;

/// How many new processes wait to be asked about at most; beyond, a burst of short-lived
/// processes goes unresolved (their `comm` still names them).
const MAX_PENDING: usize = 4096;

/// A process and the file name of its executable, as the recording keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExe {
    pub pid: u32,
    /// The `comm` it was seen with: a pid reused by another program is another process.
    pub comm: String,
    /// The executable's file name (`python3.11`, `envoy`), without its directory.
    pub exe: String,
}

impl ProcessExe {
    /// The file name of a `/proc/PID/exe` link's target (`/usr/bin/python3.11` →
    /// `python3.11`; a deleted file's " (deleted)" suffix dropped).
    pub fn file_name(target: &str) -> Option<String> {
        let t = target.strip_suffix(" (deleted)").unwrap_or(target);
        let name = t.rsplit('/').next()?;
        (!name.is_empty()).then(|| name.to_string())
    }
}

/// New processes waiting to be asked about.
#[derive(Default)]
pub(crate) struct NewProcs {
    pending: Vec<(u32, Comm)>,
    /// Not handed out because [`MAX_PENDING`] were already waiting.
    pub dropped: u64,
}

impl NewProcs {
    pub fn push(&mut self, pid: u32, comm: Comm) {
        if self.pending.len() < MAX_PENDING {
            self.pending.push((pid, comm));
        } else {
            self.dropped += 1;
        }
    }
}

impl Model {
    /// Processes seen since the last call, as (pid, comm), each handed out once; call it now
    /// and then (each tick), not per event.
    pub fn processes_to_resolve(&mut self) -> Vec<(u32, Comm)> {
        std::mem::take(&mut self.procs.new_procs.pending)
    }

    /// Records what processes execute; an answer for a process the model no longer tracks
    /// (or whose pid now runs something else) is ignored.
    pub fn learn_exes(&mut self, learned: &[ProcessExe]) {
        for l in learned {
            if let Some(p) = self.procs.find_mut(l.pid, Comm::new(&l.comm)) {
                p.exe = Some(Arc::from(l.exe.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_name_of_an_exe_link() {
        let f = ProcessExe::file_name;
        assert_eq!(f("/usr/bin/python3.11").as_deref(), Some("python3.11"));
        assert_eq!(
            f("/usr/local/bin/envoy (deleted)").as_deref(),
            Some("envoy")
        );
        assert_eq!(f("/").as_deref(), None);
    }
}
