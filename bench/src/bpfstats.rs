//! What the BPF programs of a process cost: `run_time_ns` and `run_cnt`, which the kernel
//! counts only while run-time statistics are on ([`enable_stats`]: `BPF_ENABLE_STATS`, the
//! reference-counted equivalent of `kernel.bpf_stats_enabled=1`, off again when the returned
//! descriptor closes). Programs are found through the process's descriptors
//! (`/proc/PID/fdinfo`), so another tracer loaded by someone else on this machine never
//! counts.
//!
//! aya does the BPF side: [`aya::sys::enable_stats`], and [`aya::programs::loaded_programs`]
//! whose `ProgramInfo` gives the name, `run_time` and `run_count`. Hand-written here: which
//! program ids a process holds, and `recursion_misses` (runs the kernel skipped because the
//! program was already running on that CPU), which aya 0.14's `ProgramInfo` does not expose;
//! both come from `/proc/PID/fdinfo/FD` (`prog_id:`, `recursion_misses:`, printed by the
//! kernel's `bpf_prog_show_fdinfo`, kernel/bpf/syscall.c).

use std::{collections::BTreeMap, fs, os::fd::OwnedFd};

use aya::{
    programs::loaded_programs,
    sys::{Stats, enable_stats as aya_enable_stats},
};
use serde::{Deserialize, Serialize};

/// Turns run-time statistics on until the descriptor is dropped.
pub fn enable_stats() -> std::io::Result<OwnedFd> {
    aya_enable_stats(Stats::RunTime).map_err(|e| std::io::Error::other(e.to_string()))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProgStat {
    pub id: u32,
    /// The kernel's copy of the name: at most 15 characters.
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub recursion_misses: u64,
}

impl ProgStat {
    pub fn avg_ns(&self) -> Option<f64> {
        (self.run_cnt > 0).then(|| self.run_time_ns as f64 / self.run_cnt as f64)
    }
}

/// Every BPF program `pid` holds a descriptor of, by id.
pub fn of_process(pid: u32) -> Vec<ProgStat> {
    let mut by_id: BTreeMap<u32, ProgStat> = BTreeMap::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    for entry in dir.flatten() {
        let link = fs::read_link(entry.path()).unwrap_or_default();
        if link.to_string_lossy() != "anon_inode:bpf-prog" {
            continue;
        }
        let fd = entry.file_name().to_string_lossy().into_owned();
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
            continue;
        };
        let field = |k: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let id = field("prog_id") as u32;
        by_id.insert(
            id,
            ProgStat {
                id,
                name: format!("prog {id}"),
                recursion_misses: field("recursion_misses"),
                ..ProgStat::default()
            },
        );
    }
    if by_id.is_empty() {
        return Vec::new();
    }
    for info in loaded_programs().flatten() {
        if let Some(p) = by_id.get_mut(&info.id()) {
            if let Some(name) = info.name_as_str() {
                p.name = name.to_string();
            }
            p.run_time_ns = u64::try_from(info.run_time().as_nanos()).unwrap_or(u64::MAX);
            p.run_cnt = info.run_count();
        }
    }
    by_id.into_values().collect()
}

/// Whether `pid` has attached something yet: a BPF link or a perf event (libbpf attaches
/// classic tracepoints through those).
pub fn attachments(pid: u32) -> usize {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            let l = fs::read_link(e.path()).unwrap_or_default();
            let l = l.to_string_lossy();
            l == "anon_inode:bpf_link" || l == "anon_inode:[perf_event]"
        })
        .count()
}

/// Another process with a TCP state tracer loaded: portwatch's programs or tcpstates'.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tracer {
    pub pid: u32,
    pub cmdline: String,
    /// The namespace it filters on (`--netns N`), if any.
    pub netns: Option<u32>,
}

/// Program names (as the kernel keeps them: 15 characters) that trace TCP state changes.
const TRACER_PROGS: &[&str] = &["inet_sock_set_s", "handle_set_stat"];

/// Processes other than `mine` that hold a TCP state tracer: they run on every transition of
/// the benchmark too (and may filter on a namespace inode the kernel recycles for ours).
pub fn foreign_tracers(mine: &[u32]) -> Vec<Tracer> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if mine.contains(&pid) || !holds_bpf_prog(pid) {
            continue;
        }
        if !of_process(pid)
            .iter()
            .any(|p| TRACER_PROGS.contains(&p.name.as_str()))
        {
            continue;
        }
        let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let netns = args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix("--netns=")
                .map(str::to_string)
                .or_else(|| (a == "--netns").then(|| args.get(i + 1).cloned()).flatten())
                .and_then(|v| v.parse().ok())
        });
        out.push(Tracer {
            pid,
            cmdline: args.join(" "),
            netns,
        });
    }
    out
}

fn holds_bpf_prog(pid: u32) -> bool {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.flatten().any(|e| {
        fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:bpf-prog")
    })
}
