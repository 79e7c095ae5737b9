//! The overview: ranked findings, one line each, the selected one with its evidence and first
//! remedy (all of them, with why, when expanded), then the most urgent pools.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
};

use super::{empty, failures, lines, pools, scroll_start};
use crate::{
    explain::finding::{Finding, Remedy},
    tui::{
        app::App,
        rows::Tab,
        theme::{Theme, severity_label},
        widgets::{count, duration, eta, rate, rule, wrap},
    },
};

/// Finding rows shown at most (more scroll).
const MAX_ROWS: usize = 5;
/// Rows the pools section keeps at least (title, header, one pool).
const POOLS_MIN: u16 = 3;

pub fn overview(frame: &mut Frame, area: Rect, app: &App) {
    // Expanded, the finding may take the whole area; otherwise the pools keep a few rows.
    let max_h = if app.expanded {
        area.height
    } else {
        area.height.saturating_sub(POOLS_MIN)
    };
    let list = findings_lines(app, area.width, max_h);
    let h = (list.len() as u16).min(area.height);
    let [top, bottom] = Layout::vertical([Constraint::Length(h), Constraint::Min(0)]).areas(area);
    lines(frame, top, list);
    // Pools as tall as they need, recent failures below when there is room.
    let want = pools::section_height(app);
    let fail_h = if app.view.snapshot.failures.groups.is_empty()
        || bottom.height < want + failures::MIN_HEIGHT
    {
        0
    } else {
        bottom.height - want
    };
    let [pools_area, fail_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(fail_h)]).areas(bottom);
    pools::section(frame, pools_area, app, "Pools, most urgent first");
    if fail_h > 0 {
        failures::recent(frame, fail_area, app);
    }
}

/// Who: `curl(4242)`, or `curl ×12` for a group of short-lived processes.
fn who(f: &Finding) -> Option<String> {
    let comm = f.comm.as_deref()?;
    Some(match (f.process_count, f.pid) {
        (n, _) if n > 1 => format!("{comm} ×{n}"),
        (_, Some(pid)) => format!("{comm}({pid})"),
        _ => comm.to_string(),
    })
}

/// One line: severity, cause, process → destination, usage, time left.
fn summary_line<'a>(t: Theme, f: &Finding, selected: bool) -> Line<'a> {
    let mut spans = vec![
        Span::styled(if selected { "▸" } else { " " }, t.bold()),
        Span::styled(
            format!("{:<4} ", severity_label(f.severity)),
            t.severity(f.severity),
        ),
        Span::styled(format!("{:<16}", f.cause.id()), t.bold()),
    ];
    if let Some(w) = who(f) {
        spans.push(Span::raw(format!(" {w}")));
    }
    if let Some(d) = &f.dst {
        spans.push(Span::styled(" → ", t.dim()));
        spans.push(Span::raw(d.to_string()));
    }
    if let (Some(u), Some(c)) = (f.in_use, f.capacity) {
        let full = c > 0 && u >= c;
        spans.push(Span::styled(
            format!("  {}/{} ports", count(u64::from(u)), count(u64::from(c))),
            if full { t.bad() } else { t.plain() },
        ));
    }
    // A past exhaustion episode: its ports are those it held when connect() failed.
    if let Some(ago) = f.episode.as_ref().and_then(|e| e.ended_s_ago) {
        spans.push(Span::styled(
            format!("  past: ended {} ago", duration(ago)),
            t.dim(),
        ));
    }
    match f.eta_s {
        Some(e) if e <= 0.0 => spans.push(Span::styled("  OUT", t.bad())),
        Some(e) => spans.push(Span::styled(format!("  out in {}", eta(Some(e))), t.warn())),
        None => {}
    }
    if !selected {
        // The selected finding shows its evidence below; the others get a glimpse of it.
        spans.push(Span::styled(format!("  {}", f.evidence), t.dim()));
    }
    let mut line = Line::from(spans);
    if selected {
        line = line.style(t.selected());
    }
    line
}

fn first_fix(f: &Finding) -> Option<&Remedy> {
    f.remedies.iter().find(|r| r.helps)
}

/// Collapsed: evidence and the first remedy that helps, one line each.
fn brief<'a>(t: Theme, f: &Finding) -> Vec<Line<'a>> {
    let mut v = vec![Line::from(vec![
        Span::raw("      "),
        Span::styled(f.evidence.clone(), t.plain()),
    ])];
    v.push(match first_fix(f) {
        Some(r) => Line::from(vec![
            Span::styled("      Do this: ", t.ok().patch(t.bold())),
            Span::raw(r.action.clone()),
        ]),
        None => Line::styled("      No remedy known for this yet.", t.dim()),
    });
    v
}

