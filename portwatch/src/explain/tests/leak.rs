//! CLOSE_WAIT leak.

use super::{assert_sound, helps, one, sim::Sim};
use crate::{
    explain::{Cause, Severity, explain},
    model::testutil::*,
};

const SRC: &str = "10.0.0.5";
const DB: &str = "10.0.0.9:5432";

#[test]
fn old_and_growing_close_wait_is_a_leak() {
    let app = task(10, "app");
    let mut sim = Sim::default_range();
    sim.close_wait(app, SRC, DB, 40)
        .advance(300.0)
        .close_wait(app, SRC, DB, 10)
        .advance(5.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::CloseWaitLeak);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        (f.pid, f.comm.as_deref(), f.process_count),
        (Some(10), Some("app"), 1)
    );
    assert_eq!(f.states["CLOSE_WAIT"], 50);
    assert_eq!(f.dst.map(|d| d.to_string()).as_deref(), Some(DB));
    assert!(
        f.evidence.contains("the oldest for 5 min"),
        "{}",
        f.evidence
    );
    assert!(
        f.evidence.contains("10 new in the last minute"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "fix_close_path"), Some(true));
    assert_eq!(helps(f, "tcp_fin_timeout"), Some(false));
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
}

#[test]
fn young_close_wait_is_not_a_leak() {
    let mut sim = Sim::default_range();
    sim.close_wait(task(10, "app"), SRC, DB, 30).advance(10.0);
    assert!(explain(&sim.m, sim.now()).is_empty());
}

#[test]
fn old_but_few_and_stable_is_info() {
    let mut sim = Sim::default_range();
    sim.close_wait(task(10, "app"), SRC, DB, 8).advance(120.0);
    let fs = explain(&sim.m, sim.now());
    assert_eq!(one(&fs, Cause::CloseWaitLeak).severity, Severity::Info);
}

#[test]
fn close_wait_filling_a_pool_is_critical() {
    let mut sim = Sim::range(40000, 40099, 0);
    sim.close_wait(task(10, "app"), SRC, DB, 90)
        .advance(120.0)
        .close_wait(task(10, "app"), SRC, DB, 10)
        .open(task(10, "app"), SRC, DB, 5, 1.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::CloseWaitLeak);
    assert_eq!((f.severity, f.eta_s), (Severity::Critical, Some(0.0)));
    assert_eq!(f.errors["EADDRNOTAVAIL"], 5);
    assert!(f.title.contains("out of source ports"), "{}", f.title);
    // The pool rules leave it to the leak finding.
    assert!(
        fs.iter().all(|f| f.cause == Cause::CloseWaitLeak),
        "{fs:#?}"
    );
}

#[test]
fn hundreds_of_new_close_wait_in_a_minute_is_a_warning_however_young() {
    let mut sim = Sim::default_range();
    sim.close_wait(task(10, "app"), SRC, DB, 250).advance(10.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert_eq!(one(&fs, Cause::CloseWaitLeak).severity, Severity::Warning);
}
