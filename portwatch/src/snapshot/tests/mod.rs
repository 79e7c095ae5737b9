//! The snapshot: tables taken once and cut to the limits, findings the same as `explain`'s,
//! pool severities aligned with the pools.

mod cells;
mod cost;
mod views;

use super::{Limits, LostEvents, Snapshot};
use crate::{explain::explain, report::tests::churn_exhaustion};

#[test]
fn one_snapshot_holds_the_findings_and_the_cut_tables() {
    let (sim, _) = churn_exhaustion();
    let now = sim.now();
    let lim = Limits {
        pools: 1,
        ..Limits::REPORT
    };
    let s = Snapshot::build(&sim.m, now, &lim, LostEvents::default(), vec!["w".into()]);
    assert_eq!(s.findings, explain(&sim.m, now));
    assert_eq!(s.pools, sim.m.pools(now, 1));
    assert_eq!(s.pool_severity.len(), s.pools.len());
    assert_eq!(s.processes, sim.m.processes(10));
    assert_eq!(s.process_groups, sim.m.process_groups(10));
    assert_eq!(s.listeners, sim.m.listeners(5, 5));
    assert_eq!(s.close_wait, sim.m.close_wait(now, 10));
    assert_eq!(s.warnings, ["w"]);
    // The pool that is out of ports is the most urgent, and critical.
    assert_eq!(s.pools[0].dst.to_string(), "10.1.2.3:443");
    assert_eq!(
        s.severity_of_pool(0),
        Some(crate::explain::Severity::Critical)
    );
}

#[test]
fn the_recent_failures_kept_are_the_newest() {
    let (sim, _) = churn_exhaustion();
    let now = sim.now();
    let all = sim.m.failures(usize::MAX).recent;
    let lim = Limits {
        recent_failures: 3,
        ..Limits::REPORT
    };
    let s = Snapshot::build(&sim.m, now, &lim, LostEvents::default(), Vec::new());
    assert_eq!(s.failures.recent, all[all.len() - 3..]);
}
