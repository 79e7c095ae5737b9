//! `portwatch report --html`: one self-contained page for a postmortem — the findings with
//! their evidence and remedies, then a timeline per pool worth showing (ports in use by state
//! against capacity, failures per second, when findings appeared and ended), the sysctls in
//! force and the lost-event count. Inline CSS and SVG only: no script, nothing fetched.
//!
//! It renders the same [`Report`] the JSON and the text come from, plus the [`Timeline`]
//! sampled while the session ran; it derives nothing from the model itself.

mod chart;
mod tables;

use std::fmt::Write as _;

use crate::{
    explain::{Finding, words},
    model::PoolStats,
    report::Report,
    timeline::{FindingKey, FindingSpan, PoolSeries, Timeline},
};

use chart::{Window, severity_class};

const STYLE: &str = include_str!("style.css");

/// At most this many pool charts.
pub const MAX_CHARTS: usize = 8;

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The pools that get a chart: those of the report (most urgent first) that the timeline
/// has samples of and that either a finding names, failed, or got a tenth full.
fn charted<'a>(report: &'a Report, tl: &'a Timeline) -> Vec<(&'a PoolStats, &'a PoolSeries)> {
    report
        .pools
        .iter()
        .filter_map(|p| Some((p, tl.pool(&p.key())?)))
        .filter(|(p, s)| {
            let named = report.findings.iter().any(|f| names_pool(f, p));
            let peak = f64::from(s.peak_in_use()) / f64::from(s.capacity().max(1));
            named || p.eaddrnotavail > 0 || s.failures() > 0 || peak >= 0.1
        })
        .take(MAX_CHARTS)
        .collect()
}

fn names_pool(f: &Finding, p: &PoolStats) -> bool {
    f.netns == p.netns && f.dst == Some(p.dst) && f.src_ip.is_none_or(|ip| ip == p.src)
}

fn span_key_names_pool(k: &FindingKey, p: &PoolStats) -> bool {
    k.netns == p.netns && k.dst == Some(p.dst)
}

/// The whole page.
pub fn render(report: &Report, tl: &Timeline) -> String {
    let ctx = &report.context;
    let win = Window {
        start_ns: ctx.window_start_ns,
        end_ns: ctx.window_end_ns,
    };
    let mut s = String::new();
    let title = format!("portwatch report — {}", ctx.host);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        esc(&title)
    );
    let source = match (&ctx.recording, ctx.source) {
        (Some(file), _) => format!("recording <code>{}</code>", esc(file)),
        (None, _) => "live".to_string(),
    };
    let _ = write!(
        s,
        r#"<header><h1>{}</h1><p class="meta">Kernel <b>{}</b> · {source} · window <b>{}</b>{}</p></header>"#,
        esc(&title),
        esc(&ctx.kernel),
        words::dur(ctx.window_s()),
        ctx.generated_at
            .as_ref()
            .map(|t| format!(" ending <b>{}</b>", esc(t)))
            .unwrap_or_default()
    );

    findings(&mut s, report, tl, win);

    let charts = charted(report, tl);
    let _ = write!(
        s,
        r#"<section id="timelines"><h2>Pools over time</h2><p class="meta">One chart per pool worth showing ({} of {} pools): ports in use by state against the pool's capacity, connect() failures with EADDRNOTAVAIL per second, and the findings while they were present. Sampled once per second.</p>"#,
        charts.len(),
        report.pools.len()
    );
    if charts.is_empty() {
        s.push_str(r#"<p class="none">No pool filled to a tenth of its capacity or failed.</p>"#);
    } else {
        s.push_str(&chart::legend());
    }
    for (p, series) in &charts {
        let spans: Vec<&FindingSpan> = tl
            .spans()
            .iter()
            .filter(|sp| span_key_names_pool(&sp.key, p))
            .collect();
        let secs = |t: Option<u64>| {
            t.map_or(String::new(), |t| {
                format!("{:.0}", t.saturating_sub(win.start_ns) as f64 / 1e9)
            })
        };
        let (full, fail) = (series.first_full_ns(), series.first_failure_ns());
        let episodes: Vec<&crate::model::Episode> = report
            .episodes
            .iter()
            .filter(|e| e.pool == p.key())
            .collect();
        let _ = write!(
            s,
            r#"<figure class="pool-chart" data-netns="{}" data-src="{}" data-dst="{}" data-capacity="{}" data-peak-in-use="{}" data-in-use="{}" data-eaddrnotavail="{}" data-failures-charted="{}" data-first-full-s="{}" data-first-failure-s="{}" data-samples="{}"><figcaption><h3>{} → <code>{}</code> <span class="meta">netns {}</span></h3><div class="facts"><span>capacity <b>{}</b></span><span>peak in use <b>{}</b></span><span>at the end <b>{}</b> ({})</span><span>EADDRNOTAVAIL <b>{}</b></span>{}{}{}</div></figcaption>{}</figure>"#,
            p.netns,
            esc(&p.src.to_string()),
            esc(&p.dst.to_string()),
            p.capacity,
            series.peak_in_use(),
            p.in_use,
            p.eaddrnotavail,
            series.failures(),
            secs(full),
            secs(fail),
            series.samples.len(),
            esc(&p.src.to_string()),
            esc(&p.dst.to_string()),
            p.netns,
            words::count(u64::from(p.capacity)),
            words::count(u64::from(series.peak_in_use())),
            words::count(u64::from(p.in_use)),
            words::pct(p.utilisation),
            words::count(p.eaddrnotavail),
            full.map(|_| format!("<span>full at <b>{} s</b></span>", secs(full)))
                .unwrap_or_default(),
            fail.map(|_| format!("<span>failing from <b>{} s</b></span>", secs(fail)))
                .unwrap_or_default(),
            // At the end of the window (docs/early-warning.md).
            crate::snapshot::cells::port_search(p)
                .map(|t| format!("<span>port search <b>{}</b></span>", esc(&t)))
                .unwrap_or_default(),
            chart::render(series, &spans, &episodes, win)
        );
    }
    s.push_str("</section>");

    tables::failures(&mut s, report);
    tables::sysctls(&mut s, report);
    tables::lost(&mut s, report);
    let _ = writeln!(
        s,
        "<footer>portwatch {} · report schema {} · times are seconds from the window's start \
         (CLOCK_MONOTONIC {} ns)</footer></body></html>",
        env!("CARGO_PKG_VERSION"),
        report.schema_version,
        ctx.window_start_ns
    );
    s
}

