//! Socket inode → owning process, from one walk of `/proc/*/fd`.
//!
//! Links are read relative to an open `/proc/PID/fd` (`readlinkat`), so a link costs one
//! small syscall and no path walk from `/`; the work is shared between threads in chunks of
//! fds. Only thread group leaders are visited (`/proc` lists no thread ids); threads share
//! their leader's fd table. A process that exits mid-walk is skipped; one we may not read
//! (a hardened `/proc`) is counted. The kernel's cost, a few µs per fd of every process,
//! dominates: sockets or not, every fd's link must be read to know.

use std::{
    collections::HashMap,
    ffi::CStr,
    fs::File,
    io,
    os::fd::AsRawFd,
    sync::atomic::{AtomicUsize, Ordering},
};

use super::types::Owner;

/// The inode of a socket fd link (`socket:[12345]`); `None` for anything else.
pub fn parse_socket_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `/proc/PID/comm` content without its newline.
pub fn parse_comm(text: &[u8]) -> String {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    String::from_utf8_lossy(text).into_owned()
}

/// What the walk could not see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OwnerStats {
    pub processes: u64,
    /// Sockets found across all processes (a socket shared by two counts twice).
    pub socket_fds: u64,
    /// Processes that exited before their fds were read.
    pub vanished: u64,
    /// Processes whose fds we were not allowed to read.
    pub denied: u64,
}

/// Socket inode → its owner (the lowest pid holding it).
#[derive(Debug, Default)]
pub struct Owners {
    by_inode: HashMap<u64, u32>,
    /// comm and cgroup id of each owner.
    comms: HashMap<u32, (String, u64)>,
    pub stats: OwnerStats,
}

impl Owners {
    pub fn get(&self, inode: u64) -> Option<Owner> {
        let pid = *self.by_inode.get(&inode)?;
        let (comm, cgroup) = self.comms.get(&pid).cloned().unwrap_or_default();
        Some(Owner { pid, comm, cgroup })
    }

    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }
}

/// Links read per job: a process with more fds is split between threads.
const CHUNK: usize = 2048;

/// Walks `/proc/*/fd` of `pids` on `workers` threads: first every process's fd list, then
/// their links in chunks, so that one process with most of the sockets (a proxy) is shared
/// between threads too.
pub fn walk(pids: &[u32], workers: usize) -> Owners {
    walk_in_chunks(pids, workers, CHUNK)
}

fn walk_in_chunks(pids: &[u32], workers: usize, chunk: usize) -> Owners {
    let mut stats = OwnerStats {
        processes: pids.len() as u64,
        ..OwnerStats::default()
    };
    let listed: Vec<Result<Vec<u32>, io::Error>> = parallel(pids, workers, |&pid| list_fds(pid));
    let mut jobs: Vec<(u32, &[u32])> = Vec::new();
    for (&pid, fds) in pids.iter().zip(&listed) {
        match fds {
            Ok(fds) => jobs.extend(fds.chunks(chunk).map(|c| (pid, c))),
            Err(e) => match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => stats.denied += 1,
                _ => stats.vanished += 1,
            },
        }
    }
    let found: Vec<Vec<u64>> = parallel(&jobs, workers, |&(pid, fds)| socket_inodes(pid, fds));

    let mut by_inode: HashMap<u64, u32> = HashMap::with_capacity(found.iter().map(Vec::len).sum());
    let mut comms: HashMap<u32, (String, u64)> = HashMap::new();
    let root = super::cgroups::unified_root();
    for (&(pid, _), inodes) in jobs.iter().zip(found) {
        if inodes.is_empty() {
            continue;
        }
        stats.socket_fds += inodes.len() as u64;
        comms.entry(pid).or_insert_with(|| {
            let comm = std::fs::read(format!("/proc/{pid}/comm"))
                .map(|t| parse_comm(&t))
                .unwrap_or_default();
            let cgroup = root
                .as_deref()
                .and_then(|r| super::cgroups::of_pid(r, pid))
                .map_or(0, |(_, id)| id);
            (comm, cgroup)
        });
        for inode in inodes {
            by_inode
                .entry(inode)
                .and_modify(|p| *p = (*p).min(pid))
                .or_insert(pid);
        }
    }
    Owners {
        by_inode,
        comms,
        stats,
    }
}

