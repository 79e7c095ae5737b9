//! Who a finding is about: one process, or a group of short-lived processes sharing a command
//! and a parent (a shell loop of `curl`s: hundreds of pids, one culprit).

use rustc_hash::FxHashMap;

use super::{Finding, words};
use crate::model::{FailureRecord, ProcRef};

/// A process with sockets in the scope of a finding.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub proc: ProcRef,
    pub last_seen_ns: u64,
    /// Sockets it has in the scope (a pool, a namespace…).
    pub sockets: u32,
}

/// The process (or group) a finding names.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Who {
    pub pid: Option<u32>,
    pub ppid: Option<u32>,
    pub comm: Option<String>,
    /// What it executes, when learned.
    pub exe: Option<String>,
    /// Processes covered (0 when unknown).
    pub process_count: u32,
    /// Their sockets in the scope.
    pub sockets: u32,
    /// Where the (latest) process lives.
    pub workload: Option<crate::model::WorkloadRef>,
}

impl Who {
    pub fn one(p: &ProcRef) -> Who {
        Who {
            pid: Some(p.pid),
            ppid: (p.ppid != 0).then_some(p.ppid),
            comm: Some(p.comm.to_string()),
            exe: p.exe.as_deref().map(str::to_string),
            process_count: 1,
            sockets: 0,
            workload: p.workload.clone(),
        }
    }

    pub fn words(&self) -> String {
        words::who_in(
            &words::who_running(
                self.comm.as_deref(),
                self.exe.as_deref(),
                self.pid,
                self.ppid,
                self.process_count,
            ),
            self.workload.as_deref(),
        )
    }

    /// Capitalised for the start of a sentence.
    pub fn words_cap(&self) -> String {
        let w = self.words();
        match w.strip_prefix("an unknown") {
            Some(rest) => format!("An unknown{rest}"),
            None => w,
        }
    }

    pub fn fill(&self, f: &mut Finding) {
        f.pid = self.pid;
        f.ppid = self.ppid;
        f.comm = self.comm.clone();
        f.exe = self.exe.clone();
        f.process_count = self.process_count;
        f.workload = self.workload.clone();
    }
}

/// The group of (comm, ppid) with the most sockets among `members`; its pid is its most
/// recently seen member's. Unknown owners win when they hold more sockets than any group.
pub(super) fn attribute(members: &[Member], unknown_sockets: u32) -> Who {
    let mut groups: FxHashMap<(crate::event::Comm, u32), (u32, u32, Member)> = FxHashMap::default();
    for m in members.iter().filter(|m| m.sockets > 0) {
        let g = groups
            .entry((m.proc.comm, m.proc.ppid))
            .or_insert((0, 0, m.clone()));
        g.0 += m.sockets;
        g.1 += 1;
        if (m.last_seen_ns, m.proc.pid) > (g.2.last_seen_ns, g.2.proc.pid) {
            g.2 = m.clone();
        }
    }
    let best = groups.into_values().max_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.2.last_seen_ns.cmp(&b.2.last_seen_ns))
            .then(b.2.proc.pid.cmp(&a.2.proc.pid))
    });
    match best {
        Some((sockets, count, latest)) if sockets >= unknown_sockets => Who {
            process_count: count,
            sockets,
            ..Who::one(&latest.proc)
        },
        _ => Who {
            sockets: unknown_sockets,
            ..Who::default()
        },
    }
}

/// The processes behind failure records (each failure counts as one "socket"), grouped as
/// [`attribute`] does. `None` when there is none.
pub(super) fn from_failures<'a>(records: impl Iterator<Item = &'a FailureRecord>) -> Option<Who> {
    let mut by_pid: FxHashMap<u32, Member> = FxHashMap::default();
    for r in records {
        let m = by_pid.entry(r.pid).or_insert(Member {
            proc: ProcRef {
                pid: r.pid,
                ppid: r.ppid,
                comm: r.comm,
                exe: None,
                workload: r.workload.clone(),
            },
            last_seen_ns: r.at_ns,
            sockets: 0,
        });
        m.sockets += 1;
        m.last_seen_ns = m.last_seen_ns.max(r.at_ns);
    }
    let v: Vec<Member> = by_pid.into_values().collect();
    (!v.is_empty()).then(|| attribute(&v, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Comm;

    fn m(pid: u32, ppid: u32, comm: &str, last: u64, sockets: u32) -> Member {
        Member {
            proc: ProcRef {
                pid,
                ppid,
                comm: Comm::new(comm),
                exe: None,
                workload: None,
            },
            last_seen_ns: last,
            sockets,
        }
    }

    #[test]
    fn short_lived_processes_are_grouped_by_comm_and_parent() {
        let mut v: Vec<Member> = (0..50)
            .map(|i| m(1000 + i, 7, "curl", u64::from(i), 2))
            .collect();
        v.push(m(300, 1, "java", 5, 60));
        let w = attribute(&v, 0);
        assert_eq!(
            (w.pid, w.ppid, w.comm.as_deref(), w.process_count, w.sockets),
            (Some(1049), Some(7), Some("curl"), 50, 100)
        );
        assert_eq!(w.words(), "50 curl processes (parent 7, latest pid 1049)");
        // The same command under another parent is another group.
        v.push(m(2000, 8, "curl", 99, 1));
        assert_eq!(attribute(&v, 0).process_count, 50);
    }

    #[test]
    fn unknown_owners_win_only_with_more_sockets() {
        let v = [m(300, 1, "java", 5, 60)];
        assert_eq!(attribute(&v, 10).pid, Some(300));
        let w = attribute(&v, 61);
        assert_eq!((w.pid, w.process_count, w.sockets), (None, 0, 61));
        assert_eq!(w.words_cap(), "An unknown process");
    }
}
