//! The events tab: the newest transitions, scrollable and filterable. Only the rows on screen
//! are formatted.

use ratatui::{Frame, layout::Rect};

use super::{empty, lines};
use crate::tui::{
    app::App,
    eventlog::EventText,
    widgets::{Col, header_row, left, right, row, rule, widths},
};

fn columns(width: u16) -> [Col; 5] {
    [
        right("TIME", 10),
        right("PID", 7),
        left("COMMAND", if width >= 100 { 15 } else { 12 }),
        left("KIND", 7),
        left("WHAT", 0),
    ]
}

pub fn tab(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let log = &app.events;
    let state = if log.from_bottom == 0 {
        "following".to_string()
    } else {
        format!("{} newer below, End follows", log.from_bottom)
    };
    let count = if log.len() == log.total() {
        format!("{}", log.total())
    } else {
        format!("{} of {}", log.len(), log.total())
    };
    let mut v = vec![rule(
        format!("Events ({count}, {state})"),
        area.width,
        t.title(),
        t.dim(),
    )];
    if log.is_empty() {
        v.push(empty(
            app,
            if log.total() == 0 {
                "No event yet."
            } else {
                "No event matches the filter."
            },
            area.width,
        ));
        lines(frame, area, v);
        return;
    }
    let cols = columns(area.width);
    let w = widths(&cols, area.width);
    v.push(header_row(&cols, &w, t.header()));
    let (start, n) = log.window(usize::from(area.height).saturating_sub(2));
    for i in start..start + n {
        let Some(e) = log.get(i) else { break };
        let x = EventText::of(e);
        let style = if x.failure {
            t.bad()
        } else if x.kind == "tw" {
            t.dim()
        } else {
            t.plain()
        };
        v.push(row(
            &cols,
            &w,
            vec![
                (x.time, t.dim()),
                (x.pid, t.plain()),
                (x.comm, t.bold()),
                (x.kind.to_string(), style),
                (x.detail, style),
            ],
        ));
    }
    lines(frame, area, v);
}
