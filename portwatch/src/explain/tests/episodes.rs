//! Episode findings: the incident (a pool full of ESTABLISHED, connects failing, then
//! every connection reset) stays "too many concurrent connections" while its failures are
//! recent and after the episode ended — never TIME_WAIT churn from the one timewait socket
//! left — and a past episode ranks below what fails now.

use super::{assert_sound, helps, sim::Sim};
use crate::{
    explain::{Cause, Finding, Severity, explain},
    model::testutil::*,
};

const SRC: &str = "10.0.0.5";
const API: &str = "10.1.2.3:443";
const DB: &str = "10.1.2.4:5432";

fn about<'a>(fs: &'a [Finding], dst: &str) -> Vec<&'a Finding> {
    fs.iter()
        .filter(|f| f.dst.is_some_and(|d| d.to_string() == dst))
        .collect()
}

/// 1,000 ports, 1,500 wanted by `loadgen` (pid 77): 500 connects fail; then all reset.
fn incident() -> Sim {
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(task(77, "loadgen"), SRC, API, 1500, 1.0);
    sim.advance(2.0);
    sim
}

fn assert_concurrency(f: &Finding, sev: Severity) {
    assert_eq!((f.cause, f.severity), (Cause::Concurrency, sev), "{f:#?}");
    assert_eq!((f.pid, f.comm.as_deref()), (Some(77), Some("loadgen")));
    assert_eq!(f.errors.get("EADDRNOTAVAIL"), Some(&500), "{f:#?}");
    assert_eq!(helps(f, "more_destination_addresses"), Some(true));
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
    assert_eq!(helps(f, "connection_pooling"), None);
    let e = f.episode.as_ref().expect("about the episode");
    assert_eq!(e.composition.get("ESTABLISHED"), Some(&1000), "{e:#?}");
    assert_eq!(e.failures, 500);
}

#[test]
fn concurrency_ended_by_reset_keeps_its_cause() {
    let mut sim = incident();
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = about(&fs, API)[0];
    assert_concurrency(f, Severity::Critical);
    assert!(f.episode.as_ref().unwrap().ongoing);
    // It stops: every connection reset, one port left in a timewait socket (the issue's
    // "1 of the 1,000 ports in TIME_WAIT").
    sim.reset_all(SRC, API)
        .churn(|_| task(77, "loadgen"), SRC, API, 1.0, 1.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let v = about(&fs, API);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_concurrency(v[0], Severity::Critical);
    assert!(
        v[0].evidence.starts_with("When connect() failed"),
        "{}",
        v[0].evidence
    );
    assert!(
        v[0].evidence.contains("now 1 of the 1,000 ports"),
        "{}",
        v[0].evidence
    );
    // Quiet for 10 s: the episode ended; its finding is past, info, still concurrency.
    sim.advance(15.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let v = about(&fs, API);
    assert_eq!(v.len(), 1, "{v:#?}");
    let f = v[0];
    assert_concurrency(f, Severity::Info);
    let e = f.episode.as_ref().unwrap();
    assert!(!e.ongoing && e.ended_s_ago.unwrap() >= 5.0, "{e:#?}");
    assert!(f.title.contains("past episode"), "{}", f.title);
    assert_eq!((f.in_use, f.capacity, f.eta_s), (Some(1), Some(1000), None));
    assert!(!fs.iter().any(|f| f.cause == Cause::TimeWaitChurn));
}

#[test]
fn a_past_episode_ranks_below_what_fails_now() {
    let mut sim = incident();
    sim.reset_all(SRC, API).advance(15.0);
    // Another pool now fails.
    sim.open(task(78, "db-pool"), SRC, DB, 1100, 1.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert_eq!(fs[0].dst.unwrap().to_string(), DB);
    assert_eq!(fs[0].severity, Severity::Critical);
    assert!(fs[0].episode.as_ref().is_some_and(|e| e.ongoing));
    let past = about(&fs, API)[0];
    assert!(past.is_past() && past.severity == Severity::Info);
    assert!(past.score < fs[0].score);
}
