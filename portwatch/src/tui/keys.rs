//! Keys → state changes and [`Action`]s for the session. Pure: no I/O, no clock.
//! [`HELP`] is the one list of keys: the help overlay shows it and the tests check that
//! every key in it does what it says.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{
    app::App,
    data::{DrillTarget, SourceInfo},
    rows::{DRILL_SORTS, Tab},
};

/// What the session should do after a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Nothing changed.
    None,
    /// The App changed: draw again now (and answer a new [`App::drill_request`]).
    Redraw,
    /// Restore the terminal and exit.
    Quit,
    /// Replay: pause or resume the replay.
    TogglePause,
    /// Replay: play at this speed (1.0 = real time).
    Speed(f64),
    /// Replay: move this many seconds (negative: back).
    Seek(i64),
}

/// Rows moved by PgUp/PgDn.
pub const PAGE: isize = 10;
/// Replay speeds reachable with `+`/`-`.
pub const MIN_SPEED: f64 = 0.125;
pub const MAX_SPEED: f64 = 64.0;

/// One line of the help overlay.
pub struct KeyHelp {
    /// As shown.
    pub keys: &'static str,
    pub what: &'static str,
    /// The key codes it stands for (for the tests).
    pub codes: &'static [KeyCode],
}

const fn k(keys: &'static str, what: &'static str, codes: &'static [KeyCode]) -> KeyHelp {
    KeyHelp { keys, what, codes }
}

use KeyCode::{
    BackTab, Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right,
    Tab as TabKey, Up,
};

/// Every key, by section, as the help overlay lists them.
pub const HELP: &[(&str, &[KeyHelp])] = &[
    (
        "Anywhere",
        &[
            k("q  Ctrl-C", "quit", &[Char('q')]),
            k("?", "this help (Esc or ? closes it)", &[Char('?')]),
            k(
                "Tab S-Tab 1-6",
                "switch tab",
                &[TabKey, BackTab, Char('1'), Char('6')],
            ),
            k(
                "↑ ↓  j k",
                "move the selection (events: scroll)",
                &[Up, Down, Char('j'), Char('k')],
            ),
            k("PgUp PgDn", "move ten rows", &[PageUp, PageDown]),
            k(
                "Home End",
                "first / last row (events: End follows)",
                &[Home, End],
            ),
            k(
                "/",
                "filter this tab (Enter keeps, Esc clears)",
                &[Char('/')],
            ),
            k("s", "next sort order", &[Char('s')]),
            k("p", "pause (live: freeze the display)", &[Char('p')]),
            k("Esc", "close drill-down, collapse, clear filter", &[Esc]),
        ],
    ),
    (
        "Overview",
        &[
            k(
                "Enter → l  ← h",
                "expand / collapse the finding",
                &[Enter, Right, Char('l'), Left, Char('h')],
            ),
            k(
                "d",
                "drill into the finding's pool or process",
                &[Char('d')],
            ),
        ],
    ),
    (
        "Lists",
        &[
            k("Enter", "drill down: sockets, ages, history", &[Enter]),
            k("g", "processes: group by command + parent", &[Char('g')]),
        ],
    ),
    (
        "Replay",
        &[
            k("+ -", "faster / slower", &[Char('+'), Char('-')]),
            k(
                "[ ]  { }",
                "back / forward 10 s, 60 s",
                &[Char('['), Char(']'), Char('{'), Char('}')],
            ),
        ],
    ),
];

/// Applies a key to the App and says what the session should do.
pub fn on_key(app: &mut App, key: KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, Char('c') | Char('C')) {
        return Action::Quit;
    }
    if ctrl {
        return Action::None;
    }
    if app.typing {
        return typing(app, key.code);
    }
    if app.help {
        return match key.code {
            Esc | Char('?') => {
                app.help = false;
                Action::Redraw
            }
            Char('q') => Action::Quit,
            _ => Action::None,
        };
    }
    if let Some(a) = global(app, key.code) {
        return a;
    }
    if app.drill.is_some() {
        return drill(app, key.code);
    }
    tab_key(app, key.code)
}

fn typing(app: &mut App, code: KeyCode) -> Action {
    let mut text = app.filter().to_string();
    match code {
        Esc => {
            app.typing = false;
            app.set_filter(String::new());
        }
        Enter => app.typing = false,
        Backspace => {
            text.pop();
            app.set_filter(text);
        }
        Char(c) => {
            text.push(c);
            app.set_filter(text);
        }
        _ => return Action::None,
    }
    Action::Redraw
}

fn switch(app: &mut App, tab: Tab) -> Action {
    app.tab = tab;
    app.drill = None;
    Action::Redraw
}

