//! The one entry point: every kind of input through `Model::feed`.

use crate::{
    collect::Counters,
    model::{Input, MAX_WARNINGS, Model, Stamped, testutil::*},
};

#[test]
fn each_input_lands_where_the_views_read_it() {
    let mut m = Model::default();
    let t = 5 * SEC;
    m.feed(&Input::Startup(Stamped::new(
        t,
        snapshot(
            t,
            Some(sysctls((40000, 40009), &[], 0)),
            vec![snap_sock(
                "10.0.0.1:40000",
                "10.0.0.5:443",
                Established,
                Some((7, "curl")),
            )],
        ),
    )));
    assert_eq!(m.totals().all.get(Established), 1);
    assert_eq!(m.sysctls_for(NETNS).unwrap().0.port_range, (40000, 40009));

    let mut loss = Counters::default();
    loss.call.lost = 4;
    m.feed(&Input::Loss(Box::new(Stamped::new(t + SEC, loss))));
    assert_eq!(m.loss().call.lost, 4);
    assert_eq!(m.now_ns(), t + SEC);

    // The kernel no longer lists the socket: reconciliation removes it, and says so.
    m.feed(&Input::Reconcile(Stamped::new(
        t + 2 * SEC,
        snapshot(t + 2 * SEC, None, Vec::new()),
    )));
    assert_eq!(m.totals().all.get(Established), 0);
    assert!(!m.last_corrections().is_empty());
    assert_eq!(m.counters().reconciliations, 1);

    m.feed(&Input::Tick(t + 3 * SEC));
    assert_eq!(m.now_ns(), t + 3 * SEC);
    assert_consistent(&m);
}

#[test]
fn warnings_are_kept_once_and_bounded() {
    let mut m = Model::default();
    for _ in 0..3 {
        m.feed(&Input::warning(1, "reconciliation failed: x"));
    }
    assert_eq!(m.warnings().texts, ["reconciliation failed: x"]);
    assert_eq!(m.warnings().dropped, 2);
    for i in 0..2 * MAX_WARNINGS {
        m.feed(&Input::warning(2, format!("netns {i}: gone")));
    }
    assert_eq!(m.warnings().texts.len(), MAX_WARNINGS);
    assert_eq!(m.warnings().dropped, 2 + MAX_WARNINGS as u64 + 1);
}

#[test]
fn a_window_runs_from_the_first_input_to_the_last() {
    let mut m = Model::default();
    // Nothing fed yet: the caller's start (the host's), empty.
    assert_eq!(m.window_ns(2 * SEC), (2 * SEC, 2 * SEC));
    // The command started at 2 s; the programs were attached and the start-up snapshot taken
    // at 3 s; `--duration 3` ends with the tick at 6 s: a 3 s window, not 4.
    m.feed(&Input::Startup(Stamped::new(
        3 * SEC,
        snapshot(3 * SEC, None, Vec::new()),
    )));
    m.feed(&Input::Tick(6 * SEC));
    assert_eq!(m.window_ns(2 * SEC), (3 * SEC, 6 * SEC));
    assert_eq!(m.start_ns(), Some(3 * SEC));
}
