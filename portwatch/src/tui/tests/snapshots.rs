//! Every view rendered from the fixture into ratatui's `TestBackend`, at 80×24 (the smallest
//! supported terminal) and 200×50.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::Color;

use super::fixtures::{self, CURL_DST, answer_drill, app, screen, terminal};
use crate::tui::{App, Options, SourceInfo, ViewData, on_key};

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 50)];

fn snap(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen(app, w, h));
    }
}

fn press(app: &mut App, keys: &[KeyCode]) {
    for &k in keys {
        on_key(app, KeyEvent::from(k));
    }
}

#[test]
fn overview_names_process_destination_cause_and_a_remedy_at_80x24() {
    let app = app();
    let s = screen(&app, 80, 24);
    let first_finding = s.lines().find(|l| l.contains("CRIT")).unwrap();
    for want in ["time_wait_churn", "curl", CURL_DST, "OUT"] {
        assert!(
            first_finding.contains(want),
            "{want} missing from {first_finding}"
        );
    }
    assert!(s.contains("Do this: Reuse connections"), "{s}");
    snap("overview", &app);
}

#[test]
fn expanded_finding() {
    let mut app = app();
    press(&mut app, &[KeyCode::Enter]);
    snap("overview_expanded", &app);
}

#[test]
fn tabs() {
    for (tab, name) in [
        ('2', "pools"),
        ('3', "processes"),
        ('4', "inbound"),
        ('5', "failures"),
        ('6', "events"),
    ] {
        let mut app = app();
        press(&mut app, &[KeyCode::Char(tab)]);
        snap(name, &app);
    }
}

#[test]
fn process_groups_and_filtered_events() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('3'), KeyCode::Char('g')]);
    snap("processes_grouped", &app);

    let mut app = fixtures::app();
    press(&mut app, &[KeyCode::Char('6'), KeyCode::Char('/')]);
    press(
        &mut app,
        &"eaddr".chars().map(KeyCode::Char).collect::<Vec<_>>(),
    );
    snap("events_filtered", &app);
}

#[test]
fn drill_down_into_the_exhausted_pool_and_a_process() {
    let (mut app, inc) = fixtures::app_with(true);
    press(&mut app, &[KeyCode::Char('2'), KeyCode::Enter]);
    snap("drill_loading", &app);
    answer_drill(&mut app, &inc);
    // The chart's history: a sample for each second the App was shown.
    assert!(
        app.series(&inc.curl_pool())
            .is_some_and(|s| s.samples.len() > 10)
    );
    snap("drill_pool", &app);

    let (mut app, inc) = fixtures::app_with(true);
    press(
        &mut app,
        &[KeyCode::Char('3'), KeyCode::Down, KeyCode::Enter],
    );
    answer_drill(&mut app, &inc);
    snap("drill_process", &app);
}

#[test]
fn help_overlay() {
    let mut app = app();
    press(&mut app, &[KeyCode::Char('?')]);
    snap("help", &app);
}

#[test]
fn replay_degraded_and_paused() {
    let inc = fixtures::incident();
    let mut app = App::new(Options::default());
    let mut v = fixtures::view(&inc, fixtures::replay_source());
    v.snapshot.lost_events.state = 1234;
    v.snapshot.lost_events.total = 1234;
    v.snapshot.warnings = vec![
        "timewait hooks unavailable (no BTF for tcp_time_wait): TIME_WAIT comes from snapshots only".into(),
        "netns 4026532000: sysctls unreadable, kernel defaults assumed".into(),
    ];
    app.update(v);
    snap("replay_degraded", &app);
}

#[test]
fn empty_idle_state() {
    let mut app = App::new(Options::default());
    app.update(ViewData::empty(SourceInfo::Live));
    snap("empty", &app);
    for tab in '2'..='6' {
        press(&mut app, &[KeyCode::Char(tab)]);
        snap(&format!("empty_tab{tab}"), &app);
    }
}

#[test]
fn too_small_says_so() {
    insta::assert_snapshot!(screen(&app(), 50, 10));
}

/// Every colour on screen, by cell.
fn colours(app: &App, w: u16, h: u16) -> Vec<(u16, u16, Color, Color)> {
    let t = terminal(app, w, h);
    let buf = t.backend().buffer();
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let c = &buf[(x, y)];
            if c.fg != Color::Reset || c.bg != Color::Reset {
                v.push((x, y, c.fg, c.bg));
            }
        }
    }
    v
}

#[test]
fn no_color_emits_no_colour_anywhere() {
    let (mut app, inc) = fixtures::app_with(false);
    let (mut coloured, _) = fixtures::app_with(true);
    assert!(
        !colours(&coloured, 80, 24).is_empty(),
        "the colour mode must colour"
    );
    let keys: [&[KeyCode]; 9] = [
        &[],
        &[KeyCode::Enter],
        &[KeyCode::Char('2')],
        &[KeyCode::Char('3')],
        &[KeyCode::Char('4')],
        &[KeyCode::Char('5')],
        &[KeyCode::Char('6')],
        &[KeyCode::Char('2'), KeyCode::Enter],
        &[KeyCode::Char('?')],
    ];
    for k in keys {
        press(&mut app, k);
        press(&mut coloured, k);
        answer_drill(&mut app, &inc);
        answer_drill(&mut coloured, &inc);
        for (w, h) in SIZES {
            assert_eq!(colours(&app, w, h), [], "after {k:?} at {w}×{h}");
        }
        // Same text either way: colour only adds to it.
        assert_eq!(screen(&app, 80, 24).len(), screen(&coloured, 80, 24).len());
        press(&mut app, &[KeyCode::Esc, KeyCode::Esc]);
        press(&mut coloured, &[KeyCode::Esc, KeyCode::Esc]);
    }
}
