//! The timeline chart of a pool that fills, a second at a time, with three states until it is
//! out of ports: each state's texture stacked in order (ESTABLISHED at the bottom, TIME_WAIT
//! on top), the stack at the capacity once full, failures in the seconds they happened, one
//! colour per state. The App is fed one snapshot a second through `update`, as a session
//! feeds it.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::style::Color;

use super::fixtures::{screen, terminal};
use crate::{
    event::TwOp,
    model::{Model, testutil::*},
    snapshot::{Limits, LostEvents, Snapshot},
    tui::{App, Options, SourceInfo, ViewData, on_key},
};

const DST: &str = "10.0.0.5:443";

/// 3 ESTABLISHED, 2 SYN_SENT, 5 TIME_WAIT in a 10-port pool, then two failed connects; the
/// App shown every second, on the Pools tab.
fn filled(color: bool) -> App {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut app = App::new(Options {
        color,
        ..Options::default()
    });
    let mut s = Seq::new();
    for i in 0..12u16 {
        s.advance(SEC);
        let (port, sk) = (40000 + i, 0x100 + u64::from(i));
        let t = task(500 + u32::from(i), "client");
        match i {
            0..3 => {
                s.connect(t, sk, "10.0.0.1", port, DST);
            }
            3..5 => {
                s.connect_in_progress(t, sk, "10.0.0.1", port, DST);
            }
            5..10 => {
                let (tw, local) = (0x200 + u64::from(i), format!("10.0.0.1:{port}"));
                s.connect(t, sk, "10.0.0.1", port, DST)
                    .active_close(t, sk, tw, &local, DST)
                    .tw(tw, &local, DST, TwOp::Cancel, FinWait2, 59 * 250)
                    .tw(tw, &local, DST, TwOp::Start, TimeWait, 60 * 250);
            }
            _ => {
                s.exhausted(t, sk, "10.0.0.1", DST);
            }
        }
        s.run(&mut m);
        m.tick(s.now());
        app.update(ViewData {
            snapshot: Snapshot::build(
                &m,
                s.now(),
                &Limits::screen(50),
                LostEvents::default(),
                Vec::new(),
            ),
            source: SourceInfo::Live,
            drill: None,
        });
    }
    on_key(&mut app, KeyEvent::from(KeyCode::Char('2')));
    app
}

/// The chart's plot rows (top first) and its failure row, at 80×24.
fn chart_rows(s: &str) -> (Vec<Vec<char>>, Vec<char>) {
    let lines: Vec<Vec<char>> = s
        .lines()
        .map(|l| l.trim_matches('"').chars().collect())
        .collect();
    let fail = lines
        .iter()
        .position(|l| l.iter().collect::<String>().starts_with("fail "))
        .expect("a failure row");
    (lines[fail - 4..fail].to_vec(), lines[fail].clone())
}

#[test]
fn states_stack_in_order_up_to_the_capacity_and_failures_show_when_they_happened() {
    let app = filled(false);
    let s = screen(&app, 80, 24);
    let (plot, fail) = chart_rows(&s);
    let now: String = plot.iter().map(|r| *r.last().unwrap()).rev().collect();
    // 4 rows of 2.5 ports: ESTABLISHED (3) at the bottom, SYN_SENT (2) above, TIME_WAIT (5)
    // up to the capacity.
    assert_eq!(now, "█▒▓▓", "bottom to top, now\n{s}");
    // Three seconds before the first TIME_WAIT: 3 ESTABLISHED and 2 SYN_SENT, half full.
    let before: String = plot.iter().map(|r| r[r.len() - 8]).rev().collect();
    assert_eq!(before, "█▒  ", "bottom to top, 7 s ago\n{s}");
    // Failures in the last two seconds only.
    let tail: String = fail[fail.len() - 3..].iter().collect();
    assert_eq!(tail, " ██", "{s}");
    assert!(
        plot[0].iter().collect::<String>().starts_with("  10 "),
        "{s}"
    );
    insta::assert_snapshot!("chart_three_states_80x24", s);
    insta::assert_snapshot!("chart_three_states_200x50", screen(&app, 200, 50));
}

#[test]
fn each_state_has_its_colour_and_failures_are_red() {
    let app = filled(true);
    let t = terminal(&app, 80, 24);
    let buf = t.backend().buffer();
    let (plot, _) = chart_rows(&screen(&app, 80, 24));
    let fail_y = (0..24)
        .find(|&y| buf[(0, y)].symbol() == "f")
        .expect("the failure row");
    let x = 79;
    let fg = |y: u16| buf[(x, y)].fg;
    assert_eq!(plot.len(), 4);
    assert_eq!(fg(fail_y - 1), Color::Green, "ESTABLISHED");
    assert_eq!(fg(fail_y - 2), Color::Cyan, "SYN_SENT");
    assert_eq!(fg(fail_y - 3), Color::Yellow, "TIME_WAIT");
    assert_eq!(fg(fail_y), Color::Red, "failures");
}
