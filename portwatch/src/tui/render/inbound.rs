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
    model::{ListenerStats, StateCounts},
    tui::{
        app::App,
        rows::Tab,
        theme::Theme,
        widgets::{ADDR_MAX, Col, count, flex, header_row, left, right, row, rule, widths},
    },
};

const LISTEN_COLS: [Col; 8] = [
    flex("LISTENING ON", ADDR_MAX),
    left("OWNER", 20),
    right("LSN", 4),
    right("ACCEPTED", 8),
    right("ESTAB", 6),
    right("T_WAIT", 6),
    right("C_WAIT", 6),
    right("OTHER", 6),
];

const REMOTE_COLS: [Col; 6] = [
    flex("REMOTE IP", 41),
    right("ESTAB", 6),
    right("T_WAIT", 6),
    right("C_WAIT", 6),
    right("OTHER", 6),
    right("TOTAL", 6),
];

/// ESTABLISHED, TIME_WAIT, CLOSE_WAIT (the inbound leak), rest.
fn split(s: &StateCounts) -> [u32; 4] {
    let est = s.get(TcpState::Established);
    let tw = s.get(TcpState::TimeWait);
    let cw = s.get(TcpState::CloseWait);
    [est, tw, cw, s.total() - est - tw - cw]
}

fn listener_row<'a>(t: Theme, w: &[usize], l: &ListenerStats) -> Line<'a> {
    let [est, tw, cw, other] = split(&l.states);
    let owner = l
        .owner
        .as_ref()
        .map_or("unknown".into(), |o| format!("{}({})", o.comm, o.pid));
    row(
        &LISTEN_COLS,
        w,
        vec![
            (l.local.to_string(), t.bold()),
            (owner, t.plain()),
            (
                l.listening.to_string(),
                if l.listening == 0 {
                    t.warn()
                } else {
                    t.plain()
                },
            ),
            (count(l.accepted), t.plain()),
            (count(u64::from(est)), t.plain()),
            (count(u64::from(tw)), t.plain()),
            (
                count(u64::from(cw)),
                if cw > 0 { t.warn() } else { t.plain() },
            ),
            (count(u64::from(other)), t.plain()),
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
        let [est, tw, cw, other] = split(&r.states);
        v.push(row(
            &REMOTE_COLS,
            &w,
            vec![
                (r.ip.to_string(), t.plain()),
                (count(u64::from(est)), t.plain()),
                (count(u64::from(tw)), t.plain()),
                (
                    count(u64::from(cw)),
                    if cw > 0 { t.warn() } else { t.plain() },
                ),
                (count(u64::from(other)), t.plain()),
                (count(u64::from(r.total)), t.bold()),
            ],
        ));
    }
    lines(frame, info, v);
}
