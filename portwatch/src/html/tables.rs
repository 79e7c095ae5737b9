//! The page's tables: failures by errno, process and destination, and their repeats; the
//! sysctls in force per network namespace; the events that never reached the model.

use std::fmt::Write as _;

use super::{esc, serde_plain};
use crate::{
    event::{CallKind, Errno},
    explain::words,
    model::FailCount,
    report::Report,
    snapshot::cells::FailureGroupCells,
};

fn secs(report: &Report, t_ns: u64) -> String {
    format!(
        "{:.0} s",
        t_ns.saturating_sub(report.context.window_start_ns) as f64 / 1e9
    )
}

fn span(report: &Report, c: &FailCount) -> String {
    format!(
        r#"<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>"#,
        words::count(c.count),
        secs(report, c.first_ns),
        secs(report, c.last_ns)
    )
}

const HEAD: &str =
    r#"<th class="num">count</th><th class="num">first</th><th class="num">last</th>"#;

/// `what` followed by a detail in small print.
fn meta(what: String, detail: String) -> String {
    format!(r#"{what} <span class="meta">{detail}</span>"#)
}

/// Closes the table before and opens one of failures by `first` (process, destination).
fn fail_table<'a>(
    s: &mut String,
    report: &Report,
    class: &str,
    first: &str,
    rows: impl Iterator<Item = (String, CallKind, Errno, &'a FailCount)>,
) {
    let _ = write!(
        s,
        r#"</table><table class="{class}"><tr><th>{first}</th><th>call</th><th>errno</th>{HEAD}</tr>"#
    );
    for (who, call, errno, c) in rows {
        let _ = write!(
            s,
            r#"<tr><td>{who}</td><td>{}()</td><td>{}</td>{}</tr>"#,
            serde_plain(&call),
            esc(&errno.name()),
            span(report, c)
        );
    }
}

pub fn failures(s: &mut String, report: &Report) {
    let f = &report.failures;
    let _ = write!(
        s,
        r#"<section id="failures"><h2>Failures ({})</h2>"#,
        words::count(f.total)
    );
    if f.total == 0 {
        s.push_str(r#"<p class="none">No connect() or bind() failed.</p></section>"#);
        return;
    }
    let _ = write!(
        s,
        r#"<table class="by-errno"><tr><th>errno</th>{HEAD}</tr>"#
    );
    for e in &f.by_errno {
        let _ = write!(
            s,
            r#"<tr data-errno="{}"><td>{}</td>{}</tr>"#,
            esc(&e.errno.name()),
            esc(&e.errno.name()),
            span(report, &e.count)
        );
    }
    let by_process = f.by_process.iter().map(|p| {
        let who = meta(esc(&p.comm.to_string()), format!("pid {}", p.pid));
        (who, p.call, p.errno, &p.count)
    });
    fail_table(s, report, "by-process", "process", by_process);
    let by_destination = f.by_destination.iter().map(|d| {
        let addr = format!("<code>{}</code>", esc(&d.addr.to_string()));
        (
            meta(addr, format!("netns {}", d.netns)),
            d.call,
            d.errno,
            &d.count,
        )
    });
    fail_table(s, report, "by-destination", "destination", by_destination);
    // Repeats: one row per errno, call, command and address (the text report's too).
    let repeats = f.groups.iter().map(|g| {
        let c = FailureGroupCells::of(g, report.snapshot.at_ns);
        let what = format!("{} → <code>{}</code>", esc(&c.comm), esc(&c.addr));
        (
            meta(what, format!("pid {}", esc(&c.pid))),
            g.call,
            g.errno,
            &g.count,
        )
    });
    fail_table(s, report, "repeats", "repeat (command → address)", repeats);
    s.push_str("</table></section>");
}

pub fn sysctls(s: &mut String, report: &Report) {
    s.push_str(
        r#"<section id="sysctls"><h2>Sysctls in force</h2><table><tr><th>netns</th><th>ip_local_port_range</th><th>reserved ports</th><th class="num">usable ports</th><th>tcp_tw_reuse</th><th>tcp_timestamps</th><th class="num">tcp_max_tw_buckets</th><th class="num">timewait sockets</th><th class="num">tcp_fin_timeout</th></tr>"#,
    );
    for n in &report.sysctls {
        let sy = &n.sysctls;
        let reserved = words::port_ranges(&sy.reserved_ports);
        let _ = write!(
            s,
            r#"<tr data-netns="{}"><td>{}{}</td><td class="mono">{} {}</td><td class="mono">{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{} s</td></tr>"#,
            n.netns,
            n.netns,
            if n.assumed {
                " (kernel defaults assumed: not read)"
            } else {
                ""
            },
            sy.port_range.0,
            sy.port_range.1,
            esc(&reserved),
            words::count(u64::from(n.capacity.capacity)),
            sy.tw_reuse,
            sy.timestamps,
            words::count(u64::from(sy.max_tw_buckets)),
            words::count(u64::from(n.timewait_sockets)),
            sy.fin_timeout_s
        );
    }
    s.push_str("</table></section>");
}

pub fn lost(s: &mut String, report: &Report) {
    let l = &report.lost_events;
    let class = if l.total == 0 { "lost-ok" } else { "lost-bad" };
    let verdict = esc(&l.verdict());
    let _ = write!(
        s,
        r#"<section id="lost"><h2>Lost events</h2><p class="{class}" data-lost-total="{}">{verdict}</p><table><tr><th>ring full / unreadable</th><th class="num">state</th><th class="num">call</th><th class="num">timewait</th><th class="num">undecodable</th><th class="num">skipped state</th><th class="num">skipped calls</th><th class="num">untracked calls</th><th class="num">timers skipped (upper bound)</th></tr><tr><td></td>{}</tr></table></section>"#,
        l.total,
        [
            l.state,
            l.call,
            l.timewait,
            l.decode_errors,
            l.skipped_state,
            l.skipped_calls,
            l.untracked_calls,
            l.timers_skipped_upper_bound
        ]
        .iter()
        .map(|n| format!(r#"<td class="num">{}</td>"#, words::count(*n)))
        .collect::<String>()
    );
}
