//! Drill-down into one pool or process: its numbers, the timeline chart of the pool (ports in
//! use by state against capacity, failures per second; for a process, the pool where it has
//! the most sockets), and its sockets with state, age, owner and who closed first.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
};

use super::{chart, lines};
use crate::{
    explain::Severity,
    model::{Closer, PoolStats, ProcessStats, SocketInfo},
    snapshot::cells::{PoolCells, ProcessCells, col},
    tui::{
        app::App,
        data::{Drill, DrillTarget},
        rows::DRILL_SORTS,
        theme::Theme,
        widgets::{
            ADDR_MAX, Col, bar, duration, flex, header_row, left, right, row, rule, states_text,
            widths,
        },
    },
};

/// Chart rows (its plot, failures and time axis): 6, or 12 on a tall terminal.
fn chart_height(area: Rect) -> u16 {
    if area.height >= 40 { 12 } else { 6 }
}

fn columns(width: u16) -> Vec<Col> {
    let mut c = vec![
        flex("LOCAL", ADDR_MAX),
        flex("REMOTE", ADDR_MAX),
        left("STATE", 11),
        right("AGE", 6),
        left("OWNER", 16),
        left("CLOSED BY", 9),
    ];
    if width >= 120 {
        c.push(left("SOCKET", 18));
    }
    c
}

fn title(target: &DrillTarget, d: Option<&Drill>) -> String {
    match target {
        DrillTarget::Pool(k) => format!("Pool {} → {}  netns {}", k.src, k.dst, k.netns),
        DrillTarget::Process { pid } => match d.and_then(|d| d.process.as_ref()) {
            Some(p) => format!("Process {}({pid})", p.process.comm),
            None => format!("Process {pid}"),
        },
    }
}

/// The pool's figures as the pools table shows them (`snapshot::cells`), coloured by the
/// explain engine's severity.
fn pool_line<'a>(t: Theme, p: &PoolStats, sev: Option<Severity>) -> Line<'a> {
    let c = PoolCells::of(p);
    Line::from(vec![
        Span::styled(format!("{} ", col::IN_USE), t.dim()),
        Span::raw(format!("{} ", c.in_use)),
        Span::styled(
            format!("{} {}", bar(p.effective_utilisation, 10), c.use_pct),
            t.pool(sev),
        ),
        Span::styled(format!("  {} ", col::CONN_PER_S), t.dim()),
        Span::raw(c.conn_per_s),
        Span::styled(format!("  {} ", col::ETA), t.dim()),
        Span::raw(c.eta),
        Span::styled("  EADDRNOTAVAIL ", t.dim()),
        Span::styled(c.fail, t.nonzero_bad(p.eaddrnotavail)),
        Span::styled("  ", t.dim()),
        Span::raw(states_text(&p.states)),
    ])
}

fn process_line<'a>(t: Theme, p: &ProcessStats) -> Line<'a> {
    let c = ProcessCells::of(p);
    Line::from(vec![
        Span::styled("sockets ", t.dim()),
        Span::raw(c.sockets),
        Span::styled("  connects ", t.dim()),
        Span::raw(c.connects),
        Span::styled("  failures ", t.dim()),
        Span::styled(c.failures, t.nonzero_bad(p.failures)),
        Span::styled("  parent ", t.dim()),
        Span::raw(p.process.ppid.to_string()),
        Span::styled("  outbound ", t.dim()),
        Span::raw(states_text(&p.outbound_states)),
    ])
}

fn closer(c: Closer) -> &'static str {
    match c {
        Closer::None => "",
        Closer::Local => "this host",
        Closer::Remote => "peer",
        Closer::Reset => "reset",
    }
}

fn socket_row<'a>(t: Theme, cols: &[Col], w: &[usize], s: &SocketInfo) -> Line<'a> {
    let age = if s.age_is_lower_bound {
        format!("≥{}", duration(s.age_s))
    } else {
        duration(s.age_s)
    };
    let owner = s
        .owner
        .as_ref()
        .map_or("unknown".into(), |o| format!("{}({})", o.comm, o.pid));
    let mut cells = vec![
        (s.local.to_string(), t.plain()),
        (s.remote.to_string(), t.plain()),
        (s.state.name().to_string(), t.bold()),
        (age, t.plain()),
        (owner, t.plain()),
        (closer(s.closer).to_string(), t.plain()),
    ];
    if cols.len() > 6 {
        cells.push((s.sk.map_or("—".into(), |sk| format!("{sk:#x}")), t.dim()));
    }
    row(cols, w, cells)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let Some(state) = &app.drill else { return };
    let d = app.drill_data();
    let [head, plot, table] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(chart_height(area)),
        Constraint::Min(0),
    ])
    .areas(area);
    let mut v = vec![rule(
        title(&state.target, d),
        area.width,
        t.title(),
        t.dim(),
    )];
    let Some(d) = d else {
        v.push(Line::styled("  loading…", t.dim()));
        lines(frame, area, v);
        return;
    };
    v.push(match (&state.target, &d.pool, &d.process) {
        (DrillTarget::Pool(_), Some(p), _) => {
            pool_line(t, p, app.view.snapshot.severity_of(&p.key()))
        }
        (DrillTarget::Process { .. }, _, Some(p)) => process_line(t, p),
        _ => Line::styled("gone: no socket left", t.dim()),
    });
    let series = d.history_pool.as_ref().and_then(|k| app.series(k));
    let now = app.view.snapshot.at_ns;
    let of = match (&state.target, d.history_pool) {
        (DrillTarget::Process { .. }, Some(k)) => format!("pool → {}: ", k.dst),
        _ => String::new(),
    };
    let mut spans = vec![Span::styled(format!("in use {of}"), t.dim())];
    spans.extend(chart::legend(t, series, now));
    // connect()'s port search (docs/early-warning.md), when measured.
    if let Some(search) = d.pool.as_ref().and_then(|p| PoolCells::of(p).search) {
        spans.push(Span::styled("  port search: ", t.dim()));
        spans.push(Span::raw(search));
    }
    v.push(Line::from(spans));
    lines(frame, head, v);
    lines(
        frame,
        plot,
        chart::chart(t, series, now, plot.width, plot.height),
    );

    let cols = columns(table.width);
    let w = widths(&cols, table.width);
    let total = d.sockets.len();
    let more = if d.truncated { ", more not listed" } else { "" };
    let mut v = vec![rule(
        format!("Sockets ({total}{more}), by {}", DRILL_SORTS[state.sort]),
        table.width,
        t.title(),
        t.dim(),
    )];
    if total == 0 {
        v.push(Line::styled("  no socket", t.dim()));
    } else {
        v.push(header_row(&cols, &w, t.header()));
        let height = usize::from(table.height).saturating_sub(2);
        let start = state.scroll.min(total.saturating_sub(height));
        for &i in app.drill_rows.iter().skip(start).take(height) {
            v.push(socket_row(t, &cols, &w, &d.sockets[i]));
        }
    }
    lines(frame, table, v);
}
