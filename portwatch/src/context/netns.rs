//! Network namespaces: find every one that has a process (unique `/proc/PID/ns/net` inodes)
//! or a name in `/run/netns`, hold a file descriptor on each so it cannot vanish under us,
//! and run work inside them.
//!
//! The network namespace is per thread: work runs on dedicated worker threads that enter it
//! ([`Netns::enter`], the one `setns` in portwatch) and end with the scope, so no other thread
//! of the process ever changes namespace.

use std::{collections::BTreeMap, io, path::PathBuf, sync::Mutex};

use super::error::ContextError;

/// Where named namespaces live (`ip netns add NAME`).
pub const RUN_NETNS: &str = "/run/netns";

use crate::netns::inode_of;
pub use crate::netns::{Netns, current_inode};

/// A namespace that was seen but could not be read.
#[derive(Debug)]
pub struct Skipped {
    pub netns: u32,
    pub error: ContextError,
}

/// Every process id in `/proc` (thread group leaders only: `/proc` lists no thread ids).
pub fn pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Opens each distinct network namespace once, sorted by inode. A namespace whose every
/// process exited between `stat` and `open` is reported in the second list.
pub fn enumerate() -> Result<(Vec<Netns>, Vec<Skipped>), ContextError> {
    enumerate_wanting(&[])
}

/// Like [`enumerate`]; besides processes' (and their threads') namespaces and `/run/netns`,
/// looks for each `wanted` inode that none of those has among the namespace file descriptors
/// processes hold open (an anonymous namespace kept by a tool, as `portwatch demo` does).
pub fn enumerate_wanting(wanted: &[u32]) -> Result<(Vec<Netns>, Vec<Skipped>), ContextError> {
    let mut open: BTreeMap<u32, Netns> = BTreeMap::new();
    let mut failed: BTreeMap<u32, (PathBuf, io::Error)> = BTreeMap::new();
    let mut consider =
        |path: PathBuf, open: &mut BTreeMap<u32, Netns>| consider(path, open, &mut failed);
    let pids = pids().map_err(|e| ContextError::read("/proc", e))?;
    for &pid in &pids {
        consider(PathBuf::from(format!("/proc/{pid}/ns/net")), &mut open);
    }
    // Threads can be in other namespaces than their process (setns is per thread).
    for &pid in &pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if t.file_name().to_str() != Some(&pid.to_string()) {
                consider(t.path().join("ns/net"), &mut open);
            }
        }
    }
    match std::fs::read_dir(RUN_NETNS) {
        Ok(dir) => {
            for entry in dir.flatten() {
                consider(entry.path(), &mut open);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ContextError::read(RUN_NETNS, e)),
    }
    for &want in wanted {
        if open.contains_key(&want) {
            continue;
        }
        let link = format!("net:[{want}]");
        'search: for &pid in &pids {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == link.as_str()) {
                    consider(fd.path(), &mut open);
                    if open.contains_key(&want) {
                        break 'search;
                    }
                }
            }
        }
    }
    let skipped = failed
        .into_iter()
        .filter(|(inode, _)| !open.contains_key(inode))
        .map(|(netns, (path, e))| Skipped {
            netns,
            error: ContextError::read(path, e),
        })
        .collect();
    Ok((open.into_values().collect(), skipped))
}

/// Opens one namespace by inode, from the first process or `/run/netns` entry that has it.
pub fn find(inode: u32) -> Result<Netns, ContextError> {
    let (all, _) = enumerate()?;
    all.into_iter()
        .find(|ns| ns.inode == inode)
        .ok_or(ContextError::NoSuchNetns { netns: inode })
}

/// Runs `work` inside each namespace, on at most `workers` threads, and returns the results
/// in the order of `namespaces`. A thread that cannot enter a namespace reports it as that
/// namespace's error; the others carry on.
pub fn run_in_each<T, F>(
    namespaces: &[Netns],
    workers: usize,
    work: F,
) -> Result<Vec<Result<T, ContextError>>, ContextError>
where
    T: Send,
    F: Fn(&Netns) -> Result<T, ContextError> + Sync,
{
    let results: Vec<Mutex<Option<Result<T, ContextError>>>> =
        namespaces.iter().map(|_| Mutex::new(None)).collect();
    let next = Mutex::new(0usize);
    let workers = workers.clamp(1, namespaces.len().max(1));
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..workers {
            let job = || {
                loop {
                    let idx = {
                        let mut n = next.lock().unwrap();
                        let idx = *n;
                        *n += 1;
                        idx
                    };
                    let Some(ns) = namespaces.get(idx) else { break };
                    let result = ns
                        .enter()
                        .map_err(|cause| ContextError::Enter {
                            netns: ns.inode,
                            cause,
                        })
                        .and_then(|()| work(ns));
                    *results[idx].lock().unwrap() = Some(result);
                }
            };
            let handle = std::thread::Builder::new()
                .name(format!("pw-netns-{i}"))
                .spawn_scoped(s, job)
                .map_err(ContextError::Spawn)?;
            handles.push(handle);
        }
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Ok(())
    })?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap()
                .expect("every namespace was visited")
        })
        .collect())
}

/// Runs `work` inside one namespace on a dedicated thread.
pub fn run_in<T: Send>(
    ns: &Netns,
    work: impl Fn(&Netns) -> Result<T, ContextError> + Sync,
) -> Result<T, ContextError> {
    run_in_each(std::slice::from_ref(ns), 1, work)?
        .pop()
        .expect("one namespace, one result")
}

/// Opens the namespace at `path` unless one with its inode is open already; remembers why it
/// could not be opened otherwise.
fn consider(
    path: PathBuf,
    open: &mut BTreeMap<u32, Netns>,
    failed: &mut BTreeMap<u32, (PathBuf, io::Error)>,
) {
    // stat follows the magic link to the nsfs inode without opening anything.
    let Ok(meta) = std::fs::metadata(&path) else {
        return; // gone, or not a namespace
    };
    let Ok(inode) = inode_of(&meta) else { return };
    if open.contains_key(&inode) {
        return;
    }
    match Netns::open(&path) {
        // The pid may have been reused between stat and open: trust the fd's inode.
        Ok(ns) => {
            failed.remove(&ns.inode);
            open.entry(ns.inode).or_insert(ns);
        }
        Err(e) => {
            failed.entry(inode).or_insert((path, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        os::fd::{AsFd, AsRawFd},
        path::Path,
    };

    use super::*;

    #[test]
    fn finds_our_own_namespace_and_runs_there() {
        let ours = current_inode().unwrap();
        let ns = Netns::open(Path::new("/proc/self/ns/net")).unwrap();
        assert_eq!(ns.inode, ours);
        // Entering our own namespace needs no privileges.
        let seen = run_in(&ns, |_| Ok(current_inode().unwrap())).unwrap();
        assert_eq!(seen, ours);
    }

    #[test]
    fn results_keep_the_input_order() {
        let nss: Vec<Netns> = (0..5)
            .map(|_| Netns::open(Path::new("/proc/self/ns/net")).unwrap())
            .collect();
        let out = run_in_each(&nss, 3, |ns| Ok(ns.as_fd().as_raw_fd())).unwrap();
        let fds: Vec<i32> = out.into_iter().map(Result::unwrap).collect();
        let want: Vec<i32> = nss.iter().map(|n| n.as_fd().as_raw_fd()).collect();
        assert_eq!(fds, want);
    }
}
