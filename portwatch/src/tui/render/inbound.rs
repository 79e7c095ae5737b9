//! Inbound: each listening port with its accepted sockets by state, and the selected one's
//! peers by remote IP (what `ss -tan 'sport = :443' | … | uniq -c` would show).

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::Line,
};

use super::{empty, lines, scroll_start};
use crate::{
    event::TcpState,
    model::{ListenerStats, RemoteStats},
    snapshot::cells::{ListenerCells, RemoteCells, col},
    tui::{
        app::App,
        rows::Tab,
        theme::Theme,
        widgets::{ADDR_MAX, Col, flex, header_row, left, right, row, rule, widths},
    },
};

const LISTEN_COLS: [Col; 8] = [
    flex(col::LISTENING_ON, ADDR_MAX),
    left(col::OWNER, 20),
    right(col::LISTENING, 4),
    right(col::ACCEPTED, 8),
    right(col::ESTAB, 6),
    right(col::TIME_WAIT, 6),
    right(col::CLOSE_WAIT, 6),
    right(col::OTHER, 6),
];

const REMOTE_COLS: [Col; 6] = [
    flex(col::REMOTE_IP, 41),
    right(col::ESTAB, 6),
    right(col::TIME_WAIT, 6),
    right(col::CLOSE_WAIT, 6),
    right(col::OTHER, 6),
    right(col::TOTAL, 6),
];

fn listener_row<'a>(t: Theme, w: &[usize], l: &ListenerStats) -> Line<'a> {
    let c = ListenerCells::of(l);
    let cw = l.states.get(TcpState::CloseWait);
    row(
        &LISTEN_COLS,
        w,
        vec![
            (c.local, t.bold()),
            (c.owner, t.plain()),
            (
                c.listening,
                if l.listening == 0 {
                    t.warn()
                } else {
                    t.plain()
                },
            ),
            (c.accepted, t.plain()),
            (c.estab, t.plain()),
            (c.time_wait, t.plain()),
            (c.close_wait, if cw > 0 { t.warn() } else { t.plain() }),
            (c.other, t.plain()),
        ],
    )
}

fn remote_row<'a>(t: Theme, w: &[usize], r: &RemoteStats) -> Line<'a> {
    let c = RemoteCells::of(r);
    let cw = r.states.get(TcpState::CloseWait);
    row(
        &REMOTE_COLS,
        w,
        vec![
            (c.ip, t.plain()),
            (c.estab, t.plain()),
            (c.time_wait, t.plain()),
            (c.close_wait, if cw > 0 { t.warn() } else { t.plain() }),
            (c.other, t.plain()),
            (c.total, t.bold()),
        ],
    )
}

pub fn tab(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let sel = app.sel[Tab::Inbound.index()];
    let detail_h = app.selected_listener().map_or(0, |l| {
        (l.by_remote.len().min(8) as u16 + 2).min(area.height / 2)
    });
    let [list, info] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(detail_h)]).areas(area);
    let rows = &app.rows.listeners;
    let w = widths(&LISTEN_COLS, list.width);
    let mut v = vec![rule(
        format!("Listeners, accepted sockets by state ({})", rows.len()),
        list.width,
        t.title(),
        t.dim(),
    )];
    if rows.is_empty() {
        v.push(empty(
            app,
            "No listening socket seen yet (or none matches the filter).",
            list.width,
        ));
    } else {
        v.push(header_row(&LISTEN_COLS, &w, t.header()));
        let height = usize::from(list.height).saturating_sub(2);
        let start = scroll_start(sel, height);
        for (k, &i) in rows.iter().enumerate().skip(start).take(height) {
            let mut line = listener_row(t, &w, &app.view.snapshot.listeners[i]);
            if k == sel {
                line = line.style(t.selected());
            }
            v.push(line);
        }
    }
    lines(frame, list, v);
    let Some(l) = app.selected_listener() else {
        return;
    };
    let w = widths(&REMOTE_COLS, info.width);
    let mut v = vec![
        rule(
            format!("{} by remote IP", l.local),
            info.width,
            t.title(),
            t.dim(),
        ),
        header_row(&REMOTE_COLS, &w, t.header()),
    ];
    for r in &l.by_remote {
        v.push(remote_row(t, &w, r));
    }
    lines(frame, info, v);
}
