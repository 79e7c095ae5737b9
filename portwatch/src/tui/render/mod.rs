//! Drawing the App: `(frame, area, &App)` functions that format what the model computed and
//! never compute anything themselves. Only visible rows are formatted, so a frame costs the
//! same whatever the event rate.

mod chart;
mod drill;
mod failures;
mod findings;
mod header;
mod help;
mod inbound;
mod nat;
mod pools;
mod processes;
mod stream;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    app::App,
    rows::Tab,
    widgets::{count, fit, trunc},
};

/// Below this the screen only says it is too small.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 12;

/// The whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "portwatch needs at least {MIN_WIDTH}×{MIN_HEIGHT} (this is {}×{})",
            area.width, area.height
        );
        lines(frame, area, vec![Line::from(msg)]);
        return;
    }
    let warn_rows = u16::from(!app.view.snapshot.warnings.is_empty());
    let [head, warn, tabs, body, foot] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Length(warn_rows),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(frame, head, app);
    header::warnings(frame, warn, app);
    tab_bar(frame, tabs, app);
    if app.drill.is_some() {
        drill::draw(frame, body, app);
    } else {
        match app.tab {
            Tab::Overview => findings::overview(frame, body, app),
            Tab::Pools => pools::tab(frame, body, app),
            Tab::Processes => processes::tab(frame, body, app),
            Tab::Inbound => inbound::tab(frame, body, app),
            Tab::Failures => failures::tab(frame, body, app),
            Tab::Events => stream::tab(frame, body, app),
        }
    }
    footer(frame, foot, app);
    if app.help {
        help::draw(frame, area, app);
    }
}

/// Renders lines (each already fitted to the width) into `area`.
pub(super) fn lines(frame: &mut Frame, area: Rect, lines: Vec<Line<'_>>) {
    let w = usize::from(area.width);
    let fitted: Vec<Line> = lines
        .into_iter()
        .take(usize::from(area.height))
        .map(|l| fit(l, w))
        .collect();
    frame.render_widget(Paragraph::new(fitted), area);
}

/// First row to show so that `sel` is visible in `height` rows.
pub(super) fn scroll_start(sel: usize, height: usize) -> usize {
    (sel + 1).saturating_sub(height)
}

fn tab_bar(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let s = &app.view.snapshot;
    let mut spans = Vec::new();
    for tab in Tab::ALL {
        let badge = match tab {
            Tab::Overview if !app.view.snapshot.findings.is_empty() => {
                format!(" ({})", app.view.snapshot.findings.len())
            }
            Tab::Failures if s.failures.total > 0 => format!(" ({})", count(s.failures.total)),
            _ => String::new(),
        };
        let label = format!(" {} {}{badge} ", tab.index() + 1, tab.title());
        let style = if tab == app.tab {
            t.selected().patch(t.bold())
        } else if tab == Tab::Failures && s.failures.total > 0 {
            t.warn()
        } else {
            t.plain()
        };
        spans.push(Span::styled(label, style));
    }
    lines(frame, area, vec![Line::from(spans)]);
}

/// Status on the left (pause, filter, sort), key hints on the right.
fn footer(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let mut left: Vec<Span> = Vec::new();
    if app.display_paused {
        left.push(Span::styled(" PAUSED ", t.selected().patch(t.warn())));
        left.push(Span::raw(" "));
    }
    let filter = app.filter();
    if app.typing {
        left.push(Span::styled(format!("/{filter}▏"), t.key()));
        left.push(Span::raw("  "));
    } else if !filter.is_empty() {
        left.push(Span::styled(format!("filter: {filter}"), t.warn()));
        left.push(Span::raw("  "));
    }
    if app.drill.is_none()
        && let Some(name) = app.tab.sorts().get(app.sorts[app.tab.index()])
    {
        left.push(Span::styled(format!("sort: {name}"), t.dim()));
        left.push(Span::raw("  "));
    }
    let hints: &[(&str, &str)] = if app.typing {
        &[("Enter", "keep"), ("Esc", "clear")]
    } else if app.drill.is_some() {
        &[
            ("↑↓", "scroll"),
            ("s", "sort"),
            ("Esc", "back"),
            ("?", "help"),
            ("q", "quit"),
        ]
    } else {
        match app.tab {
            Tab::Overview if app.expanded => &[
                ("↑↓", "others"),
                ("Esc", "collapse"),
                ("d", "drill"),
                ("?", "help"),
                ("q", "quit"),
            ],
            Tab::Overview => &[
                ("↑↓", "select"),
                ("Enter", "expand"),
                ("d", "drill"),
                ("?", "help"),
                ("q", "quit"),
            ],
            Tab::Events => &[
                ("↑↓", "scroll"),
                ("End", "follow"),
                ("/", "filter"),
                ("?", "help"),
                ("q", "quit"),
            ],
            Tab::Processes => &[
                ("Enter", "drill"),
                ("g", "group"),
                ("s", "sort"),
                ("/", "filter"),
                ("?", "help"),
            ],
            _ => &[
                ("Enter", "drill"),
                ("s", "sort"),
                ("/", "filter"),
                ("?", "help"),
                ("q", "quit"),
            ],
        }
    };
    let left_w: usize = left.iter().map(|s| s.width()).sum();
    let mut right: Vec<Span> = Vec::new();
    let mut right_w = 0;
    let avail = usize::from(area.width).saturating_sub(left_w);
    for (k, what) in hints {
        let w = k.chars().count() + what.len() + 3;
        if right_w + w > avail {
            break;
        }
        right.push(Span::styled(*k, t.key()));
        right.push(Span::styled(format!(" {what}  "), t.dim()));
        right_w += w;
    }
    let pad = avail.saturating_sub(right_w);
    left.push(Span::raw(" ".repeat(pad)));
    left.extend(right);
    lines(frame, area, vec![Line::from(left)]);
}

/// A placeholder line for an empty list.
pub(super) fn empty<'a>(app: &App, text: &str, width: u16) -> Line<'a> {
    Line::styled(
        format!("  {}", trunc(text, usize::from(width).saturating_sub(2))),
        app.theme.dim(),
    )
}
