//! The tables that back the findings: pools, processes, listeners by remote IP, CLOSE_WAIT,
//! failures, sysctls, lost events. A column the TUI has too is printed through
//! `snapshot::cells`, under the TUI's name and with its figure.

use super::{
    Report,
    wrap::{row, wrap},
};
use crate::{
    explain::words::{self, dur},
    model::ProcRef,
    snapshot::cells::{
        FailureGroupCells, GroupCells, ListenerCells, PoolCells, ProcessCells, RemoteCells, call,
        col, count, n,
    },
};

const IND: &str = "  ";

pub fn render(out: &mut String, r: &Report) {
    pools(out, r);
    processes(out, r);
    listeners(out, r);
    close_wait(out, r);
    failures(out, r);
    sysctls(out, r);
    lost(out, r);
}

fn section(out: &mut String, title: &str) {
    out.push('\n');
    out.push_str(title);
    out.push('\n');
    out.push_str(&"-".repeat(title.chars().count()));
    out.push('\n');
}

fn proc_name(p: &Option<ProcRef>) -> String {
    match p {
        Some(p) => format!("{} (pid {})", p.comm, p.pid),
        None => "unknown".to_string(),
    }
}

/// `(name, text)` cells laid out at `widths` (right-aligned when the flag says so).
fn cells<'a>(c: &[(&'a str, &'a str)], widths: &[(usize, bool)]) -> Vec<(&'a str, usize, bool)> {
    c.iter()
        .zip(widths)
        .map(|((_, text), (w, right))| (*text, *w, *right))
        .collect()
}

/// The header of `cells`.
fn names<'a>(c: &[(&'a str, &str)], widths: &[(usize, bool)]) -> Vec<(&'a str, usize, bool)> {
    c.iter()
        .zip(widths)
        .map(|((name, _), (w, right))| (*name, *w, *right))
        .collect()
}

/// Widths of [`PoolCells::columns`], after the 30 of the pool's name.
const POOL_W: [(usize, bool); 8] = [
    (13, true),
    (4, true),
    (6, true),
    (6, true),
    (6, true),
    (6, true),
    (5, true),
    (6, true),
];

fn pools(out: &mut String, r: &Report) {
    section(
        out,
        "Pools (source ports per source IP and destination, most urgent first)",
    );
    let Some(first) = r.snapshot.pools.first() else {
        out.push_str("  none\n");
        return;
    };
    let mut head = vec![("source → destination", 30, false)];
    head.extend(names(&PoolCells::of(first).columns(), &POOL_W));
    row(out, IND, &head);
    for p in &r.snapshot.pools {
        let c = PoolCells::of(p);
        let place = format!("{} → {}", p.src, p.dst);
        let mut v = vec![(place.as_str(), 30, false)];
        v.extend(cells(&c.columns(), &POOL_W));
        row(out, IND, &v);
        let owners: Vec<String> = p
            .owners
            .iter()
            .take(3)
            .map(|o| format!("{} {}", proc_name(&o.owner), n(o.total)))
            .collect();
        let mut extra = vec![format!("netns {}", p.netns)];
        if !owners.is_empty() {
            extra.push(format!("owners: {}", owners.join(", ")));
        }
        if p.bind_before_connect > 0 {
            extra.push(format!("bind-before-connect {}", n(p.bind_before_connect)));
        }
        if p.tw_reusable {
            extra.push("tcp_tw_reuse applies".to_string());
        }
        if let Some(search) = c.search {
            extra.push(format!("port search: {search}"));
        }
        wrap(out, "      ", "      ", &extra.join(" · "));
    }
}

const PROCESS_W: [(usize, bool); 6] = [
    (8, true),
    (15, false),
    (8, true),
    (9, true),
    (8, true),
    (36, false),
];

const GROUP_W: [(usize, bool); 6] = [
    (15, false),
    (8, true),
    (9, true),
    (8, true),
    (9, true),
    (8, true),
];

