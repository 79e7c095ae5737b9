//! Pools: destination, source, ports in use, a gauge of the ports that block `connect()`
//! against capacity, states, connection attempts per second, time to exhaustion, failures.
//! Most urgent first, coloured by the explain engine's severity. The shared columns'
//! names and figures are `snapshot::cells`' (the text report prints the same). Below, the
//! selected pool's details and its timeline chart (`chart`); NAT pools, when there are
//! some, between the two (`nat`).

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
};

use super::{chart, empty, lines, nat, scroll_start};
use crate::{
    event::TcpState,
    explain::Severity,
    model::PoolStats,
    snapshot::cells::{PoolCells, col},
    tui::{
        app::App,
        rows::Tab,
        theme::Theme,
        widgets::{
            ADDR_MAX, Col, bar, count, flex, header_row, left, rate, right, row, rule, widths,
        },
    },
};

const GAUGE: usize = 8;

fn columns(width: u16) -> Vec<Col> {
    let mut c = vec![flex("DESTINATION", ADDR_MAX)];
    if width >= 100 {
        c.push(left("SOURCE", 15));
    }
    // `28,232/28,232` needs 13; a narrow terminal keeps its room for the destination.
    let in_use = if width >= 100 { 13 } else { 9 };
    c.extend([
        right(col::IN_USE, in_use),
        right(col::USE, GAUGE as u16 + 5),
        // `28,232` needs 6; at 80 columns a count from 10,000 reads `12k`.
        right(col::ESTAB, if width >= 100 { 6 } else { 5 }),
        right(col::TIME_WAIT, 6),
        right(col::OTHER, if width >= 100 { 6 } else { 5 }),
        right(col::CONN_PER_S, 6),
        right(col::ETA, 5),
        right(col::FAIL, 6),
    ]);
    if width >= 130 {
        c.push(left("TOP OWNER", 22));
    }
    c
}

fn owner_text(p: &PoolStats) -> String {
    match p.owners.first() {
        Some(o) => match &o.owner {
            Some(r) => format!("{}({}) {}", r.comm, r.pid, count(u64::from(o.total))),
            None => format!("unknown {}", count(u64::from(o.total))),
        },
        None => "—".into(),
    }
}

fn pool_row<'a>(
    t: Theme,
    cols: &[Col],
    w: &[usize],
    p: &PoolStats,
    sev: Option<Severity>,
) -> Line<'a> {
    // The shared columns' widths, from IN USE on: figures that do not fit get shorter.
    let first = cols
        .iter()
        .position(|c| c.title == col::IN_USE)
        .unwrap_or(0);
    let mut shared = [usize::MAX; 8];
    for (k, width) in w.iter().skip(first).take(8).enumerate() {
        shared[k] = *width;
    }
    let c = PoolCells::within(p, shared);
    let util = t.pool(sev);
    // An exhaustion time is as urgent as the explain engine judged the pool.
    let eta_style = match p.time_to_exhaustion_s {
        Some(_) => util,
        None => t.plain(),
    };
    let tw_style = if p.states.get(TcpState::TimeWait) > 0 && !p.tw_reusable {
        t.warn()
    } else {
        t.plain()
    };
    let mut cells = vec![(p.dst.to_string(), t.bold())];
    if cols.iter().any(|c| c.title == "SOURCE") {
        cells.push((p.src.to_string(), t.plain()));
    }
    cells.extend([
        (c.in_use, t.plain()),
        (
            format!("{} {:>4}", bar(p.effective_utilisation, GAUGE), c.use_pct),
            util,
        ),
        (c.estab, t.plain()),
        (c.time_wait, tw_style),
        (c.other, t.plain()),
        (c.conn_per_s, t.plain()),
        (c.eta, eta_style),
        (c.fail, t.nonzero_bad(p.eaddrnotavail)),
    ]);
    if cols.iter().any(|c| c.title == "TOP OWNER") {
        cells.push((owner_text(p), t.plain()));
    }
    row(cols, w, cells)
}

