//! What the BPF programs of a process cost: `run_time_ns` and `run_cnt`, which the kernel
//! counts only while run-time statistics are on ([`enable_stats`]: `BPF_ENABLE_STATS`, the
//! reference-counted equivalent of `kernel.bpf_stats_enabled=1`, off again when the returned
//! descriptor closes). Programs are found through the process's descriptors
//! (`/proc/PID/fdinfo`), so another tracer loaded by someone else on this machine never
//! counts.

use std::{
    collections::BTreeMap,
    fs,
    os::fd::{FromRawFd, OwnedFd},
};

use serde::{Deserialize, Serialize};

const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_ENABLE_STATS: libc::c_long = 32;
const BPF_STATS_RUN_TIME: u32 = 0;

/// Turns run-time statistics on until the descriptor is dropped.
pub fn enable_stats() -> std::io::Result<OwnedFd> {
    let attr: [u32; 16] = {
        let mut a = [0u32; 16];
        a[0] = BPF_STATS_RUN_TIME;
        a
    };
    // SAFETY: attr is a valid bpf_attr prefix for BPF_ENABLE_STATS of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            attr.as_ptr(),
            size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor the kernel just gave us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
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
    let mut by_id = BTreeMap::new();
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
                name: name_of(id).unwrap_or_else(|| format!("prog {id}")),
                run_time_ns: field("run_time_ns"),
                run_cnt: field("run_cnt"),
                recursion_misses: field("recursion_misses"),
            },
        );
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

/// The program's name, from the kernel.
fn name_of(id: u32) -> Option<String> {
    let mut attr = [0u32; 16];
    attr[0] = id;
    // SAFETY: a valid bpf_attr prefix for BPF_PROG_GET_FD_BY_ID.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_ptr(),
            size_of_val(&attr),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor; closed on drop.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: bpf_prog_info is plain integers and arrays; all-zero is valid.
    let mut info: aya_obj::generated::bpf_prog_info = unsafe { std::mem::zeroed() };
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    use std::os::fd::AsRawFd;
    let mut a = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of_val(&info) as u32,
        info: &mut info as *mut _ as u64,
    };
    // SAFETY: `a` and `info` outlive the call; the kernel writes at most info_len bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut a as *mut InfoAttr,
            size_of::<InfoAttr>(),
        )
    };
    if rc != 0 {
        return None;
    }
    let bytes: Vec<u8> = info
        .name
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
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
