//! Which rows each tab shows, in which order: the view data filtered by the tab's `/` text and
//! sorted by its `s` order. Rebuilt when data, filter or sort change, never while rendering.

use std::{cmp::Reverse, net::SocketAddr};

use super::data::{Drill, ViewData};
use crate::{
    event::{CallKind, Comm, Errno},
    explain::finding::{Cause, Finding},
    model::{ListenerStats, PoolKey, PoolStats, ProcessGroupStats, ProcessStats},
};

/// The tabs, in key order (1–6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tab {
    Overview,
    Pools,
    Processes,
    Inbound,
    Failures,
    Events,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Overview,
        Tab::Pools,
        Tab::Processes,
        Tab::Inbound,
        Tab::Failures,
        Tab::Events,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn title(self) -> &'static str {
        match self {
            Tab::Overview => "Overview",
            Tab::Pools => "Pools",
            Tab::Processes => "Processes",
            Tab::Inbound => "Inbound",
            Tab::Failures => "Failures",
            Tab::Events => "Events",
        }
    }

    /// The orders `s` cycles through (empty: the tab has one order).
    pub fn sorts(self) -> &'static [&'static str] {
        match self {
            Tab::Overview | Tab::Events => &[],
            Tab::Pools => &["urgency", "in use", "conn/s", "failures", "destination"],
            Tab::Processes => &["sockets", "connects", "failures", "name"],
            Tab::Inbound => &["sockets", "accepted", "address"],
            Tab::Failures => &["newest", "errno", "process", "count"],
        }
    }
}

/// The orders `s` cycles through in a drill-down.
pub const DRILL_SORTS: [&str; 3] = ["age", "state", "local port"];

/// A row's identity, to keep the selection on the same thing across refreshes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowId {
    Finding(Cause, Option<u32>, Option<SocketAddr>),
    Pool(PoolKey),
    Process(u32),
    Group(Comm, u32),
    Listener(u32, SocketAddr),
    Failure(u32, Comm, CallKind, Errno, SocketAddr),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub findings: Vec<usize>,
    pub pools: Vec<usize>,
    pub processes: Vec<usize>,
    pub groups: Vec<usize>,
    pub listeners: Vec<usize>,
    /// Indices into `snapshot.failures.groups` (the most recently seen first).
    pub failures: Vec<usize>,
}

fn hit(needle: &str, hay: &[&str]) -> bool {
    needle.is_empty() || hay.iter().any(|h| h.to_lowercase().contains(needle))
}

fn finding_hit(f: &Finding, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let text = |v: Option<String>| v.unwrap_or_default();
    hit(
        needle,
        &[
            f.cause.id(),
            f.comm.as_deref().unwrap_or(""),
            &text(f.pid.map(|p| p.to_string())),
            &text(f.dst.map(|d| d.to_string())),
            &text(f.src_ip.map(|s| s.to_string())),
        ],
    )
}

fn pool_hit(p: &PoolStats, needle: &str) -> bool {
    needle.is_empty()
        || hit(needle, &[&p.dst.to_string(), &p.src.to_string()])
        || p.owners.iter().any(|o| {
            o.owner
                .as_ref()
                .is_some_and(|r| hit(needle, &[&r.comm.to_string(), &r.pid.to_string()]))
        })
}

fn process_hit(p: &ProcessStats, needle: &str) -> bool {
    needle.is_empty()
        || hit(
            needle,
            &[&p.process.comm.to_string(), &p.process.pid.to_string()],
        )
        || p.outbound
            .iter()
            .any(|d| hit(needle, &[&d.dst.to_string()]))
}

fn group_hit(g: &ProcessGroupStats, needle: &str) -> bool {
    hit(needle, &[&g.comm.to_string(), &g.ppid.to_string()])
}

fn listener_hit(l: &ListenerStats, needle: &str) -> bool {
    needle.is_empty()
        || hit(needle, &[&l.local.to_string()])
        || l.owner
            .as_ref()
            .is_some_and(|o| hit(needle, &[&o.comm.to_string(), &o.pid.to_string()]))
        || l.by_remote
            .iter()
            .any(|r| hit(needle, &[&r.ip.to_string()]))
}

