//! The report for people: the diagnosis first (each finding as a senior engineer would state
//! it: what, who and where, the evidence, what to do, what would not help and why), then the
//! tables that back it. Plain text, at most [`WIDTH`] columns, no colour.

use std::fmt::Write as _;

use super::{
    Report, Source, tables,
    wrap::{WIDTH, wrap},
};
use crate::explain::{
    Cause, Finding, Severity,
    words::{count, dur, n, plural, rate},
};

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    header(&mut out, r);
    for (i, f) in r.snapshot.findings.iter().enumerate() {
        out.push('\n');
        finding(&mut out, i + 1, f);
    }
    tables::render(&mut out, r);
    super::nat::render(&mut out, r);
    out
}

fn header(out: &mut String, r: &Report) {
    let c = &r.context;
    let source = match (c.source, &c.recording) {
        (Source::Live, _) => "live".to_string(),
        (Source::Recording, Some(f)) => format!("recording {f}"),
        (Source::Recording, None) => "recording".to_string(),
    };
    let end = c
        .generated_at
        .as_ref()
        .map(|t| format!(" ending {t}"))
        .unwrap_or_default();
    let head = format!(
        "portwatch report: host {}, kernel {}, {source}, window {}{end}",
        c.host,
        c.kernel,
        dur(c.window_s())
    );
    wrap(out, "", "  ", &head);
    out.push_str(&"=".repeat(WIDTH.min(head.chars().count())));
    out.push('\n');
    for w in &r.snapshot.warnings {
        wrap(out, "warning: ", "  ", w);
    }
    let by = |s: Severity| {
        r.snapshot
            .findings
            .iter()
            .filter(|f| f.severity == s)
            .count() as u64
    };
    let summary = if r.snapshot.findings.is_empty() {
        "No findings: no pool is failing or heading there, and nothing else looks wrong."
            .to_string()
    } else {
        let parts: Vec<String> = [
            (Severity::Critical, "critical"),
            (Severity::Warning, "warning"),
            (Severity::Info, "info"),
        ]
        .iter()
        .filter(|(s, _)| by(*s) > 0)
        .map(|(s, w)| format!("{} {w}", by(*s)))
        .collect();
        format!(
            "{}: {}.",
            plural(r.snapshot.findings.len() as u64, "finding", "findings"),
            parts.join(", ")
        )
    };
    wrap(out, "", "", &summary);
    wrap(out, "", "", &r.snapshot.lost_events.verdict());
    for s in r.snapshot.sysctls.iter().filter(|s| s.assumed) {
        wrap(
            out,
            "",
            "",
            &format!(
                "Sysctls of netns {} were not read: kernel defaults assumed.",
                s.netns
            ),
        );
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// One finding: headline, who/where, the numbers, the evidence, the remedies.
pub fn finding(out: &mut String, rank: usize, f: &Finding) {
    let first = format!("{rank}. {:<9} ", severity(f.severity));
    let pad = " ".repeat(first.chars().count());
    wrap(out, &first, &pad, &f.title);
    let label = |l: &str| format!("   {l:<10}");
    let cont = " ".repeat(13);
    let mut where_ = Vec::new();
    let has_who = f.comm.is_some() || f.cause != Cause::Config;
    if has_who {
        where_.push(f.who());
    }
    where_.push(format!("netns {}", f.netns));
    match (&f.src_ip, &f.dst) {
        (Some(s), Some(d)) => where_.push(format!("{s} → {d}")),
        (None, Some(d)) => where_.push(d.to_string()),
        _ => {}
    }
    let who = if has_who { "Who:" } else { "Where:" };
    wrap(out, &label(who), &cont, &where_.join(", "));
    let mut load = String::new();
    if let (Some(u), Some(c)) = (f.in_use, f.capacity) {
        let pct = if c > 0 {
            format!(" ({:.0}%)", f64::from(u) * 100.0 / f64::from(c))
        } else {
            String::new()
        };
        let _ = write!(load, "{} of {}{pct}", n(u), n(c));
    }
    let states: Vec<String> = f
        .states
        .iter()
        .map(|(s, c)| format!("{s} {}", n(*c)))
        .collect();
    if !states.is_empty() {
        if !load.is_empty() {
            load.push_str(" — ");
        }
        load.push_str(&states.join(", "));
    }
    if !load.is_empty() {
        wrap(out, &label("In use:"), &cont, &load);
    }
    let mut pace = Vec::new();
    if let Some(r) = f.rate_per_s {
        let what = match f.cause {
            Cause::CloseWaitLeak => "new CLOSE_WAIT/s",
            _ => "connection attempts/s",
        };
        pace.push(format!("{} {what}", rate(r)));
    }
    match f.eta_s {
        Some(t) if t <= 0.0 => pace.push("out of ports now".to_string()),
        Some(t) => pace.push(format!("out of ports in ~{}", dur(t))),
        None if f.in_use.is_some()
            && matches!(f.cause, Cause::TimeWaitChurn | Cause::Concurrency) =>
        {
            pace.push("not running out at this rate".to_string())
        }
        None => {}
    }
    if !pace.is_empty() {
        wrap(out, &label("Pace:"), &cont, &pace.join("; "));
    }
    if !f.errors.is_empty() {
        let e: Vec<String> = f
            .errors
            .iter()
            .map(|(e, c)| format!("{e} ×{}", count(*c)))
            .collect();
        wrap(out, &label("Errors:"), &cont, &e.join(", "));
    }
    if let Some(e) = &f.episode {
        wrap(out, &label("Episode:"), &cont, &episode(e));
    }
    wrap(out, &label("Evidence:"), &cont, &f.evidence);
    if f.helping().next().is_some() {
        out.push_str("   Do this:\n");
        for (i, r) in f.helping().enumerate() {
            let num = format!("     {}. ", i + 1);
            let pad = " ".repeat(num.chars().count());
            wrap(out, &num, &pad, &r.action);
            wrap(out, &pad, &pad, &r.why);
            if let Some(src) = &r.source {
                wrap(out, &pad, &pad, &format!("See {src}"));
            }
        }
    }
    if f.not_helping().next().is_some() {
        out.push_str("   Won't help:\n");
        for r in f.not_helping() {
            wrap(
                out,
                "     - ",
                "       ",
                &format!("{}: {}", r.action, r.why),
            );
        }
    }
}

/// When the episode ran and what its cause was read from.
fn episode(e: &crate::explain::EpisodeRef) -> String {
    let failed = match e.failures {
        0 => "no connect() failed".to_string(),
        k => format!(
            "{} with EADDRNOTAVAIL",
            plural(k, "connect() failed", "connects failed")
        ),
    };
    let held: Vec<String> = e
        .composition
        .iter()
        .map(|(s, c)| format!("{s} {}", n(*c)))
        .collect();
    let when = match e.ended_s_ago {
        Some(ago) => format!(
            "past: ended {} before this report, after {}",
            dur(ago),
            dur(e.duration_s)
        ),
        None => format!("ongoing for {}", dur(e.duration_s)),
    };
    let read = if e.composition_s_ago < 1.0 {
        format!("the cause is read from the pool now ({})", held.join(", "))
    } else {
        format!(
            "the cause is read from the pool as it was {} before this report ({})",
            dur(e.composition_s_ago),
            held.join(", ")
        )
    };
    format!("{when}; {failed}; {read}")
}
