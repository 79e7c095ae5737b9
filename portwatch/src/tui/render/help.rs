//! The help overlay: every key (from [`crate::tui::keys::HELP`]), what the colours mean, and
//! the session's warnings in full.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph},
};

use crate::tui::{
    app::App,
    keys::HELP,
    widgets::{cell, fit, wrap},
};

const WIDTH: u16 = 76;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let w = WIDTH.min(area.width.saturating_sub(2));
    let inner_w = usize::from(w.saturating_sub(2));
    let mut v: Vec<Line> = Vec::new();
    for (section, keys) in HELP {
        for (i, k) in keys.iter().enumerate() {
            let head = if i == 0 { *section } else { "" };
            v.push(Line::from(vec![
                Span::styled(cell(head, 10, false), t.title()),
                Span::styled(cell(k.keys, 16, false), t.key()),
                Span::raw(k.what),
            ]));
        }
    }
    v.push(Line::from(vec![
        Span::styled(cell("Colours", 10, false), t.title()),
        Span::styled("red", t.bad()),
        Span::raw(" out of ports / failing  "),
        Span::styled("yellow", t.warn()),
        Span::raw(" heading there  "),
        Span::styled("green", t.ok()),
        Span::raw(" fine"),
    ]));
    for (i, warning) in app.view.snapshot.warnings.iter().enumerate() {
        let head = if i == 0 { "Warnings" } else { "" };
        for (j, line) in wrap(warning, inner_w.saturating_sub(12))
            .into_iter()
            .enumerate()
        {
            let lead = if j == 0 { "⚠ " } else { "  " };
            v.push(Line::from(vec![
                Span::styled(cell(if j == 0 { head } else { "" }, 10, false), t.title()),
                Span::styled(lead, t.warn()),
                Span::styled(line, t.warn()),
            ]));
        }
    }
    let h = (v.len() as u16 + 2).min(area.height);
    let x = area.x + (area.width - w) / 2;
    let y = area.y + (area.height - h) / 2;
    let rect = Rect::new(x, y, w, h);
    let fitted: Vec<Line> = v.into_iter().map(|l| fit(l, inner_w)).collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(fitted).block(
            Block::bordered()
                .title(" Keys — Esc closes ")
                .border_style(t.dim()),
        ),
        rect,
    );
}