fn processes(out: &mut String, r: &Report) {
    section(out, "Processes (most sockets first)");
    if let Some(first) = r.snapshot.processes.first() {
        row(
            out,
            IND,
            &names(&ProcessCells::of(first).columns(), &PROCESS_W),
        );
        for p in &r.snapshot.processes {
            row(out, IND, &cells(&ProcessCells::of(p).columns(), &PROCESS_W));
            if let Some(w) = p.process.workload.as_ref().and_then(|w| w.whereabouts()) {
                out.push_str(&format!("{IND}{:>8}  in {w}\n", ""));
            }
        }
    } else {
        out.push_str("  none\n");
    }
    workload_groups(out, r);
    let Some(first) = r.snapshot.process_groups.first() else {
        return;
    };
    section(
        out,
        "Process groups (same command and parent: short-lived clients)",
    );
    row(out, IND, &names(&GroupCells::of(first).columns(), &GROUP_W));
    for g in &r.snapshot.process_groups {
        row(out, IND, &cells(&GroupCells::of(g).columns(), &GROUP_W));
    }
}

/// `--group-by`: processes by container, pod or unit.
fn workload_groups(out: &mut String, r: &Report) {
    let Some(g) = &r.snapshot.groups else { return };
    let what = g.by.name();
    section(out, &format!("By {what} (most sockets first)"));
    let head = [
        (what, 36, false),
        (col::PROCESSES, 9, true),
        (col::SOCKETS, 8, true),
        (col::CONNECTS, 9, true),
        (col::FAIL, 8, true),
    ];
    row(out, IND, &head);
    for grp in &g.groups {
        let key = match (&grp.key, &grp.container) {
            (Some(k), Some(c)) if c.name.is_some() => {
                format!("{k} ({} {})", c.runtime, c.short_id())
            }
            (Some(k), _) => k.clone(),
            (None, _) => format!("(no {what})"),
        };
        row(
            out,
            IND,
            &[
                (&key, 36, false),
                (&n(grp.processes), 9, true),
                (&n(grp.sockets), 8, true),
                (&count(grp.connects), 9, true),
                (&count(grp.failures), 8, true),
            ],
        );
    }
}

const LISTENER_W: [(usize, bool); 8] = [
    (28, false),
    (20, false),
    (4, true),
    (8, true),
    (6, true),
    (6, true),
    (6, true),
    (6, true),
];

const REMOTE_W: [(usize, bool); 6] = [
    (39, false),
    (6, true),
    (6, true),
    (6, true),
    (6, true),
    (6, true),
];

fn listeners(out: &mut String, r: &Report) {
    let Some(first) = r.snapshot.listeners.first() else {
        return;
    };
    section(out, "Listeners: accepted connections by remote IP");
    row(
        out,
        IND,
        &names(&ListenerCells::of(first).columns(), &LISTENER_W),
    );
    for l in &r.snapshot.listeners {
        row(
            out,
            IND,
            &cells(&ListenerCells::of(l).columns(), &LISTENER_W),
        );
        if let Some(first) = l.by_remote.first() {
            row(
                out,
                "      ",
                &names(&RemoteCells::of(first).columns(), &REMOTE_W),
            );
        }
        for rm in &l.by_remote {
            row(
                out,
                "      ",
                &cells(&RemoteCells::of(rm).columns(), &REMOTE_W),
            );
        }
    }
}

fn close_wait(out: &mut String, r: &Report) {
    if r.snapshot.close_wait.is_empty() {
        return;
    }
    section(
        out,
        "CLOSE_WAIT by process (the peer closed, the process has not)",
    );
    let head = [
        ("process", 28, false),
        ("count", 7, true),
        ("oldest", 9, true),
        ("new 60s", 7, true),
        ("mostly", 36, false),
    ];
    row(out, IND, &head);
    for c in &r.snapshot.close_wait {
        let mostly = match (c.top_destination, c.top_local) {
            (Some((_, d, k)), _) => format!("to {d} ({})", n(k)),
            (None, Some((l, k))) => format!("accepted on {l} ({})", n(k)),
            _ => String::new(),
        };
        row(
            out,
            IND,
            &[
                (&proc_name(&c.owner), 28, false),
                (&n(c.count), 7, true),
                (&dur(c.oldest_s), 9, true),
                (&n(c.entered_last_60s), 7, true),
                (&mostly, 36, false),
            ],
        );
    }
}

