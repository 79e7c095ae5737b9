//! Key → action, table-driven: every key of the help overlay, in each tab, with overlays open
//! and closed, live and replay. Pure: no terminal, no threads, no sleeps.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::fixtures::{self, Incident, answer_drill};
use crate::tui::{Action, App, DrillTarget, HELP, Tab, ViewData, data::SourceInfo, on_key};

/// Where a key is pressed.
#[derive(Clone, Copy, Debug)]
enum Ctx {
    /// A tab, no overlay, live.
    Tab(Tab),
    /// … with the help overlay open.
    Help(Tab),
    /// … with a drill-down open (the curl pool from Pools, java from Processes).
    Drill(Tab),
    /// … typing a filter.
    Typing(Tab),
    /// … replaying a recording.
    Replay(Tab),
    /// The overview with the top finding expanded.
    Expanded,
    /// … with a filter set (not being typed).
    Filtered(Tab),
}

struct Case {
    ctx: Ctx,
    key: KeyEvent,
    want: Action,
    then: fn(&App) -> bool,
    what: &'static str,
    /// The tab it must end in, when that is the point.
    tab: Option<Tab>,
}

fn setup(ctx: Ctx) -> (App, Incident) {
    let (mut app, inc) = fixtures::app_with(true);
    let tab = match ctx {
        Ctx::Tab(t) | Ctx::Help(t) | Ctx::Drill(t) | Ctx::Typing(t) | Ctx::Replay(t) => t,
        Ctx::Filtered(t) => t,
        Ctx::Expanded => Tab::Overview,
    };
    let digit = char::from(b'1' + tab.index() as u8);
    on_key(&mut app, key(KeyCode::Char(digit)));
    match ctx {
        Ctx::Help(_) => {
            on_key(&mut app, key(KeyCode::Char('?')));
        }
        Ctx::Drill(t) => {
            if t == Tab::Processes {
                // java: a process with sockets.
                on_key(&mut app, key(KeyCode::Down));
            }
            on_key(&mut app, key(KeyCode::Enter));
            answer_drill(&mut app, &inc);
            assert!(app.drill.is_some(), "{ctx:?} opens a drill-down");
        }
        Ctx::Typing(_) => {
            on_key(&mut app, key(KeyCode::Char('/')));
        }
        Ctx::Replay(_) => {
            let mut v: ViewData = fixtures::view(&inc, fixtures::replay_source());
            if let SourceInfo::Replay(r) = &mut v.source {
                r.paused = false;
            }
            app.update(v);
        }
        Ctx::Expanded => {
            on_key(&mut app, key(KeyCode::Enter));
        }
        Ctx::Filtered(_) => {
            app.set_filter("curl".into());
        }
        Ctx::Tab(_) => {}
    }
    (app, inc)
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::from(code)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn c(ctx: Ctx, k: KeyCode, want: Action, what: &'static str, then: fn(&App) -> bool) -> Case {
    Case {
        ctx,
        key: key(k),
        want,
        then,
        what,
        tab: None,
    }
}

/// A tab switch from `ctx` that must land on `to`.
fn to_tab(ctx: Ctx, k: KeyCode, to: Tab, what: &'static str) -> Case {
    Case {
        tab: Some(to),
        ..c(ctx, k, Action::Redraw, what, no_overlay)
    }
}

fn no_overlay(a: &App) -> bool {
    !a.help && a.drill.is_none() && !a.typing
}

fn cases() -> Vec<Case> {
    use Action::{None as Nothing, *};
    use KeyCode::{
        BackTab, Backspace, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right,
        Tab as TabKey, Up,
    };
    let mut v = Vec::new();
    // Keys that do the same in every tab.
    for t in Tab::ALL {
        let tab = Ctx::Tab(t);
        v.extend([
            c(tab, Char('q'), Quit, "q quits", |_| true),
            c(tab, Char('?'), Redraw, "? opens help", |a| a.help),
            to_tab(tab, TabKey, Tab::ALL[(t.index() + 1) % 6], "Tab: next tab"),
            to_tab(
                tab,
                BackTab,
                Tab::ALL[(t.index() + 5) % 6],
                "S-Tab: previous tab",
            ),
            to_tab(tab, Char('1'), Tab::Overview, "1: overview"),
            to_tab(tab, Char('6'), Tab::Events, "6: events"),
            c(tab, Char('/'), Redraw, "/ types a filter", |a| a.typing),
            c(
                tab,
                Char('p'),
                Redraw,
                "p freezes the display (live)",
                |a| a.display_paused,
            ),
            c(tab, Char('+'), Nothing, "+ is for replay", no_overlay),
            c(tab, Char('['), Nothing, "[ is for replay", no_overlay),
        ]);
        v.push(Case {
            key: ctrl('c'),
            ..c(
                tab,
                Char('c'),
                Quit,
                "Ctrl-C quits (raw mode eats SIGINT)",
                |_| true,
            )
        });
        let mut release = key(Char('q'));
        release.kind = KeyEventKind::Release;
        v.push(Case {
            key: release,
            ..c(
                tab,
                Char('q'),
                Nothing,
                "key releases are ignored",
                no_overlay,
            )
        });
        // Replay controls.
        let r = Ctx::Replay(t);
        v.extend([
            c(r, Char('p'), TogglePause, "p pauses the replay", |a| {
                !a.display_paused
            }),
            c(r, Char('+'), Speed(4.0), "+ doubles the speed", |_| true),
            c(r, Char('-'), Speed(1.0), "- halves it", |_| true),
            c(r, Char('['), Seek(-10), "[ back 10 s", |_| true),
            c(r, Char(']'), Seek(10), "] forward 10 s", |_| true),
            c(r, Char('{'), Seek(-60), "{ back 60 s", |_| true),
            c(r, Char('}'), Seek(60), "} forward 60 s", |_| true),
        ]);
        // Help overlay: only its own keys and q work.
        let h = Ctx::Help(t);
        v.extend([
            c(h, Esc, Redraw, "Esc closes help", |a| !a.help),
            c(h, Char('?'), Redraw, "? closes help", |a| !a.help),
            c(h, Char('q'), Quit, "q quits from help", |_| true),
        ]);
        for (_, keys) in HELP {
            for k in keys.iter().flat_map(|k| k.codes) {
                if !matches!(k, Esc | Char('?') | Char('q')) {
                    v.push(c(h, *k, Nothing, "help swallows other keys", |a| {
                        a.help && a.drill.is_none() && !a.typing
                    }));
                }
            }
        }
        // Typing a filter: every printable key is text, even q.
        let ty = Ctx::Typing(t);
        v.extend([
            c(ty, Char('q'), Redraw, "q is text while typing", |a| {
                a.typing && a.filter() == "q"
            }),
            c(ty, Char('?'), Redraw, "? is text while typing", |a| {
                a.filter() == "?"
            }),
            c(ty, Char('1'), Redraw, "digits are text", |a| {
                a.filter() == "1"
            }),
            c(ty, Enter, Redraw, "Enter keeps the filter", |a| !a.typing),
            c(ty, Esc, Redraw, "Esc clears it", |a| {
                !a.typing && a.filter().is_empty()
            }),
            c(ty, Backspace, Redraw, "Backspace deletes", |a| a.typing),
        ]);
        let f = Ctx::Filtered(t);
        v.push(c(f, Esc, Redraw, "Esc clears a kept filter", |a| {
            a.filter().is_empty()
        }));
    }

    let ov = Ctx::Tab(Tab::Overview);
    let pools = Ctx::Tab(Tab::Pools);
    let procs = Ctx::Tab(Tab::Processes);
    let fails = Ctx::Tab(Tab::Failures);
    let events = Ctx::Tab(Tab::Events);
    v.extend([
        // Moving.
        c(ov, Down, Redraw, "↓ next finding", |a| a.sel[0] == 1),
        c(ov, Char('j'), Redraw, "j next finding", |a| a.sel[0] == 1),
        c(ov, Up, Redraw, "↑ stays on the first", |a| a.sel[0] == 0),
        c(ov, Char('k'), Redraw, "k stays on the first", |a| {
            a.sel[0] == 0
        }),
        c(procs, PageDown, Redraw, "PgDn ten rows", |a| a.sel[2] == 10),
        c(procs, PageUp, Redraw, "PgUp back to the top", |a| {
            a.sel[2] == 0
        }),
        c(procs, End, Redraw, "End: last row", |a| {
            a.sel[2] == a.rows.processes.len() - 1
        }),
        c(procs, Home, Redraw, "Home: first row", |a| a.sel[2] == 0),
        c(events, Up, Redraw, "↑ scrolls the events back", |a| {
            a.events.from_bottom == 1
        }),
        c(events, Char('k'), Redraw, "k too", |a| {
            a.events.from_bottom == 1
        }),
        c(events, Home, Redraw, "Home: oldest event", |a| {
            a.events.from_bottom == a.events.len() - 1
        }),
        c(events, End, Redraw, "End follows", |a| {
            a.events.from_bottom == 0
        }),
        // Sorting.
        c(pools, Char('s'), Redraw, "s: pools by in use", |a| {
            a.sorts[1] == 1
        }),
        c(procs, Char('s'), Redraw, "s: processes by connects", |a| {
            a.sorts[2] == 1
        }),
        c(fails, Char('s'), Redraw, "s: failures by errno", |a| {
            a.sorts[4] == 1
        }),
        c(
            ov,
            Char('s'),
            Nothing,
            "findings keep their rank",
            no_overlay,
        ),
        c(
            events,
            Char('s'),
            Nothing,
            "events keep their order",
            no_overlay,
        ),
        // Findings.
        c(ov, Enter, Redraw, "Enter expands", |a| a.expanded),
        c(ov, Right, Redraw, "→ expands", |a| a.expanded),
        c(ov, Char('l'), Redraw, "l expands", |a| a.expanded),
        c(Ctx::Expanded, Enter, Redraw, "Enter collapses", |a| {
            !a.expanded
        }),
        c(Ctx::Expanded, Left, Redraw, "← collapses", |a| {
            !a.expanded
        }),
        c(Ctx::Expanded, Char('h'), Redraw, "h collapses", |a| {
            !a.expanded
        }),
        c(Ctx::Expanded, Esc, Redraw, "Esc collapses", |a| !a.expanded),
        c(Ctx::Expanded, Down, Redraw, "moving collapses", |a| {
            !a.expanded && a.sel[0] == 1
        }),
        c(
            ov,
            Char('d'),
            Redraw,
            "d drills into the finding's pool",
            |a| a.drill_request() == Some(DrillTarget::Pool(fixtures::incident().curl_pool())),
        ),
        c(ov, Left, Nothing, "← on a collapsed finding", no_overlay),
        // Drill-downs.
        c(pools, Enter, Redraw, "Enter drills into the pool", |a| {
            matches!(a.drill_request(), Some(DrillTarget::Pool(_)))
        }),
        c(procs, Enter, Redraw, "Enter drills into the process", |a| {
            a.drill_request() == Some(DrillTarget::Process { pid: 800 })
        }),
        c(
            fails,
            Enter,
            Nothing,
            "a failure without a pool",
            no_overlay,
        ),
        c(
            Ctx::Tab(Tab::Inbound),
            Enter,
            Nothing,
            "nothing below a listener",
            no_overlay,
        ),
        c(events, Enter, Nothing, "nothing below an event", no_overlay),
        // Grouping.
        c(procs, Char('g'), Redraw, "g groups processes", |a| {
            a.grouped
        }),
        c(pools, Char('g'), Nothing, "g is for processes", |a| {
            !a.grouped
        }),
    ]);
    for t in [Tab::Pools, Tab::Processes] {
        let d = Ctx::Drill(t);
        v.extend([
            c(d, Esc, Redraw, "Esc closes the drill-down", |a| {
                a.drill.is_none()
            }),
            c(d, Left, Redraw, "← too", |a| a.drill.is_none()),
            c(d, Char('h'), Redraw, "h too", |a| a.drill.is_none()),
            c(d, Down, Redraw, "↓ scrolls sockets", |a| {
                a.drill.as_ref().unwrap().scroll == 1
            }),
            c(d, Char('j'), Redraw, "j too", |a| {
                a.drill.as_ref().unwrap().scroll == 1
            }),
            c(d, Up, Redraw, "↑ at the top", |a| {
                a.drill.as_ref().unwrap().scroll == 0
            }),
            c(d, End, Redraw, "End: last socket", |a| {
                a.drill.as_ref().unwrap().scroll == a.drill_rows.len() - 1
            }),
            c(d, PageDown, Redraw, "PgDn", |a| a.drill.is_some()),
            c(d, Char('s'), Redraw, "s: sockets by state", |a| {
                a.drill.as_ref().unwrap().sort == 1
            }),
            c(d, Char('?'), Redraw, "help over the drill-down", |a| {
                a.help && a.drill.is_some()
            }),
            c(d, Char('q'), Quit, "q quits", |_| true),
            c(d, TabKey, Redraw, "Tab leaves the drill-down", |a| {
                a.drill.is_none()
            }),
            c(d, Char('3'), Redraw, "so do digits", |a| {
                a.drill.is_none() && a.tab == Tab::Processes
            }),
            c(d, Enter, Nothing, "Enter in a drill-down", |a| {
                a.drill.is_some()
            }),
        ]);
    }
    v
}

#[test]
fn every_key_does_what_the_help_says() {
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        let (mut app, _) = setup(case.ctx);
        let got = on_key(&mut app, case.key);
        let tab_ok = case.tab.is_none_or(|t| t == app.tab);
        if got != case.want || !(case.then)(&app) || !tab_ok {
            failures.push(format!(
                "{:?} {:?}: {} — got {got:?}, want {:?}{}",
                case.ctx,
                case.key.code,
                case.what,
                case.want,
                if (case.then)(&app) && tab_ok {
                    ""
                } else {
                    ", state check failed"
                }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_key_in_the_help() {
    let all = cases();
    for (section, keys) in HELP {
        for k in keys.iter() {
            for code in k.codes {
                assert!(
                    all.iter()
                        .any(|c| c.key.code == *code
                            && !matches!(c.ctx, Ctx::Help(_) | Ctx::Typing(_))),
                    "{section}: {} ({code:?}) has no case outside overlays",
                    k.keys
                );
            }
        }
    }
}

#[test]
fn display_pause_holds_data_and_events_until_resumed() {
    let (mut app, inc) = fixtures::app_with(true);
    let before = app.view.snapshot.clone();
    on_key(&mut app, key(KeyCode::Char('p')));
    let mut later = fixtures::view(&inc, SourceInfo::Live);
    later.snapshot.at_ns += 5_000_000_000;
    app.update(later);
    app.push_events(&inc.events[..3]);
    assert_eq!(app.view.snapshot, before, "frozen while paused");
    let shown = app.events.total();
    on_key(&mut app, key(KeyCode::Char('p')));
    assert_eq!(app.view.snapshot.at_ns, before.at_ns + 5_000_000_000);
    assert_eq!(app.events.total(), shown + 3);
}

#[test]
fn selection_follows_its_row_across_refreshes() {
    let (mut app, inc) = fixtures::app_with(true);
    on_key(&mut app, key(KeyCode::Char('3')));
    on_key(&mut app, key(KeyCode::Down));
    assert_eq!(app.selected_process().unwrap().process.pid, 2100);
    // The next refresh lists java first: the selection moves with it.
    let mut v = fixtures::view(&inc, SourceInfo::Live);
    v.snapshot.processes.swap(0, 1);
    app.update(v);
    assert_eq!(app.sel[Tab::Processes.index()], 0);
    assert_eq!(app.selected_process().unwrap().process.pid, 2100);
}

#[test]
fn a_group_opens_as_its_processes() {
    let (mut app, _) = fixtures::app_with(true);
    for k in [KeyCode::Char('3'), KeyCode::Char('g'), KeyCode::Enter] {
        on_key(&mut app, key(k));
    }
    assert!(!app.grouped);
    assert_eq!(app.filter(), "curl");
    assert!(app.rows.processes.len() == 13);
}

#[test]
fn failure_with_a_pool_drills_into_it() {
    let (mut app, inc) = fixtures::app_with(true);
    for k in [
        KeyCode::Char('5'),
        KeyCode::Down,
        KeyCode::Down,
        KeyCode::Enter,
    ] {
        on_key(&mut app, key(k));
    }
    assert_eq!(
        app.drill_request(),
        Some(DrillTarget::Pool(inc.curl_pool()))
    );
}

#[test]
fn d_on_an_inbound_finding_drills_into_its_process() {
    let (mut app, _) = fixtures::app_with(true);
    for k in [KeyCode::Down, KeyCode::Char('d')] {
        on_key(&mut app, key(k));
    }
    assert_eq!(app.drill_request(), Some(DrillTarget::Process { pid: 800 }));
    on_key(&mut app, key(KeyCode::Esc));
    assert_eq!(app.drill_request(), None, "Esc ends the request");
}

#[test]
fn restore_without_a_terminal_is_a_no_op() {
    assert!(crate::tui::restore().is_ok());
    assert!(crate::tui::restore().is_ok());
}
