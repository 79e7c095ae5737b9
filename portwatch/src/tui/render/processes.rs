//! Processes (or groups of short-lived ones by command + parent) with their outbound sockets
//! by state, and the selected one's destinations.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
};

use super::{empty, lines, scroll_start};
use crate::{
    model::{ProcessGroupStats, ProcessStats},
    snapshot::cells::{GroupCells, ProcessCells, col, n},
    tui::{
        app::App,
        rows::Tab,
        theme::Theme,
        widgets::{
            ADDR_MAX, Col, count, est_tw_other, flex, header_row, left, right, row, rule, widths,
        },
    },
};

/// The process table's columns, with a WHERE column (container, pod or unit) when some
/// process lives in one.
fn proc_cols(located: bool) -> Vec<Col> {
    let mut c = vec![right(col::PID, 7), left(col::COMMAND, 15)];
    if located {
        c.push(flex("WHERE", 32));
    }
    c.extend(COUNT_COLS);
    c.push(flex(col::TOP_DESTINATION, ADDR_MAX + 8));
    c
}

/// What a process and a group of them both count: sockets, connects, failures, outbound
/// sockets by state.
const COUNT_COLS: [Col; 6] = [
    right(col::SOCKETS, 6),
    right(col::CONNECTS, 6),
    right(col::FAIL, 5),
    right(col::ESTAB, 5),
    right(col::TIME_WAIT, 6),
    right(col::OTHER, 5),
];

/// Where a process lives, for the WHERE column: `container web`, `api in pod shop/web-1`,
/// `nginx.service`.
fn where_label(p: &ProcessStats) -> Option<String> {
    p.process.workload.as_ref().and_then(|w| w.label())
}

fn group_cols() -> Vec<Col> {
    let mut c = vec![
        flex(col::COMMAND, 16),
        right(col::PARENT, 7),
        right(col::PROCESSES, 6),
    ];
    c.extend(COUNT_COLS);
    c
}

const DEST_COLS: [Col; 6] = [
    flex("DESTINATION", ADDR_MAX),
    left("SOURCE", 15),
    right(col::ESTAB, 6),
    right(col::TIME_WAIT, 6),
    right(col::OTHER, 6),
    right(col::TOTAL, 6),
];

fn proc_row<'a>(t: Theme, cols: &[Col], w: &[usize], p: &ProcessStats) -> Line<'a> {
    let (est, tw, other) = est_tw_other(&p.outbound_states);
    let c = ProcessCells::of(p);
    let mut cells = vec![(c.pid, t.plain()), (c.comm, t.bold())];
    if cols.iter().any(|c| c.title == "WHERE") {
        cells.push((where_label(p).unwrap_or_else(|| "—".into()), t.plain()));
    }
    cells.extend([
        (c.sockets, t.plain()),
        (c.connects, t.plain()),
        (c.failures, t.nonzero_bad(p.failures)),
        (n(est), t.plain()),
        (n(tw), t.plain()),
        (n(other), t.plain()),
        (c.top, t.plain()),
    ]);
    row(cols, w, cells)
}

fn group_row<'a>(t: Theme, cols: &[Col], w: &[usize], g: &ProcessGroupStats) -> Line<'a> {
    let (est, tw, other) = est_tw_other(&g.outbound_states);
    let c = GroupCells::of(g);
    row(
        cols,
        w,
        vec![
            (c.comm, t.bold()),
            (c.ppid, t.plain()),
            (c.processes, t.plain()),
            (c.sockets, t.plain()),
            (c.connects, t.plain()),
            (c.failures, t.nonzero_bad(g.failures)),
            (n(est), t.plain()),
            (n(tw), t.plain()),
            (n(other), t.plain()),
        ],
    )
}

pub fn tab(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let detail_h = match (app.grouped, app.selected_process()) {
        (false, Some(p)) => {
            (p.outbound.len().min(6) as u16 + 2 + u16::from(!p.listening.is_empty()))
                .min(area.height / 2)
        }
        _ => 0,
    };
    let [list, info] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(detail_h)]).areas(area);
    let sel = app.sel[Tab::Processes.index()];
    let (cols, n, title): (Vec<Col>, usize, String) = if app.grouped {
        (
            group_cols(),
            app.rows.groups.len(),
            "Processes by command and parent".into(),
        )
    } else {
        let located = app
            .rows
            .processes
            .iter()
            .any(|&i| where_label(&app.view.snapshot.processes[i]).is_some());
        (
            proc_cols(located),
            app.rows.processes.len(),
            "Processes, outbound sockets by state".into(),
        )
    };
    let w = widths(&cols, list.width);
    let mut v = vec![rule(
        format!("{title} ({n})"),
        list.width,
        t.title(),
        t.dim(),
    )];
    if n == 0 {
        v.push(empty(
            app,
            "No process with sockets seen yet (or none matches the filter).",
            list.width,
        ));
    } else {
        v.push(header_row(&cols, &w, t.header()));
        let height = usize::from(list.height).saturating_sub(2);
        let start = scroll_start(sel, height);
        for k in start..(start + height).min(n) {
            let mut line = if app.grouped {
                group_row(
                    t,
                    &cols,
                    &w,
                    &app.view.snapshot.process_groups[app.rows.groups[k]],
                )
            } else {
                proc_row(
                    t,
                    &cols,
                    &w,
                    &app.view.snapshot.processes[app.rows.processes[k]],
                )
            };
            if k == sel {
                line = line.style(t.selected());
            }
            v.push(line);
        }
    }
    lines(frame, list, v);
    if let (false, Some(p)) = (app.grouped, app.selected_process()) {
        lines(frame, info, destinations(t, p, info.width, info.height));
    }
}

/// The selected process's outbound sockets by destination and state, and what it listens on.
fn destinations<'a>(t: Theme, p: &ProcessStats, width: u16, height: u16) -> Vec<Line<'a>> {
    let w = widths(&DEST_COLS, width);
    let whereabouts = p
        .process
        .workload
        .as_ref()
        .and_then(|w| w.whereabouts())
        .map(|w| format!(" in {w}"))
        .unwrap_or_default();
    let mut v = vec![rule(
        format!(
            "{}({}){whereabouts} outbound by destination",
            p.process.comm, p.process.pid
        ),
        width,
        t.title(),
        t.dim(),
    )];
    if p.outbound.is_empty() {
        v.push(Line::styled("no outbound connection", t.dim()));
    } else {
        v.push(header_row(&DEST_COLS, &w, t.header()));
    }
    let room = usize::from(height).saturating_sub(2 + usize::from(!p.listening.is_empty()));
    for d in p.outbound.iter().take(room) {
        let (est, tw, other) = est_tw_other(&d.states);
        v.push(row(
            &DEST_COLS,
            &w,
            vec![
                (d.dst.to_string(), t.plain()),
                (d.src.to_string(), t.plain()),
                (count(u64::from(est)), t.plain()),
                (count(u64::from(tw)), t.plain()),
                (count(u64::from(other)), t.plain()),
                (count(u64::from(d.total)), t.bold()),
            ],
        ));
    }
    if !p.listening.is_empty() {
        let l: Vec<String> = p.listening.iter().map(ToString::to_string).collect();
        v.push(Line::from(vec![
            Span::styled("listening on ", t.dim()),
            Span::raw(l.join("  ")),
        ]));
    }
    v
}
