//! Every figure fits its column at 80 columns: a pool out of its 28,232 ports (the kernel's
//! default range) and thousands of sockets per state, exhaustion hours away.

use crossterm::event::{KeyCode, KeyEvent};

use super::fixtures::screen;
use crate::{
    event::TcpState,
    report::tests::churn_exhaustion,
    snapshot::{Limits, LostEvents, Snapshot},
    tui::{App, Options, SourceInfo, ViewData, on_key},
};

fn pools_tab(snapshot: Snapshot, w: u16, h: u16) -> String {
    let mut app = App::new(Options::default());
    app.update(ViewData {
        snapshot,
        source: SourceInfo::Live,
        drill: None,
    });
    on_key(&mut app, KeyEvent::from(KeyCode::Char('2')));
    screen(&app, w, h)
}

#[test]
fn pool_figures_fit_their_columns_at_80_columns() {
    let (sim, ctx) = churn_exhaustion();
    let mut snap = Snapshot::build(
        &sim.m,
        ctx.window_end_ns,
        &Limits::screen(50),
        LostEvents::default(),
        Vec::new(),
    );
    // Hours to go, in the longest form a duration takes, and tens of thousands of sockets
    // in a narrow column.
    let p = &mut snap.pools[1];
    p.time_to_exhaustion_s = Some(10.0 * 3600.0 + 59.0 * 60.0);
    p.states.add(TcpState::Established, 12_325);
    p.states.add(TcpState::FinWait2, 23_456);
    for (w, h) in [(80, 24), (200, 50)] {
        let s = pools_tab(snap.clone(), w, h);
        let table: Vec<&str> = s.lines().skip(5).take(4).collect();
        assert!(
            table[2].contains(if w < 100 { "12k" } else { "12,345" }),
            "{s}"
        );
        for l in &table {
            assert!(
                !l.contains('…'),
                "a figure cut at {w} columns:\n{}",
                table.join("\n")
            );
        }
    }
}