/// Keys that mean the same everywhere (overlays aside).
fn global(app: &mut App, code: KeyCode) -> Option<Action> {
    let replay = match &app.view.source {
        SourceInfo::Replay(r) => Some(r.speed),
        SourceInfo::Live => None,
    };
    let tab = app.tab.index();
    Some(match code {
        Char('q') => Action::Quit,
        Char('?') => {
            app.help = true;
            Action::Redraw
        }
        TabKey => switch(app, Tab::ALL[(tab + 1) % Tab::ALL.len()]),
        BackTab => switch(app, Tab::ALL[(tab + Tab::ALL.len() - 1) % Tab::ALL.len()]),
        Char(c @ '1'..='6') => switch(app, Tab::ALL[c as usize - '1' as usize]),
        Char('p') if replay.is_some() => Action::TogglePause,
        Char('p') => {
            app.set_display_paused(!app.display_paused);
            Action::Redraw
        }
        Char('+' | '=') => match replay {
            Some(s) => Action::Speed((s * 2.0).min(MAX_SPEED)),
            None => Action::None,
        },
        Char('-') => match replay {
            Some(s) => Action::Speed((s / 2.0).max(MIN_SPEED)),
            None => Action::None,
        },
        Char(c @ ('[' | ']' | '{' | '}')) if replay.is_some() => Action::Seek(match c {
            '[' => -10,
            ']' => 10,
            '{' => -60,
            _ => 60,
        }),
        Char('[' | ']' | '{' | '}') => Action::None,
        _ => return None,
    })
}

fn drill(app: &mut App, code: KeyCode) -> Action {
    let len = app.drill_rows.len();
    let Some(d) = app.drill.as_mut() else {
        return Action::None;
    };
    let scroll = |d: &mut super::app::DrillState, delta: isize| {
        d.scroll = d
            .scroll
            .saturating_add_signed(delta)
            .min(len.saturating_sub(1));
    };
    match code {
        Esc | Left | Char('h') => app.drill = None,
        Up | Char('k') => scroll(d, -1),
        Down | Char('j') => scroll(d, 1),
        PageUp => scroll(d, -PAGE),
        PageDown => scroll(d, PAGE),
        Home => d.scroll = 0,
        End => d.scroll = len.saturating_sub(1),
        Char('s') => {
            d.sort = (d.sort + 1) % DRILL_SORTS.len();
            app.rebuild_drill_rows();
        }
        _ => return Action::None,
    }
    Action::Redraw
}

fn tab_key(app: &mut App, code: KeyCode) -> Action {
    let tab = app.tab;
    match code {
        Up | Char('k') => app.move_sel(-1),
        Down | Char('j') => app.move_sel(1),
        PageUp => app.move_sel(-PAGE),
        PageDown => app.move_sel(PAGE),
        Home => app.sel_first(),
        End => app.sel_last(),
        Char('/') => app.typing = true,
        Char('s') if !tab.sorts().is_empty() => {
            let i = tab.index();
            app.sorts[i] = (app.sorts[i] + 1) % tab.sorts().len();
            app.rebuild();
        }
        Esc if tab == Tab::Overview && app.expanded => app.expanded = false,
        Esc if !app.filter().is_empty() => app.set_filter(String::new()),
        Enter if tab == Tab::Overview && app.selected_finding().is_some() => {
            app.expanded = !app.expanded;
        }
        Right | Char('l') if tab == Tab::Overview && app.selected_finding().is_some() => {
            app.expanded = true;
        }
        Left | Char('h') if tab == Tab::Overview && app.expanded => app.expanded = false,
        Char('d') if tab == Tab::Overview => {
            let Some(t) = app.selected_finding().and_then(|f| app.finding_target(f)) else {
                return Action::None;
            };
            app.open_drill(t);
        }
        Enter => return enter(app, tab),
        Char('g') if tab == Tab::Processes => {
            app.grouped = !app.grouped;
            app.rebuild();
        }
        _ => return Action::None,
    }
    Action::Redraw
}

/// Enter on a row: drill down where there is something below it.
fn enter(app: &mut App, tab: Tab) -> Action {
    let target = match tab {
        Tab::Pools => app.selected_pool().map(|p| DrillTarget::Pool(p.key())),
        Tab::Processes if app.grouped => {
            // A group opens as its processes.
            let Some(comm) = app.selected_group().map(|g| g.comm.to_string()) else {
                return Action::None;
            };
            app.grouped = false;
            app.set_filter(comm);
            return Action::Redraw;
        }
        Tab::Processes => app
            .selected_process()
            .map(|p| DrillTarget::Process { pid: p.process.pid }),
        Tab::Failures => app
            .selected_failure()
            .and_then(|f| f.pool.map(DrillTarget::Pool)),
        _ => None,
    };
    match target {
        Some(t) => {
            app.open_drill(t);
            Action::Redraw
        }
        None => Action::None,
    }
}
