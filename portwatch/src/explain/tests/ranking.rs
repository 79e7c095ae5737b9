//! Ranking (severity dominates, then urgency) and no duplicates.

use std::collections::HashSet;

use super::{assert_sound, sim::Sim};
use crate::{
    event::CallKind,
    explain::{Cause, Severity, explain},
    model::testutil::*,
};

#[test]
fn severity_dominates_then_urgency_and_no_duplicates() {
    let mut sim = Sim::range(40000, 40999, 0);
    // Warning: 800 of 1,000 ports ESTABLISHED toward one destination (80 %).
    sim.open(task(300, "java"), "10.0.0.5", "10.1.0.1:443", 800, 10.0);
    // Info: 8 old CLOSE_WAIT.
    sim.close_wait(task(10, "app"), "10.0.0.5", "10.0.0.9:5432", 8);
    sim.advance(120.0);
    // Critical, though nothing is full: a bind conflict right now.
    sim.s
        .call_err(
            task(55, "srv"),
            CallKind::Bind,
            None,
            "0.0.0.0:80",
            libc::EADDRINUSE,
        )
        .run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let got: Vec<(Cause, Severity)> = fs.iter().map(|f| (f.cause, f.severity)).collect();
    assert_eq!(
        got,
        vec![
            (Cause::BindConflict, Severity::Critical),
            (Cause::Concurrency, Severity::Warning),
            (Cause::CloseWaitLeak, Severity::Info),
        ]
    );
    assert!(fs.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(fs[0].score >= 300.0 && fs[1].score < 300.0 && fs[2].score < 200.0);
    let ids: HashSet<_> = fs.iter().map(|f| (f.cause, f.dst)).collect();
    assert_eq!(ids.len(), fs.len());
}

#[test]
fn same_destination_in_two_namespaces_is_two_findings() {
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(task(300, "java"), "10.0.0.5", "10.1.0.1:443", 800, 10.0);
    sim.s.in_netns(NETNS + 1);
    sim.m
        .set_sysctls(NETNS + 1, sysctls((40000, 40999), &[], 0));
    for k in 0..800u16 {
        sim.s.connect(
            task(301, "java"),
            0x9_0000 + u64::from(k),
            "10.0.0.5",
            40000 + k,
            "10.1.0.1:443",
        );
    }
    sim.s.run(&mut sim.m);
    sim.advance(10.0);
    let fs = explain(&sim.m, sim.now());
    let ns: Vec<u32> = fs
        .iter()
        .filter(|f| f.cause == Cause::Concurrency)
        .map(|f| f.netns)
        .collect();
    assert_eq!(ns.len(), 2, "{fs:#?}");
    assert!(ns.contains(&NETNS) && ns.contains(&(NETNS + 1)));
}
