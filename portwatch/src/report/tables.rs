//! The tables that back the findings: pools, processes, listeners by remote IP, CLOSE_WAIT,
//! failures, sysctls, lost events.

use super::{
    Report,
    wrap::{row, wrap},
};
use crate::{
    event::TcpState,
    explain::words::{count, dur, n, rate},
    model::{ProcRef, StateCounts},
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

fn states(s: &StateCounts) -> String {
    let v: Vec<String> = s.iter().map(|(st, c)| format!("{st} {}", n(c))).collect();
    v.join(", ")
}

fn pools(out: &mut String, r: &Report) {
    section(
        out,
        "Pools (source ports per source IP and destination, most urgent first)",
    );
    if r.snapshot.pools.is_empty() {
        out.push_str("  none\n");
        return;
    }
    let head = [
        ("source → destination", 30, false),
        ("in use/cap", 15, true),
        ("use", 4, true),
        ("TW", 7, true),
        ("ESTAB", 6, true),
        ("other", 6, true),
        ("new/s", 6, true),
        ("eta", 6, true),
    ];
    row(out, IND, &head);
    for p in &r.snapshot.pools {
        let tw = p.states.get(TcpState::TimeWait);
        let est = p.states.get(TcpState::Established);
        let other = p.states.total() - tw - est;
        let eta = match p.time_to_exhaustion_s {
            Some(t) if t <= 0.0 => "now".to_string(),
            Some(t) => dur(t).replace(' ', ""),
            None => "-".to_string(),
        };
        let cells = [
            format!("{} → {}", p.src, p.dst),
            format!("{}/{}", n(p.in_use), n(p.capacity)),
            format!("{:.0}%", p.utilisation * 100.0),
            n(tw),
            n(est),
            n(other),
            rate(p.rates.attempts_per_s),
            eta,
        ];
        let v: Vec<(&str, usize, bool)> = cells
            .iter()
            .zip(head.iter())
            .map(|(c, (_, w, right))| (c.as_str(), *w, *right))
            .collect();
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
        if p.eaddrnotavail > 0 {
            extra.push(format!("EADDRNOTAVAIL ×{}", count(p.eaddrnotavail)));
        }
        if p.bind_before_connect > 0 {
            extra.push(format!("bind-before-connect {}", n(p.bind_before_connect)));
        }
        if p.tw_reusable {
            extra.push("tcp_tw_reuse applies".to_string());
        }
        wrap(out, "      ", "      ", &extra.join(" · "));
    }
}

fn processes(out: &mut String, r: &Report) {
    section(out, "Processes (most sockets first)");
    if r.snapshot.processes.is_empty() {
        out.push_str("  none\n");
    } else {
        let head = [
            ("pid", 8, true),
            ("comm", 15, false),
            ("sockets", 8, true),
            ("connects", 9, true),
            ("failures", 8, true),
            ("top destination", 36, false),
        ];
        row(out, IND, &head);
        for p in &r.snapshot.processes {
            let top = p
                .outbound
                .first()
                .map(|d| format!("{} ({})", d.dst, n(d.total)))
                .or_else(|| p.listening.first().map(|l| format!("listening on {l}")))
                .unwrap_or_default();
            row(
                out,
                IND,
                &[
                    (&p.process.pid.to_string(), 8, true),
                    (&p.process.comm.to_string(), 15, false),
                    (&n(p.sockets), 8, true),
                    (&count(p.connects), 9, true),
                    (&count(p.failures), 8, true),
                    (&top, 36, false),
                ],
            );
            if let Some(w) = p.process.workload.as_ref().and_then(|w| w.whereabouts()) {
                out.push_str(&format!("{IND}{:>8}  in {w}\n", ""));
            }
        }
    }
    workload_groups(out, r);
    if r.snapshot.process_groups.is_empty() {
        return;
    }
    section(
        out,
        "Process groups (same command and parent: short-lived clients)",
    );
    let head = [
        ("comm", 15, false),
        ("parent", 8, true),
        ("processes", 9, true),
        ("sockets", 8, true),
        ("connects", 9, true),
        ("failures", 8, true),
    ];
    row(out, IND, &head);
    for g in &r.snapshot.process_groups {
        row(
            out,
            IND,
            &[
                (&g.comm.to_string(), 15, false),
                (&g.ppid.to_string(), 8, true),
                (&n(g.processes), 9, true),
                (&n(g.sockets), 8, true),
                (&count(g.connects), 9, true),
                (&count(g.failures), 8, true),
            ],
        );
    }
}

/// `--group-by`: processes by container, pod or unit.
fn workload_groups(out: &mut String, r: &Report) {
    let Some(g) = &r.snapshot.groups else { return };
    let what = g.by.name();
    section(out, &format!("By {what} (most sockets first)"));
    let head = [
        (what, 36, false),
        ("processes", 9, true),
        ("sockets", 8, true),
        ("connects", 9, true),
        ("failures", 8, true),
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

fn listeners(out: &mut String, r: &Report) {
    if r.snapshot.listeners.is_empty() {
        return;
    }
    section(out, "Listeners: accepted connections by remote IP");
    for l in &r.snapshot.listeners {
        let line = format!(
            "{} {}: {} listening, {} accepted since start; now {}",
            l.local,
            proc_name(&l.owner),
            l.listening,
            count(l.accepted),
            if l.states.total() == 0 {
                "none".to_string()
            } else {
                states(&l.states)
            }
        );
        wrap(out, IND, "      ", &line);
        for rm in &l.by_remote {
            row(
                out,
                "      ",
                &[
                    (&rm.ip.to_string(), 39, false),
                    (&n(rm.total), 8, true),
                    (&states(&rm.states), 43, false),
                ],
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
    section(out, &format!("Failures ({} in all)", count(f.total)));
    if f.total == 0 {
        out.push_str("  none\n");
        return;
    }
    let by: Vec<String> = f
        .by_errno
        .iter()
        .map(|e| format!("{} ×{}", e.errno, count(e.count.count)))
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
}

fn call(c: crate::event::CallKind) -> &'static str {
    match c {
        crate::event::CallKind::Connect => "connect",
        crate::event::CallKind::Bind => "bind",
    }
}

fn sysctls(out: &mut String, r: &Report) {
    section(out, "Sysctls (per network namespace)");
    for s in &r.snapshot.sysctls {
        let y = &s.sysctls;
        let c = &s.capacity;
        let reserved: Vec<String> = y
            .reserved_ports
            .iter()
            .map(|(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        let text = format!(
            "ip_local_port_range {}–{}: {} ports scanned, {} reserved, {} held by bind() or \
             listeners, {} per pool · ip_local_reserved_ports {} · tcp_tw_reuse {} · \
             tcp_timestamps {} · tcp_max_tw_buckets {} ({} timewait sockets now, {} \
             overflowed since start) · tcp_fin_timeout {} s{}",
            y.port_range.0,
            y.port_range.1,
            n(c.scanned),
            n(c.reserved),
            n(c.held_by_bind),
            n(c.capacity),
            if reserved.is_empty() {
                "none".to_string()
            } else {
                reserved.join(",")
            },
            y.tw_reuse,
            y.timestamps,
            n(y.max_tw_buckets),
            n(s.timewait_sockets),
            count(s.tw_overflow_since_start),
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
            count(l.total),
            count(l.state),
            count(l.call),
            count(l.timewait),
            count(l.decode_errors),
            count(l.skipped_state),
            count(l.skipped_calls),
            count(l.untracked_calls),
            count(l.timers_skipped_upper_bound)
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
            count(m.events),
            count(m.sockets_tracked),
            count(m.sockets_evicted),
            count(m.odd.total()),
            count(m.corrections)
        ),
    );
}