/// Expanded: the facts, the evidence, every remedy with why, wrapped.
fn detail<'a>(t: Theme, f: &Finding, width: u16) -> Vec<Line<'a>> {
    const IND: usize = 6;
    let w = usize::from(width).saturating_sub(IND + 2);
    let pad = || Span::raw(" ".repeat(IND));
    let mut v = Vec::new();
    let mut facts = Vec::new();
    if let Some(pid) = f.pid {
        facts.push(format!("pid {pid}"));
    }
    if f.process_count > 1 {
        facts.push(format!("{} processes", f.process_count));
    }
    if let Some(src) = &f.src_ip {
        facts.push(format!("from {src}"));
    }
    facts.push(format!("netns {}", f.netns));
    if let Some(r) = f.rate_per_s {
        facts.push(format!("{}/s new", rate(r)));
    }
    let states: Vec<String> = f.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let errors: Vec<String> = f.errors.iter().map(|(e, n)| format!("{e} ×{n}")).collect();
    for line in wrap(&facts.join(" · "), w) {
        v.push(Line::from(vec![pad(), Span::styled(line, t.dim())]));
    }
    if !states.is_empty() || !errors.is_empty() {
        let mut spans = vec![pad(), Span::raw(states.join("  "))];
        if !errors.is_empty() {
            spans.push(Span::styled(format!("  {}", errors.join("  ")), t.bad()));
        }
        v.push(Line::from(spans));
    }
    for line in wrap(&f.evidence, w) {
        v.push(Line::from(vec![pad(), Span::raw(line)]));
    }
    for (helps, label, style) in [
        (true, "Do this", t.ok().patch(t.bold())),
        (false, "Won't help", t.warn().patch(t.bold())),
    ] {
        let rs: Vec<&Remedy> = f.remedies.iter().filter(|r| r.helps == helps).collect();
        if rs.is_empty() {
            continue;
        }
        v.push(Line::from(vec![
            pad(),
            Span::styled(format!("{label}:"), style),
        ]));
        let mark = if helps { "✔ " } else { "✘ " };
        for r in rs {
            let mut text = format!("{} — {}", r.action, r.why);
            if let Some(src) = &r.source {
                text.push_str(&format!(" See {src}"));
            }
            for (i, line) in wrap(&text, w.saturating_sub(2)).into_iter().enumerate() {
                let lead = if i == 0 { mark } else { "  " };
                v.push(Line::from(vec![
                    pad(),
                    Span::styled(lead, style),
                    Span::raw(line),
                ]));
            }
        }
    }
    v
}

/// The findings section: title, visible rows, the selected one's brief or detail.
fn findings_lines<'a>(app: &App, width: u16, max_h: u16) -> Vec<Line<'a>> {
    let t = app.theme;
    let rows = &app.rows.findings;
    let title = match (rows.len(), app.view.snapshot.findings.len()) {
        (0, 0) => "Findings".to_string(),
        (n, _) if app.expanded => format!(
            "Finding {} of {n}: Esc collapses, ↑↓ the others",
            app.sel[Tab::Overview.index()] + 1
        ),
        (n, total) if n == total => format!("Findings ({n})"),
        (n, total) => format!("Findings ({n} of {total})"),
    };
    let mut v = vec![rule(title, width, t.title(), t.dim())];
    if rows.is_empty() {
        v.push(empty(
            app,
            if app.view.snapshot.findings.is_empty() {
                "No findings: no pool under pressure, no failed connect() or bind()."
            } else {
                "No finding matches the filter."
            },
            width,
        ));
        return v;
    }
    let sel = app.sel[Tab::Overview.index()];
    // Expanded: the selected finding alone, with all the room.
    let (start, shown) = if app.expanded {
        (sel, 1)
    } else {
        let n = rows.len().min(MAX_ROWS);
        (scroll_start(sel, n), n)
    };
    let hidden = if app.expanded { 0 } else { rows.len() - shown };
    let budget = usize::from(max_h).saturating_sub(1 + shown + usize::from(hidden > 0));
    for (k, &i) in rows.iter().enumerate().skip(start).take(shown) {
        let f = &app.view.snapshot.findings[i];
        v.push(summary_line(t, f, k == sel));
        if k == sel {
            let mut more = if app.expanded {
                detail(t, f, width)
            } else {
                brief(t, f)
            };
            if more.len() > budget.max(2) {
                let cut = more.len() - budget.max(2) + 1;
                more.truncate(budget.max(2) - 1);
                more.push(Line::styled(
                    format!("      … {cut} more lines on a taller terminal"),
                    t.dim(),
                ));
            }
            v.extend(more);
        }
    }
    if hidden > 0 {
        v.push(Line::styled(format!("      … {hidden} more (↑↓)"), t.dim()));
    }
    v
}