/// The pools table in `area`; `sel` highlights (and scrolls to) one row.
fn table(frame: &mut Frame, area: Rect, app: &App, title: &str, sel: Option<usize>) {
    let t = app.theme;
    let pools = &app.view.snapshot.pools;
    let rows = &app.rows.pools;
    let cols = columns(area.width);
    let w = widths(&cols, area.width);
    let mut v = vec![rule(
        format!("{title} ({})", rows.len()),
        area.width,
        t.title(),
        t.dim(),
    )];
    if rows.is_empty() {
        v.push(empty(
            app,
            if pools.is_empty() {
                "No outbound connection seen yet."
            } else {
                "No pool matches the filter."
            },
            area.width,
        ));
        lines(frame, area, v);
        return;
    }
    v.push(header_row(&cols, &w, t.header()));
    let height = usize::from(area.height).saturating_sub(2);
    let start = sel.map_or(0, |s| scroll_start(s, height));
    for (k, &i) in rows.iter().enumerate().skip(start).take(height) {
        let sev = app.view.snapshot.severity_of_pool(i);
        let mut line = pool_row(t, &cols, &w, &pools[i], sev);
        if Some(k) == sel {
            line = line.style(t.selected());
        }
        v.push(line);
    }
    lines(frame, area, v);
}

/// Rows the overview's pools section needs.
pub fn section_height(app: &App) -> u16 {
    2 + app.rows.pools.len().max(1) as u16
}

/// The overview's pools: no selection; nothing when not even one row fits.
pub fn section(frame: &mut Frame, area: Rect, app: &App, title: &str) {
    if area.height < 3 {
        return;
    }
    table(frame, area, app, title, None);
}

/// Chart rows (plot, failures, time axis): 6, or 14 on a tall terminal.
fn chart_height(area: Rect) -> u16 {
    if area.height >= 40 { 14 } else { 6 }
}

pub fn tab(frame: &mut Frame, area: Rect, app: &App) {
    let [list, info, legend, plot] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(5),
        Constraint::Length(1),
        Constraint::Length(chart_height(area)),
    ])
    .areas(area);
    let sel = app.sel[Tab::Pools.index()];
    let [list, nat_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(nat::height(app))]).areas(list);
    table(frame, list, app, "Pools", Some(sel));
    nat::section(frame, nat_area, app);
    if let Some(p) = app.selected_pool() {
        let t = app.theme;
        lines(frame, info, pool_detail(t, p, info.width));
        let series = app.series(&p.key());
        let now = app.view.snapshot.at_ns;
        let mut spans = vec![Span::styled("in use ", t.dim())];
        spans.extend(chart::legend(t, series, now));
        lines(frame, legend, vec![Line::from(spans)]);
        lines(
            frame,
            plot,
            chart::chart(t, series, now, plot.width, plot.height),
        );
    }
}

/// The selected pool: owners, how connections end, rates, what blocks.
fn pool_detail<'a>(t: Theme, p: &PoolStats, width: u16) -> Vec<Line<'a>> {
    let owners: Vec<String> = p
        .owners
        .iter()
        .map(|o| match &o.owner {
            Some(r) => format!("{}({}) {}", r.comm, r.pid, count(u64::from(o.total))),
            None => format!("unknown {}", count(u64::from(o.total))),
        })
        .collect();
    let c = &p.closes;
    let r = &p.rates;
    let blocking = if p.tw_reusable {
        format!(
            "tcp_tw_reuse applies: {} of {} in use block connect()",
            count(u64::from(p.blocking)),
            count(u64::from(p.in_use))
        )
    } else {
        "TIME_WAIT blocks connect() here (tcp_tw_reuse does not apply)".into()
    };
    vec![
        rule(format!("{} → {}", p.src, p.dst), width, t.title(), t.dim()),
        Line::from(vec![
            Span::styled("owners ", t.dim()),
            Span::raw(if owners.is_empty() {
                "—".into()
            } else {
                owners.join("  ")
            }),
        ]),
        Line::from(vec![
            Span::styled("per second ", t.dim()),
            Span::raw(format!(
                "attempts {}  new {}  released {}  failed {}",
                rate(r.attempts_per_s),
                rate(r.new_per_s),
                rate(r.released_per_s),
                rate(r.failed_per_s)
            )),
            Span::styled(format!("  (last {} s)", r.window_s), t.dim()),
        ]),
        Line::from(vec![
            Span::styled("closed first by ", t.dim()),
            Span::raw(format!(
                "this host {}  peer {}  reset {}",
                count(c.local_first),
                count(c.remote_first),
                count(c.reset)
            )),
            Span::styled("  TIME_WAIT ", t.dim()),
            Span::raw(format!(
                "started {}  expired {}",
                count(c.tw_started),
                count(c.tw_expired)
            )),
        ]),
        Line::styled(blocking, t.dim()),
    ]
}
