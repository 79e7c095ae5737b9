//! Cgroup ids ↔ paths in the unified hierarchy, and the resolver that turns the ids events
//! carry into [`Workload`]s (unit, container, pod, with names), cached per cgroup.
//!
//! A cgroup id (`bpf_get_current_cgroup_id()`) is the inode number of the cgroup's directory
//! in the cgroup2 mount: `/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a
//! hybrid one like this. An id is mapped back by walking that tree once (one `stat` per
//! cgroup directory) and again only when an id is missing and the last walk is older than
//! [`REWALK_AFTER`]. A cgroup removed before it was resolved stays unknown: its events still
//! carry the id, shown as such.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::names::Names;
use crate::workload::{Workload, cgroup};

/// The least time between two walks of the cgroup tree for ids it did not have.
pub const REWALK_AFTER: Duration = Duration::from_millis(500);

/// The cgroup2 mount point, from `/proc/self/mountinfo` (`None` on a v1-only host).
pub fn unified_root() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    unified_root_in(&text).map(PathBuf::from)
}

/// The mount point of the first `cgroup2` file system in mountinfo text.
pub fn unified_root_in(mountinfo: &str) -> Option<&str> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split(' ').next()?;
        (fstype == "cgroup2").then(|| left.split(' ').nth(4))?
    })
}

/// The cgroup id of a path from `/proc/PID/cgroup`, under `root`.
pub fn id_of_path(root: &Path, path: &str) -> Option<u64> {
    std::fs::metadata(root.join(path.trim_start_matches('/')))
        .ok()
        .map(|m| m.ino())
}

/// The path and cgroup id of a running process (`None` if it is gone or has no path).
pub fn of_pid(root: &Path, pid: u32) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = unified_path(&text)?;
    let id = id_of_path(root, path)?;
    Some((path.to_string(), id))
}

/// The unified (`0::`) path of `/proc/PID/cgroup` content: the one the kernel's cgroup ids
/// refer to (unlike [`cgroup::proc_cgroup_path`], never the v1 `name=systemd` path).
fn unified_path(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Turns cgroup ids into workloads, once per id.
pub struct Resolver {
    root: Option<PathBuf>,
    by_id: HashMap<u64, String>,
    walked: Option<Instant>,
    names: Names,
    /// Ids resolved without a name a runtime API was too late to give (see [`Names::fill`]).
    late: Vec<u64>,
    /// Directories `stat`ed by walks so far (for the cost figures).
    pub stats: ResolverStats,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResolverStats {
    pub walks: u64,
    pub dirs_stated: u64,
    pub resolved: u64,
    pub unknown: u64,
}

impl Resolver {
    /// The system's cgroup2 mount and the runtimes' sockets and kubelet directories.
    pub fn system() -> Resolver {
        Resolver::new(unified_root(), Names::system())
    }

    pub fn new(root: Option<PathBuf>, names: Names) -> Resolver {
        Resolver {
            root,
            by_id: HashMap::new(),
            walked: None,
            names,
            late: Vec::new(),
            stats: ResolverStats::default(),
        }
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// The workload of each id that could be mapped to a path (others are left out).
    pub fn resolve(&mut self, ids: &[u64]) -> Vec<(u64, Workload)> {
        if ids.iter().any(|id| !self.by_id.contains_key(id))
            && self.walked.is_none_or(|t| t.elapsed() >= REWALK_AFTER)
        {
            self.walk();
        }
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            match self.by_id.get(&id) {
                Some(path) => {
                    let mut w = cgroup::parse_path(path);
                    if !self.names.fill(&mut w) {
                        self.late.push(id);
                    }
                    self.stats.resolved += 1;
                    out.push((id, w));
                }
                None => self.stats.unknown += 1,
            }
        }
        out
    }

    /// The ids [`Resolver::resolve`] returned without a name because a runtime API answered
    /// too late: resolving them again may name them.
    pub fn take_late(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.late)
    }

    /// The workload of a path read from `/proc/PID/cgroup` (no walk needed).
    pub fn learn_path(&mut self, id: u64, path: &str) {
        self.by_id.insert(id, path.to_string());
    }

    fn walk(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        self.stats.walks += 1;
        self.walked = Some(Instant::now());
        let mut stack = vec![(root, String::from("/"))];
        while let Some((dir, path)) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            self.stats.dirs_stated += 1;
            self.by_id.insert(meta.ino(), path.clone());
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    stack.push((e.path(), child));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_on_hybrid_and_v2_hosts() {
        // This host kind (hybrid): `grep cgroup /proc/self/mountinfo`.
        let hybrid = "35 24 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755\n\
             36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n\
             37 35 0:32 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd\n";
        assert_eq!(unified_root_in(hybrid), Some("/sys/fs/cgroup/unified"));
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(unified_root_in(v2), Some("/sys/fs/cgroup"));
        assert_eq!(
            unified_root_in("36 35 0:31 / /x rw - cgroup cgroup rw\n"),
            None
        );
    }

    #[test]
    fn the_unified_path_is_the_0_line() {
        let text = "9:name=systemd:/system.slice/a.service\n0::/system.slice/a.service\n";
        assert_eq!(unified_path(text), Some("/system.slice/a.service"));
        assert_eq!(unified_path("1:name=systemd:/\n"), None);
    }

    #[test]
    fn resolves_ids_of_a_real_tree() {
        let dir = tempfile::tempdir().unwrap();
        let svc = dir.path().join("system.slice/nginx.service");
        std::fs::create_dir_all(&svc).unwrap();
        let id = std::fs::metadata(&svc).unwrap().ino();
        let mut r = Resolver::new(Some(dir.path().to_path_buf()), Names::none());
        let got = r.resolve(&[id, 1]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, id);
        assert_eq!(got[0].1.cgroup, "/system.slice/nginx.service");
        assert_eq!(got[0].1.unit.as_deref(), Some("nginx.service"));
        // The unknown id does not walk again at once.
        r.resolve(&[1]);
        assert_eq!(r.stats.walks, 1);
        assert_eq!(
            id_of_path(dir.path(), "/system.slice/nginx.service"),
            Some(id)
        );
    }
}
