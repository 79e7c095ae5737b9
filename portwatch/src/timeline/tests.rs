//! The timeline of a TIME_WAIT exhaustion simulated through the real model and rules: the
//! pool fills to capacity, failures start when it is full, the finding's span opens then and
//! stays open; one sample per second however often it is fed.

use super::*;
use crate::{
    explain::{Cause, Severity, explain, tests::sim::Sim},
    model::testutil::task,
};

const SRC: &str = "127.0.0.1";
const DST: &str = "127.0.0.1:8080";

fn feed(t: &mut Timeline, sim: &Sim) {
    let now = sim.now();
    if t.due(now) {
        t.sample(now, &sim.m.pools(now, 10), &explain(&sim.m, now));
    }
}

#[test]
fn a_time_wait_exhaustion_fills_the_pool_then_fails() {
    // 50 ports, 20 connections/s, each closed first by the client: full in 2.5 s.
    let mut sim = Sim::range(40000, 40049, 0);
    let mut t = Timeline::new();
    let t0 = sim.now();
    feed(&mut t, &sim);
    for _ in 0..8 {
        // Fed four times a second; sampled once.
        for _ in 0..4 {
            sim.churn(|_| task(4242, "client"), SRC, DST, 20.0, 0.25);
            feed(&mut t, &sim);
        }
    }
    assert_eq!(t.pools().len(), 1);
    let p = &t.pools()[0];
    assert_eq!(p.key.dst.to_string(), DST);
    assert!((8..=10).contains(&p.samples.len()), "{}", p.samples.len());
    for w in p.samples.windows(2) {
        assert!(w[1].t_ns >= w[0].t_ns + 1_000_000_000, "{w:?}");
    }
    assert_eq!(p.capacity(), 50);
    assert_eq!(p.peak_in_use(), 50);
    let full = p.first_full_ns().expect("never full");
    let failing = p.first_failure_ns().expect("never failed");
    assert!(failing >= full, "failures before the pool was full");
    assert!(full - t0 <= 4_000_000_000, "full too late");
    let tw = p
        .samples
        .last()
        .unwrap()
        .states
        .get(crate::event::TcpState::TimeWait);
    assert_eq!(tw, 50, "TIME_WAIT holds the pool");
    assert_eq!(p.failures(), sim.m.pools(sim.now(), 1)[0].eaddrnotavail);

    let span = t
        .spans()
        .iter()
        .find(|s| s.key.cause == Cause::TimeWaitChurn)
        .expect("no churn span");
    assert_eq!(span.severity, Severity::Critical);
    assert!(span.open);
    assert!(
        span.first_ns <= failing,
        "the finding came after the failures"
    );
    assert_eq!(span.last_ns, p.samples.last().unwrap().t_ns);
}

#[test]
fn a_finding_that_goes_away_ends_its_span_and_a_return_opens_another() {
    let mut sim = Sim::range(40000, 40049, 0);
    let mut t = Timeline::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        sim.churn(|_| task(4242, "client"), SRC, DST, 20.0, 1.0);
        let now = sim.now();
        seen = explain(&sim.m, now);
        t.sample(now, &sim.m.pools(now, 10), &seen);
    }
    // The rules stop reporting it for two seconds, then report it again.
    for k in 0..3 {
        sim.advance(1.0);
        let now = sim.now();
        let findings = if k < 2 { &[][..] } else { &seen[..] };
        t.sample(now, &sim.m.pools(now, 10), findings);
        if k == 0 {
            let span = &t.spans()[0];
            assert!(!span.open && span.last_ns < now, "{span:?}");
        }
    }
    let churn: Vec<_> = t
        .spans()
        .iter()
        .filter(|s| s.key.cause == Cause::TimeWaitChurn)
        .collect();
    assert_eq!(churn.len(), 2, "{churn:#?}");
    assert!(!churn[0].open && churn[1].open);
    assert!(churn[1].first_ns > churn[0].last_ns);
    // Samples of model time already sampled are ignored.
    let n = t.pools()[0].samples.len();
    t.sample(sim.now(), &sim.m.pools(sim.now(), 10), &[]);
    assert_eq!(t.pools()[0].samples.len(), n);
}

#[test]
fn a_window_forgets_old_samples_and_pools_no_longer_shown() {
    let mut sim = Sim::range(40000, 40049, 0);
    let mut t = Timeline::window(5);
    for _ in 0..8 {
        sim.churn(|_| task(4242, "client"), SRC, DST, 2.0, 1.0);
        feed(&mut t, &sim);
    }
    let p = &t.pools()[0];
    let key = p.key;
    assert!((5..=6).contains(&p.samples.len()), "{}", p.samples.len());
    assert!(sim.now() - p.samples[0].t_ns <= 5 * SEC);
    // Shown no more (an empty picture) for longer than the window: forgotten.
    for _ in 0..7 {
        sim.advance(1.0);
        let now = sim.now();
        t.sample(now, &[], &[]);
    }
    assert!(t.pools().is_empty());
    assert!(t.pool(&key).is_none());
    assert!(t.spans().is_empty());
}