/// Indices of `items` that pass `keep`, in their original order.
fn select<T>(items: &[T], keep: impl Fn(&T) -> bool) -> Vec<usize> {
    (0..items.len()).filter(|&i| keep(&items[i])).collect()
}

impl Rows {
    /// `filters` lower-cased, `sorts` indices into each tab's [`Tab::sorts`].
    pub fn build(v: &ViewData, filters: &[String; 6], sorts: &[usize; 6]) -> Rows {
        let f = |t: Tab| filters[t.index()].as_str();
        let s = |t: Tab| sorts[t.index()];
        let sum = &v.snapshot;

        let findings = select(&sum.findings, |x| finding_hit(x, f(Tab::Overview)));

        let mut pools = select(&sum.pools, |p| pool_hit(p, f(Tab::Pools)));
        let p = &sum.pools;
        match s(Tab::Pools) {
            1 => pools.sort_by_key(|&i| Reverse(p[i].in_use)),
            2 => pools.sort_by(|&a, &b| {
                p[b].rates
                    .attempts_per_s
                    .total_cmp(&p[a].rates.attempts_per_s)
            }),
            3 => pools.sort_by_key(|&i| Reverse(p[i].eaddrnotavail)),
            4 => pools.sort_by_key(|&i| (p[i].dst, p[i].src)),
            _ => {} // the model's urgency order
        }

        let pr = &sum.processes;
        let mut processes = select(pr, |x| process_hit(x, f(Tab::Processes)));
        match s(Tab::Processes) {
            1 => processes.sort_by_key(|&i| Reverse(pr[i].connects)),
            2 => processes.sort_by_key(|&i| Reverse(pr[i].failures)),
            3 => processes.sort_by_key(|&i| (pr[i].process.comm.0, pr[i].process.pid)),
            _ => {}
        }
        let g = &sum.process_groups;
        let mut groups = select(g, |x| group_hit(x, f(Tab::Processes)));
        match s(Tab::Processes) {
            1 => groups.sort_by_key(|&i| Reverse(g[i].connects)),
            2 => groups.sort_by_key(|&i| Reverse(g[i].failures)),
            3 => groups.sort_by_key(|&i| (g[i].comm.0, g[i].ppid)),
            _ => {}
        }

        let l = &sum.listeners;
        let mut listeners = select(l, |x| listener_hit(x, f(Tab::Inbound)));
        match s(Tab::Inbound) {
            1 => listeners.sort_by_key(|&i| Reverse(l[i].accepted)),
            2 => listeners.sort_by_key(|&i| (l[i].local.port(), l[i].local.ip())),
            _ => {}
        }

        let r = &sum.failures.groups;
        let needle = f(Tab::Failures);
        let mut failures = select(r, |x| {
            needle.is_empty()
                || hit(
                    needle,
                    &[
                        &x.errno.name(),
                        &x.comm.to_string(),
                        &x.pid.to_string(),
                        &x.addr.to_string(),
                    ],
                )
        });
        match s(Tab::Failures) {
            1 => failures.sort_by_key(|&i| r[i].errno),
            2 => failures.sort_by_key(|&i| (r[i].comm.0, r[i].pid)),
            3 => failures.sort_by_key(|&i| Reverse(r[i].count.count)),
            _ => {} // the snapshot's order: the most recently seen first
        }

        Rows {
            findings,
            pools,
            processes,
            groups,
            listeners,
            failures,
        }
    }
}

/// Socket order in a drill-down.
pub fn drill_rows(d: &Drill, sort: usize) -> Vec<usize> {
    let s = &d.sockets;
    let mut v: Vec<usize> = (0..s.len()).collect();
    match sort {
        1 => v.sort_by_key(|&i| (s[i].state, s[i].since_ns)),
        2 => v.sort_by_key(|&i| (s[i].local.port(), s[i].since_ns)),
        _ => v.sort_by_key(|&i| s[i].since_ns),
    }
    v
}