fn failures(out: &mut String, r: &Report) {
    let f = &r.snapshot.failures;
    section(out, &format!("Failures ({} in all)", words::count(f.total)));
    if f.total == 0 {
        out.push_str("  none\n");
        return;
    }
    let by: Vec<String> = f
        .by_errno
        .iter()
        .map(|e| format!("{} ×{}", e.errno, words::count(e.count.count)))
        .collect();
    wrap(out, "  by errno: ", "            ", &by.join(", "));
    let head = [
        ("pid", 8, true),
        ("comm", 15, false),
        ("call", 7, false),
        ("errno", 14, false),
        ("count", 9, true),
    ];
    out.push_str("  by process:\n");
    row(out, "    ", &head);
    for p in &f.by_process {
        row(
            out,
            "    ",
            &[
                (&p.pid.to_string(), 8, true),
                (&p.comm.to_string(), 15, false),
                (call(p.call), 7, false),
                (&p.errno.name(), 14, false),
                (&count(p.count.count), 9, true),
            ],
        );
    }
    out.push_str("  by address (connect: destination; bind: requested address):\n");
    for d in &f.by_destination {
        row(
            out,
            "    ",
            &[
                (&d.addr.to_string(), 41, false),
                (call(d.call), 7, false),
                (&d.errno.name(), 14, false),
                (&count(d.count.count), 9, true),
            ],
        );
    }
    if let Some(first) = f.groups.first() {
        out.push_str(
            "  repeats (per errno, call, command, address; newest first; ages at the end):\n",
        );
        let at = r.snapshot.at_ns;
        row(
            out,
            "    ",
            &names(&FailureGroupCells::of(first, at).columns(), &FAILGROUP_W),
        );
        for g in &f.groups {
            let c = FailureGroupCells::of(g, at);
            row(out, "    ", &cells(&c.columns(), &FAILGROUP_W));
        }
    }
}

/// Widths of [`FailureGroupCells::columns`].
const FAILGROUP_W: [(usize, bool); 8] = [
    (5, true),
    (5, true),
    (7, true),
    (13, false),
    (7, false),
    (7, true),
    (15, false),
    (21, false),
];

fn sysctls(out: &mut String, r: &Report) {
    section(out, "Sysctls (per network namespace)");
    for s in &r.snapshot.sysctls {
        let y = &s.sysctls;
        let c = &s.capacity;
        let text = format!(
            "ip_local_port_range {}–{}: {} ports scanned, {} reserved, {} held by bind() or \
             listeners, {} per pool · ip_local_reserved_ports {} · tcp_tw_reuse {} · \
             tcp_timestamps {} · tcp_max_tw_buckets {} ({} timewait sockets now, {} \
             overflowed since start) · tcp_fin_timeout {} s{}",
            y.port_range.0,
            y.port_range.1,
            words::n(c.scanned),
            words::n(c.reserved),
            words::n(c.held_by_bind),
            words::n(c.capacity),
            words::port_ranges(&y.reserved_ports),
            y.tw_reuse,
            y.timestamps,
            words::n(y.max_tw_buckets),
            words::n(s.timewait_sockets),
            words::count(s.tw_overflow_since_start),
            y.fin_timeout_s,
            if s.assumed {
                " · not read: kernel defaults assumed"
            } else {
                ""
            }
        );
        wrap(out, &format!("  netns {}: ", s.netns), "      ", &text);
    }
}

fn lost(out: &mut String, r: &Report) {
    let l = &r.snapshot.lost_events;
    section(out, "Lost events and model health");
    wrap(
        out,
        IND,
        IND,
        &format!(
            "Lost: {} (state {}, call {}, timewait {}, decode errors {}, skipped state {}, \
             skipped calls {}, untracked calls {}; timer runs skipped, mostly unrelated: {}).",
            words::count(l.total),
            words::count(l.state),
            words::count(l.call),
            words::count(l.timewait),
            words::count(l.decode_errors),
            words::count(l.skipped_state),
            words::count(l.skipped_calls),
            words::count(l.untracked_calls),
            words::count(l.timers_skipped_upper_bound)
        ),
    );
    let m = &r.snapshot.model;
    wrap(
        out,
        IND,
        IND,
        &format!(
            "Model: {} events, {} sockets tracked, {} evicted, {} events it could not place, \
             {} corrections by reconciliation.",
            words::count(m.events),
            words::count(m.sockets_tracked),
            words::count(m.sockets_evicted),
            words::count(m.odd.total()),
            words::count(m.corrections)
        ),
    );
}