/// `f` over `items` on up to `workers` threads (the caller's included), results in order.
fn parallel<I: Sync, T: Send>(items: &[I], workers: usize, f: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let run = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            out.push((i, f(item)));
        }
        out
    };
    let workers = workers.clamp(1, items.len().max(1));
    let parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..workers).map(|_| s.spawn(run)).collect();
        let mut parts = vec![run()];
        parts.extend(handles.into_iter().map(|h| h.join().expect("owner walk")));
        parts
    });
    let mut all: Vec<(usize, T)> = parts.into_iter().flatten().collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// The open fd numbers of a process.
fn list_fds(pid: u32) -> io::Result<Vec<u32>> {
    let mut fds = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        // An fd closed mid-listing just ends or skips.
        let Ok(entry) = entry else { break };
        if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// The socket inodes among `fds` of `pid`; fds closed meanwhile are skipped.
fn socket_inodes(pid: u32, fds: &[u32]) -> Vec<u64> {
    // The process may have exited since its fds were listed: then it owns nothing.
    let Ok(dir) = File::open(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut buf = [0u8; 64];
    fds.iter()
        .filter_map(|&fd| readlinkat(&dir, fd, &mut buf).and_then(parse_socket_link))
        .collect()
}

/// The target of link `fd` in directory `dir`, in `buf`; `None` if it is gone. A target
/// that fills `buf` is truncated, which no socket link (`socket:[INODE]`) is.
fn readlinkat<'b>(dir: &File, fd: u32, buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    use std::io::Write as _;
    let mut name = [0u8; 12];
    write!(&mut name[..11], "{fd}").ok()?;
    let name = CStr::from_bytes_until_nul(&name).ok()?;
    // SAFETY: dir is an open directory fd, name is NUL-terminated, buf has buf.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    Some(&buf[..n as usize])
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link(b"socket:[12345]"), Some(12345));
        assert_eq!(parse_socket_link(b"socket:[0]"), Some(0));
        assert_eq!(parse_socket_link(b"socket:[]"), None);
        assert_eq!(parse_socket_link(b"socket:[12a]"), None);
        assert_eq!(parse_socket_link(b"socket:[+1]"), None);
        assert_eq!(parse_socket_link(b"socket:[1"), None);
        assert_eq!(parse_socket_link(b"pipe:[12345]"), None);
        assert_eq!(parse_socket_link(b"anon_inode:[eventfd]"), None);
        assert_eq!(parse_socket_link(b"/tmp/socket:[1]"), None);
        assert_eq!(parse_socket_link(b"socket:[99999999999999999999999]"), None);
    }

    #[test]
    fn comms() {
        assert_eq!(parse_comm(b"nginx\n"), "nginx");
        assert_eq!(parse_comm(b"kworker/0:1\n"), "kworker/0:1");
        assert_eq!(parse_comm(b""), "");
        assert_eq!(parse_comm(b"\xffx\n"), "\u{fffd}x");
    }

    fn inode_of(l: &TcpListener) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn finds_our_own_sockets() {
        // Reading our own /proc/self/fd needs no privileges.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        let comm = parse_comm(&std::fs::read("/proc/self/comm").unwrap());
        let more: Vec<TcpListener> = (0..5)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        // Chunks of 2 fds: our fd table is shared between both threads.
        for owners in [walk(&[me, u32::MAX], 2), walk_in_chunks(&[me], 2, 2)] {
            for l in more.iter().chain([&listener]) {
                let owner = owners.get(inode_of(l)).expect("our listener has an owner");
                assert_eq!((owner.pid, &owner.comm), (me, &comm));
            }
            assert!(owners.stats.socket_fds >= 6);
        }
        let owners = walk(&[me, u32::MAX], 2);
        assert_eq!(owners.stats.processes, 2);
        assert_eq!(owners.stats.vanished, 1, "pid u32::MAX does not exist");
    }
}
