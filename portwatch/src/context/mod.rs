//! System context: the ground truth the model starts from and checks itself against.
//!
//! - [`snapshot()`]: every TCP socket of every network namespace (netlink `sock_diag`, TIME_WAIT
//!   and bound-only sockets included), each with its owning process (`/proc/*/fd`), plus each
//!   namespace's port sysctls.
//! - [`counts()`]: the cheap reconciliation pass, counts per state and per pool.
//! - [`sysctls_of`]: one namespace's sysctls.
//! - [`cgroups::Resolver`]: cgroup ids → workloads (unit, container, pod), names from
//!   [`names`] (runtime API sockets, kubelet directories).
//!
//! Namespaces are entered with `setns` on short-lived worker threads (the network namespace
//! is per thread), so the rest of the process never moves. A namespace that cannot be read
//! is skipped and reported ([`Report::skipped`]), never fatal. Entering another namespace
//! needs CAP_SYS_ADMIN; without it only the caller's own namespace is read.
//!
//! The snapshot is not atomic: the owner walk runs beside the dumps, so a socket opened,
//! passed or closed meanwhile may lack an owner or be missing. `taken_at_ns` is the start.
//! Cost: the kernel walks the whole established hash (shared by every namespace) once per
//! family and namespace, and the owner walk reads every fd link of every process.

pub mod cgroups;
pub mod counts;
pub mod diag;
pub mod error;
pub mod names;
pub mod nat;
pub mod netlink;
pub mod netns;
pub mod owners;
pub mod sysctl;
pub mod types;

use anyhow::Context as _;

pub use self::{
    counts::{NetnsCounts, PoolCount, PoolKey, StateCounts},
    diag::DumpStats,
    error::{ContextError, ParseError},
    netns::Skipped,
    owners::OwnerStats,
    types::{NetnsSnapshot, Owner, SnapSocket, Sysctls, SystemSnapshot},
};
use self::{diag::Dumper, netns::Netns};
use crate::collect::monotonic_now_ns;