fn findings(s: &mut String, report: &Report, tl: &Timeline, win: Window) {
    let _ = write!(
        s,
        r#"<section id="findings"><h2>Findings ({})</h2>"#,
        report.findings.len()
    );
    if report.findings.is_empty() {
        s.push_str(r#"<p class="none">Nothing wrong was found in this window.</p>"#);
    }
    for f in &report.findings {
        let key = FindingKey::of(f);
        let spans: Vec<&FindingSpan> = tl.spans().iter().filter(|sp| sp.key == key).collect();
        let at = |t: u64| t.saturating_sub(win.start_ns) as f64 / 1e9;
        let when = spans
            .iter()
            .map(|sp| {
                if sp.open {
                    format!("from {:.0} s to the end", at(sp.first_ns))
                } else {
                    format!("{:.0}–{:.0} s", at(sp.first_ns), at(sp.last_ns))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut facts = Vec::new();
        if f.pid.is_some() || f.comm.is_some() {
            facts.push(format!(
                "process <b>{}</b>",
                esc(&words::who(
                    f.comm.as_deref(),
                    f.pid,
                    f.ppid,
                    f.process_count
                ))
            ));
        }
        if let Some(dst) = &f.dst {
            facts.push(format!(
                "toward <b><code>{}</code></b>",
                esc(&dst.to_string())
            ));
        }
        if let (Some(u), Some(c)) = (f.in_use, f.capacity) {
            facts.push(format!(
                "in use <b>{}</b> of <b>{}</b>",
                words::n(u),
                words::n(c)
            ));
        }
        if let Some(r) = f.rate_per_s {
            facts.push(format!("<b>{}</b>", esc(&words::rate(r))));
        }
        for (errno, n) in &f.errors {
            facts.push(format!("{} <b>{}</b>", esc(errno), words::count(*n)));
        }
        if !when.is_empty() {
            facts.push(format!("present <b>{when}</b>"));
        }
        let _ = write!(
            s,
            r#"<article class="finding {}" data-cause="{}" data-severity="{}"><h3><span class="sev">{}</span>{}</h3><p class="evidence">{}</p><div class="facts">{}</div><ol class="remedies">"#,
            severity_class(f.severity),
            esc(&serde_plain(&f.cause)),
            esc(&serde_plain(&f.severity)),
            esc(&serde_plain(&f.severity)),
            esc(&f.title),
            esc(&f.evidence),
            facts
                .into_iter()
                .map(|x| format!("<span>{x}</span>"))
                .collect::<String>()
        );
        for r in &f.remedies {
            let _ = write!(
                s,
                r#"<li class="{}" data-remedy="{}"><b>{}</b>{} <span class="why">{}</span>{}</li>"#,
                if r.helps { "helps" } else { "nohelp" },
                esc(&r.id),
                esc(&r.action),
                if r.helps { "" } else { " — would not help:" },
                esc(&r.why),
                r.source
                    .as_deref()
                    .map(|u| format!(r#" <a class="source" href="{0}">{0}</a>"#, esc(u)))
                    .unwrap_or_default()
            );
        }
        s.push_str("</ol></article>");
    }
    s.push_str("</section>");
}

/// A unit enum's serde name (`time_wait_churn`, `critical`).
fn serde_plain<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
