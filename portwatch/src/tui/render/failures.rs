//! Failures: totals by errno, where they concentrate, and the failed `connect()`/`bind()`
//! calls grouped by repeat (errno, call, command, address) with count, first and last seen,
//! the most recently seen first. The groups and their cells are the snapshot's
//! (`snapshot::cells::FailureGroupCells`), as the text report prints them.

use ratatui::{
    Frame,
    layout::Rect,
    style::Style,
    text::{Line, Span},
};

use super::{empty, lines, scroll_start};
use crate::{
    event::Errno,
    snapshot::cells::{FailureGroupCells, call, col},
    tui::{
        app::App,
        rows::Tab,
        theme::Theme,
        widgets::{ADDR_MAX, Col, count, flex, header_row, left, right, row, rule, widths},
    },
};

fn columns(width: u16) -> Vec<Col> {
    let mut c = vec![
        right(col::LAST, 5),
        right(col::FIRST, 5),
        right(col::COUNT, 6),
        // `EADDRNOTAVAIL` is 13; a wide terminal leaves air after it.
        left(col::ERROR, if width >= 100 { 14 } else { 13 }),
        left(col::CALL, 7),
        // `3013`, `3013+2` (two other processes).
        right(col::PID, 7),
        left(col::COMMAND, if width >= 100 { 15 } else { 12 }),
        flex(col::ADDRESS, ADDR_MAX),
    ];
    if width >= 100 {
        c.push(left("SOURCE", 15));
    }
    c
}

pub fn errno_style(t: Theme, e: Errno) -> Style {
    match e.0 {
        libc::EADDRNOTAVAIL => t.bad(),
        libc::EADDRINUSE => t.warn(),
        _ => t.plain(),
    }
}

pub fn tab(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let f = &app.view.snapshot.failures;
    let mut v = vec![rule(
        format!("Failed connect() and bind() ({} in total)", count(f.total)),
        area.width,
        t.title(),
        t.dim(),
    )];
    if f.total == 0 {
        v.push(empty(
            app,
            "No failed connect() or bind() seen.",
            area.width,
        ));
        lines(frame, area, v);
        return;
    }
    let mut by = vec![Span::styled("by error  ", t.dim())];
    for e in &f.by_errno {
        by.push(Span::styled(e.errno.name(), errno_style(t, e.errno)));
        by.push(Span::raw(format!(" {}   ", count(e.count.count))));
    }
    v.push(Line::from(by));
    let mut top = vec![Span::styled("worst    ", t.dim())];
    if let Some(d) = f.by_destination.first() {
        top.push(Span::raw(format!(
            "{} {} {} ×{}",
            call(d.call),
            d.addr,
            d.errno,
            count(d.count.count)
        )));
    }
    if let Some(p) = f.by_process.first() {
        top.push(Span::styled("  ·  ", t.dim()));
        top.push(Span::raw(format!(
            "{}({}) {} {} ×{}",
            p.comm,
            p.pid,
            call(p.call),
            p.errno,
            count(p.count.count)
        )));
    }
    v.push(Line::from(top));

    v.extend(log(
        app,
        area.width,
        usize::from(area.height).saturating_sub(v.len()),
        Some(app.sel[Tab::Failures.index()]),
    ));
    lines(frame, area, v);
}

/// Rows the overview's failure section needs at least (title, header, one group).
pub const MIN_HEIGHT: u16 = 3;

/// The overview's failure groups, the most recently seen first, no selection.
pub fn recent(frame: &mut Frame, area: Rect, app: &App) {
    let v = log(app, area.width, usize::from(area.height), None);
    lines(frame, area, v);
}

/// The failure groups in `height` rows: title, header, rows.
fn log<'a>(app: &App, width: u16, height: usize, sel: Option<usize>) -> Vec<Line<'a>> {
    let t = app.theme;
    let f = &app.view.snapshot.failures;
    let cols = columns(width);
    let w = widths(&cols, width);
    let rows = &app.rows.failures;
    let order = Tab::Failures.sorts()[app.sorts[Tab::Failures.index()]];
    let title = match sel {
        Some(_) => format!("Repeats, {order} ({})", rows.len()),
        None => format!("Recent failures, repeats grouped ({})", rows.len()),
    };
    let mut v = vec![rule(title, width, t.title(), t.dim())];
    if rows.is_empty() {
        v.push(empty(app, "No failure matches the filter.", width));
        return v;
    }
    v.push(header_row(&cols, &w, t.header()));
    let height = height.saturating_sub(2);
    let start = sel.map_or(0, |s| scroll_start(s, height));
    let now = app.view.snapshot.at_ns;
    for (k, &i) in rows.iter().enumerate().skip(start).take(height) {
        let r = &f.groups[i];
        let c = FailureGroupCells::of(r, now);
        let mut cells = vec![
            (c.last, t.plain()),
            (c.first, t.dim()),
            (c.count, t.bold()),
            (c.errno, errno_style(t, r.errno)),
            (c.call, t.plain()),
            (c.pid, t.plain()),
            (c.comm, t.bold()),
            (c.addr, t.plain()),
        ];
        if cols.len() > 8 {
            cells.push((r.src.map_or("—".into(), |s| s.to_string()), t.plain()));
        }
        let mut line = row(&cols, &w, cells);
        if Some(k) == sel {
            line = line.style(t.selected());
        }
        v.push(line);
    }
    v
}
