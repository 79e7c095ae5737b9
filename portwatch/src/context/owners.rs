//! Socket inode → owning process, from one walk of `/proc/*/fd`.
//!
//! Each `/proc/PID/fd` directory is opened once and its links read relative to it
//! (`readlinkat`), so a link costs one small syscall and no path walk from `/`. Processes are
//! shared between threads. Only thread group leaders are visited (`/proc` lists no thread
//! ids); threads share their leader's fd table. A process that exits mid-walk is skipped;
//! one we may not read (another user namespace, a hardened `/proc`) is counted.

use std::{
    collections::HashMap,
    ffi::CStr,
    fs::File,
    io,
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
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
    comms: HashMap<u32, String>,
    pub stats: OwnerStats,
}

impl Owners {
    pub fn get(&self, inode: u64) -> Option<Owner> {
        let pid = *self.by_inode.get(&inode)?;
        Some(Owner {
            pid,
            comm: self.comms.get(&pid).cloned().unwrap_or_default(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_inode.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_inode.is_empty()
    }

    fn merge(&mut self, other: Owners) {
        for (inode, pid) in other.by_inode {
            self.by_inode
                .entry(inode)
                .and_modify(|p| *p = (*p).min(pid))
                .or_insert(pid);
        }
        self.comms.extend(other.comms);
        let (a, b) = (&mut self.stats, other.stats);
        a.processes += b.processes;
        a.socket_fds += b.socket_fds;
        a.vanished += b.vanished;
        a.denied += b.denied;
    }

    fn add_process(&mut self, pid: u32, fd_buf: &mut Vec<u8>) {
        self.stats.processes += 1;
        let dir_path = format!("/proc/{pid}/fd");
        let dir = match File::open(&dir_path) {
            Ok(d) => d,
            Err(e) => return self.count_error(&e),
        };
        let entries = match std::fs::read_dir(&dir_path) {
            Ok(it) => it,
            Err(e) => return self.count_error(&e),
        };
        let mut found = 0u64;
        for entry in entries {
            // An fd closed mid-listing just ends or skips.
            let Ok(entry) = entry else { break };
            let name = entry.file_name();
            let Some(inode) = readlinkat(&dir, name.as_bytes(), fd_buf).and_then(parse_socket_link)
            else {
                continue;
            };
            found += 1;
            self.by_inode
                .entry(inode)
                .and_modify(|p| *p = (*p).min(pid))
                .or_insert(pid);
        }
        if found > 0 {
            self.stats.socket_fds += found;
            let comm = std::fs::read(format!("/proc/{pid}/comm"))
                .map(|t| parse_comm(&t))
                .unwrap_or_default();
            self.comms.insert(pid, comm);
        }
    }

    fn count_error(&mut self, e: &io::Error) {
        match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM) => self.stats.denied += 1,
            _ => self.stats.vanished += 1,
        }
    }
}

/// The target of link `name` in directory `dir`, in `buf`; `None` if it is gone.
fn readlinkat<'b>(dir: &File, name: &[u8], buf: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    // fd names are short decimal numbers; anything else is not an fd.
    let mut cname = [0u8; 24];
    if name.len() >= cname.len() || name.contains(&0) {
        return None;
    }
    cname[..name.len()].copy_from_slice(name);
    let cname = CStr::from_bytes_until_nul(&cname).ok()?;
    buf.resize(64, 0);
    // SAFETY: dir is an open directory fd, cname is NUL-terminated, buf has buf.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    // A socket link always fits; a longer (truncated) target is a path, not a socket.
    if n <= 0 {
        return None;
    }
    Some(&buf[..n as usize])
}

/// Walks `/proc/*/fd` of `pids` on `workers` threads.
pub fn walk(pids: &[u32], workers: usize) -> Owners {
    let next = AtomicUsize::new(0);
    let one = || {
        let mut owners = Owners::default();
        let mut buf = Vec::with_capacity(64);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&pid) = pids.get(i) else { break };
            owners.add_process(pid, &mut buf);
        }
        owners
    };
    let workers = workers.clamp(1, pids.len().max(1));
    let parts: Vec<Owners> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..workers).map(|_| s.spawn(one)).collect();
        let mut parts = vec![one()];
        parts.extend(handles.into_iter().map(|h| h.join().expect("owner walk")));
        parts
    });
    let mut all = Owners::default();
    for p in parts {
        all.merge(p);
    }
    all
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

    #[test]
    fn finds_our_own_socket() {
        // Reading our own /proc/self/fd needs no privileges.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        let me = std::process::id();
        let owners = walk(&[me, u32::MAX], 2);
        let owner = owners.get(inode).expect("our listener has an owner");
        assert_eq!(owner.pid, me);
        let comm = std::fs::read("/proc/self/comm").unwrap();
        assert_eq!(owner.comm, parse_comm(&comm));
        assert_eq!(owners.stats.processes, 2);
        assert_eq!(owners.stats.vanished, 1, "pid u32::MAX does not exist");
    }
}