#[derive(Debug, Clone)]
pub struct Options {
    /// Find each socket's owning process (a walk of every `/proc/PID/fd`).
    pub owners: bool,
    /// Read each namespace's sysctls.
    pub sysctls: bool,
    /// Only these namespaces (by inode); `None` for all.
    pub only_netns: Option<Vec<u32>>,
    /// Threads for the namespaces, and as many again for the owner walk.
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            owners: true,
            sysctls: true,
            only_netns: None,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// A snapshot and what it could not see.
#[derive(Debug)]
pub struct Report {
    pub snapshot: SystemSnapshot,
    /// Namespaces that could not be entered or dumped: absent from the snapshot.
    pub skipped: Vec<Skipped>,
    /// Namespaces in the snapshot whose sysctls could not be read (`sysctls: None`).
    pub sysctl_errors: Vec<Skipped>,
    pub dump: DumpStats,
    pub owners: OwnerStats,
}

impl Report {
    /// Logs every problem as a warning.
    pub fn warn(&self) {
        for s in &self.skipped {
            log::warn!("netns {} skipped: {}", s.netns, s.error);
        }
        for s in &self.sysctl_errors {
            log::warn!("netns {}: sysctls unknown: {}", s.netns, s.error);
        }
        if self.dump.unknown_state > 0 {
            log::warn!(
                "{} sockets had a TCP state this build does not know",
                self.dump.unknown_state
            );
        }
        if self.owners.denied > 0 {
            log::warn!(
                "{} processes' fds could not be read: their sockets have no owner",
                self.owners.denied
            );
        }
    }
}

/// Every TCP socket of every namespace, with owners and sysctls; problems are logged.
pub fn snapshot(opts: &Options) -> anyhow::Result<SystemSnapshot> {
    let report = take(opts)?;
    report.warn();
    Ok(report.snapshot)
}

/// Like [`snapshot`], and says what it could not see.
pub fn take(opts: &Options) -> anyhow::Result<Report> {
    let (namespaces, mut skipped) = namespaces(opts)?;
    let pids = if opts.owners {
        netns::pids().context("list /proc")?
    } else {
        Vec::new()
    };
    let taken_at_ns = monotonic_now_ns();
    // The owner walk and the dumps are independent: run them side by side.
    let (per_ns, owners) = std::thread::scope(|s| {
        let walker = opts
            .owners
            .then(|| s.spawn(|| owners::walk(&pids, opts.workers)));
        let per_ns = netns::run_in_each(&namespaces, opts.workers, |ns| {
            read_namespace(ns, opts.sysctls)
        });
        let owners = walker.map(|w| w.join().expect("owner walk panicked"));
        (per_ns, owners)
    });
    let per_ns = per_ns.context("read the network namespaces")?;

    let mut report = Report {
        snapshot: SystemSnapshot {
            taken_at_ns,
            namespaces: Vec::with_capacity(per_ns.len()),
        },
        skipped: Vec::new(),
        sysctl_errors: Vec::new(),
        dump: DumpStats::default(),
        owners: owners.as_ref().map(|o| o.stats).unwrap_or_default(),
    };
    for (ns, result) in namespaces.iter().zip(per_ns) {
        let (mut snap, stats, sysctl_err) = match result {
            Ok(r) => r,
            Err(error) => {
                skipped.push(Skipped {
                    netns: ns.inode,
                    error,
                });
                continue;
            }
        };
        report.dump.sockets += stats.sockets;
        report.dump.unknown_state += stats.unknown_state;
        if let Some(error) = sysctl_err {
            report.sysctl_errors.push(Skipped {
                netns: ns.inode,
                error,
            });
        }
        if let Some(owners) = &owners {
            for sock in snap.sockets.iter_mut().filter(|s| s.inode != 0) {
                sock.owner = owners.get(sock.inode);
            }
        }
        report.snapshot.namespaces.push(snap);
    }
    skipped.sort_by_key(|s| s.netns);
    report.skipped = skipped;
    Ok(report)
}

type NamespaceRead = (NetnsSnapshot, DumpStats, Option<ContextError>);

/// Runs inside `ns`: its sockets (owners not yet attached) and sysctls.
fn read_namespace(ns: &Netns, sysctls: bool) -> Result<NamespaceRead, ContextError> {
    let mut sockets = Vec::new();
    let stats = Dumper::new(ns.inode)?.dump_tcp(|s| {
        sockets.push(SnapSocket {
            netns: ns.inode,
            local: s.local,
            remote: s.remote,
            state: s.state,
            inode: u64::from(s.inode),
            owner: None,
        })
    })?;
    let (sysctls, error) = if sysctls {
        match sysctl::read_current() {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let snap = NetnsSnapshot {
        netns: ns.inode,
        sysctls,
        sockets,
    };
    Ok((snap, stats, error))
}

fn namespaces(opts: &Options) -> anyhow::Result<(Vec<Netns>, Vec<Skipped>)> {
    let wanted = opts.only_netns.as_deref().unwrap_or(&[]);
    let (mut all, mut skipped) =
        netns::enumerate_wanting(wanted).context("find the network namespaces")?;
    if let Some(only) = &opts.only_netns {
        all.retain(|ns| only.contains(&ns.inode));
        skipped.retain(|s| only.contains(&s.netns));
        for &want in only {
            if !all.iter().any(|ns| ns.inode == want) && !skipped.iter().any(|s| s.netns == want) {
                skipped.push(Skipped {
                    netns: want,
                    error: ContextError::NoSuchNetns { netns: want },
                });
            }
        }
    }
    Ok((all, skipped))
}

/// Counts per state and per pool for every namespace (or `opts.only_netns`), and what could
/// not be counted. Owners and sysctls are not read.
pub fn take_counts(opts: &Options) -> anyhow::Result<(Vec<NetnsCounts>, Vec<Skipped>)> {
    let (namespaces, mut skipped) = namespaces(opts)?;
    let per_ns = netns::run_in_each(&namespaces, opts.workers, |ns| {
        let mut counter = counts::Counter::new(ns.inode);
        Dumper::new(ns.inode)?.dump_tcp(|s| counter.add(&s))?;
        Ok(counter.finish())
    })
    .context("count sockets in the network namespaces")?;
    let mut out = Vec::with_capacity(per_ns.len());
    for (ns, result) in namespaces.iter().zip(per_ns) {
        match result {
            Ok(c) => out.push(c),
            Err(error) => skipped.push(Skipped {
                netns: ns.inode,
                error,
            }),
        }
    }
    Ok((out, skipped))
}

/// Counts for every namespace; namespaces that could not be read are logged and left out.
pub fn counts() -> anyhow::Result<Vec<NetnsCounts>> {
    let (counts, skipped) = take_counts(&Options::default())?;
    for s in skipped {
        log::warn!("netns {} not counted: {}", s.netns, s.error);
    }
    Ok(counts)
}

/// The sysctls of one namespace, by inode.
pub fn sysctls_of(netns: u32) -> anyhow::Result<Sysctls> {
    let ns = netns::find(netns)?;
    netns::run_in(&ns, |_| sysctl::read_current())
        .with_context(|| format!("read the sysctls of netns {netns} ({})", ns.path.display()))
}
