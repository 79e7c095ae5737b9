//! NAT pools under the Pools tab's table, when the traced host does source NAT: the ports of a
//! masquerade/SNAT rule per translated IP and destination (the snapshot's `nat_pools`, fullest
//! first), how many block a new connection, when they run out, conntrack's drops, and the
//! client behind them. The figures are `snapshot::cells::NatPoolCells`'; the text report
//! describes the same pools in words.

use ratatui::{Frame, layout::Rect, text::Line};

use super::lines;
use crate::{
    explain::Severity,
    model::nat::NatPoolStats,
    snapshot::cells::{NatPoolCells, col},
    tui::{
        app::App,
        theme::Theme,
        widgets::{ADDR_MAX, Col, bar, count, flex, header_row, left, right, row, rule, widths},
    },
};

const GAUGE: usize = 8;

fn columns(width: u16) -> Vec<Col> {
    let mut c = vec![flex("DESTINATION", ADDR_MAX)];
    if width >= 100 {
        c.push(left(col::NAT_IP, 15));
    }
    c.extend([
        right(col::IN_USE, if width >= 100 { 13 } else { 9 }),
        right(col::USE, GAUGE as u16 + 5),
        right(col::BLOCKING, 6),
        right(col::ETA, 5),
        right(col::DROP, 6),
    ]);
    if width >= 100 {
        c.push(left("TOP CLIENT", 30));
    }
    c
}

/// The first client and its busiest process: `python3(7) 198.18.1.2 ×15`.
fn client(p: &NatPoolStats) -> String {
    let Some(c) = p.clients.first() else {
        return "—".into();
    };
    let who = c
        .owners
        .first()
        .and_then(|o| o.owner.as_ref())
        .map_or(String::new(), |o| format!("{}({}) ", o.comm, o.pid));
    format!("{who}{} ×{}", c.orig_src_ip, count(u64::from(c.total)))
}

fn pool_row<'a>(
    t: Theme,
    cols: &[Col],
    w: &[usize],
    p: &NatPoolStats,
    sev: Option<Severity>,
) -> Line<'a> {
    let wide = cols.iter().any(|c| c.title == col::NAT_IP);
    let first = if wide { 2 } else { 1 };
    let mut shared = [usize::MAX; 5];
    for (k, width) in w.iter().skip(first).take(5).enumerate() {
        shared[k] = *width;
    }
    let c = NatPoolCells::within(p, shared);
    let style = t.pool(sev);
    let mut cells = vec![(p.dst.to_string(), t.bold())];
    if wide {
        cells.push((p.nat_ip.to_string(), t.plain()));
    }
    cells.extend([
        (c.in_use, t.plain()),
        (
            format!("{} {:>4}", bar(p.effective_utilisation, GAUGE), c.use_pct),
            style,
        ),
        (c.blocking, t.plain()),
        (c.eta, t.plain()),
        (c.drop, t.nonzero_bad(p.drop)),
    ]);
    if wide {
        cells.push((client(p), t.plain()));
    }
    row(cols, w, cells)
}

/// Rows the section wants: title, header, up to three pools; none without NAT pools.
pub fn height(app: &App) -> u16 {
    match app.view.snapshot.nat_pools.len() {
        0 => 0,
        n => 2 + n.min(3) as u16,
    }
}

pub fn section(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let pools = &app.view.snapshot.nat_pools;
    if pools.is_empty() || area.height < 3 {
        return;
    }
    let cols = columns(area.width);
    let w = widths(&cols, area.width);
    let mut v = vec![
        rule(
            format!(
                "NAT pools ({}): masquerade/SNAT ports per translated IP and destination",
                pools.len()
            ),
            area.width,
            t.title(),
            t.dim(),
        ),
        header_row(&cols, &w, t.header()),
    ];
    let findings = &app.view.snapshot.findings;
    for p in pools.iter().take(usize::from(area.height) - 2) {
        // Coloured as the explain engine judged it: the finding about this NAT pool.
        let sev = (findings.iter())
            .find(|f| f.nat_netns == Some(p.netns) && f.dst == Some(p.dst))
            .map(|f| f.severity);
        v.push(pool_row(t, &cols, &w, p, sev));
    }
    lines(frame, area, v);
}
