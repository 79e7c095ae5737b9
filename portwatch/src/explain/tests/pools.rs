//! Pool rules: TIME_WAIT churn, concurrency, SYN_SENT pile-up; before and after exhaustion;
//! busy but healthy pools give nothing.

use super::{assert_sound, causes, helps, one, sim::Sim};
use crate::{
    explain::{Cause, Severity, explain},
    model::testutil::*,
};

const SRC: &str = "10.0.0.5";
const API: &str = "10.1.2.3:443";

fn gw(_: u64) -> crate::event::Task {
    task(2314, "api-gw")
}

#[test]
fn busy_but_healthy_pools_give_no_finding() {
    let mut sim = Sim::default_range();
    // 100/s churn settles at 6,000 TIME_WAIT (21 %); 2,000 long-lived connections elsewhere.
    sim.churn(gw, SRC, API, 100.0, 70.0)
        .open(task(7, "db-pool"), SRC, "10.1.2.4:5432", 2000, 5.0)
        .advance(6.0);
    let fs = explain(&sim.m, sim.now());
    assert!(fs.is_empty(), "{fs:#?}");
}

#[test]
fn time_wait_churn_heading_for_trouble_is_a_warning() {
    // 400/s × 60 s = 24,000 of 28,232 ports (85 %) once TIME_WAIT settles.
    let mut sim = Sim::default_range();
    sim.churn(gw, SRC, API, 400.0, 30.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert_eq!(
        causes(&fs),
        vec![
            (Cause::TimeWaitChurn, Severity::Warning),
            (Cause::Config, Severity::Info)
        ]
    );
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!(
        (f.pid, f.comm.as_deref(), f.process_count),
        (Some(2314), Some("api-gw"), 1)
    );
    assert_eq!(
        (
            f.src_ip.map(|s| s.to_string()).as_deref(),
            f.dst.map(|d| d.to_string()).as_deref()
        ),
        (Some(SRC), Some(API))
    );
    assert_eq!(f.capacity, Some(28232));
    assert_eq!(f.eta_s, None, "levels off below capacity");
    assert!((f.rate_per_s.unwrap() - 400.0).abs() < 1.0, "{f:#?}");
    assert!(f.evidence.contains("24,000"), "{}", f.evidence);
    assert_eq!(helps(f, "connection_pooling"), Some(true));
    assert_eq!(
        helps(f, "tcp_tw_reuse"),
        Some(true),
        "2 does not cover 10.1.2.3"
    );
    assert_eq!(helps(f, "tcp_fin_timeout"), Some(false));
    let widen = f
        .remedies
        .iter()
        .find(|r| r.id == "widen_port_range")
        .unwrap();
    assert!(widen.helps && widen.why.contains("50,000") && widen.why.contains("enough"));
    // and 70 s later, steady: still a warning, not worse.
    sim.churn(gw, SRC, API, 400.0, 40.0);
    let fs = explain(&sim.m, sim.now());
    assert_eq!(one(&fs, Cause::TimeWaitChurn).severity, Severity::Warning);
}

#[test]
fn time_wait_churn_critical_before_and_after_exhaustion() {
    let mut sim = Sim::range(40000, 40999, 2);
    // 25/s needs 1,500 of 1,000 ports: 20 s in, 500 used and 20 s left.
    sim.churn(gw, SRC, API, 25.0, 20.0);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!(f.severity, Severity::Critical);
    let eta = f.eta_s.unwrap();
    assert!(eta > 10.0 && eta < 30.0, "eta {eta}");
    assert!(f.errors.is_empty());
    assert!(f.title.contains("run out in"), "{}", f.title);
    // After: out of ports, EADDRNOTAVAIL.
    sim.churn(gw, SRC, API, 25.0, 30.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.eta_s, Some(0.0));
    assert!(f.errors["EADDRNOTAVAIL"] > 100, "{:?}", f.errors);
    assert_eq!((f.in_use, f.capacity), (Some(1000), Some(1000)));
    assert!(f.title.contains("out of source ports"), "{}", f.title);
    assert!(f.evidence.contains("EADDRNOTAVAIL"), "{}", f.evidence);
}

#[test]
fn short_lived_processes_are_one_finding() {
    let mut sim = Sim::range(40000, 40999, 2);
    // A shell loop (pid 4120) running curl: one connection per process.
    sim.churn(
        |k| child_task(10_000 + k as u32, 4120, "curl"),
        SRC,
        API,
        25.0,
        50.0,
    );
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!((f.comm.as_deref(), f.ppid), (Some("curl"), Some(4120)));
    assert_eq!(f.process_count, 1000, "every process holding a port");
    // The latest with a port: the last 250 found none.
    assert_eq!(f.pid, Some(10_000 + 999), "the latest");
    assert!(
        f.who().starts_with("1,000 curl processes (parent 4120"),
        "{}",
        f.who()
    );
}

#[test]
fn tw_reuse_that_covers_the_pool_means_no_churn_finding() {
    // Loopback with the default tcp_tw_reuse=2: TIME_WAIT does not block connect().
    let mut sim = Sim::range(40000, 40999, 2);
    sim.churn(gw, "127.0.0.1", "127.0.0.1:8080", 25.0, 30.0);
    let fs = explain(&sim.m, sim.now());
    assert!(fs.is_empty(), "{fs:#?}");
}

#[test]
fn concurrency_never_suggests_tw_reuse() {
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(task(300, "java"), SRC, API, 800, 10.0)
        .advance(6.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::Concurrency);
    assert_eq!(
        f.severity,
        Severity::Warning,
        "80 % and not growing any more"
    );
    assert_eq!(f.states["ESTABLISHED"], 800);
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
    assert!(
        f.remedies
            .iter()
            .any(|r| r.id == "more_destination_addresses" && r.helps)
    );
    assert!(
        f.remedies
            .iter()
            .any(|r| r.id == "more_source_addresses" && r.helps)
    );
    // Growing at 20/s: 200 ports left, gone in ~10 s → critical before exhaustion.
    sim.open(task(300, "java"), SRC, API, 100, 5.0);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::Concurrency);
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.eta_s.unwrap() < 60.0, "{:?}", f.eta_s);
    // Out of ports: EADDRNOTAVAIL.
    sim.open(task(300, "java"), SRC, API, 150, 5.0);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::Concurrency);
    assert_eq!((f.severity, f.eta_s), (Severity::Critical, Some(0.0)));
    assert_eq!(f.errors["EADDRNOTAVAIL"], 50);
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
}

#[test]
fn syn_sent_pileup_blames_the_destination() {
    let mut sim = Sim::default_range();
    sim.open(task(300, "java"), SRC, API, 20, 1.0).syn_sent(
        task(300, "java"),
        SRC,
        "10.9.9.9:443",
        150,
    );
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::SynSentPileup);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.dst.map(|d| d.to_string()).as_deref(),
        Some("10.9.9.9:443")
    );
    assert_eq!(f.states["SYN_SENT"], 150);
    assert_eq!(helps(f, "check_destination"), Some(true));
    assert_eq!(helps(f, "widen_port_range"), Some(false));
    assert!(
        f.evidence.contains("ports are not the problem"),
        "{}",
        f.evidence
    );
}

#[test]
fn a_few_syn_sent_in_a_busy_pool_are_normal() {
    let mut sim = Sim::default_range();
    sim.open(task(300, "java"), SRC, API, 500, 2.0)
        .syn_sent(task(300, "java"), SRC, API, 30);
    assert!(explain(&sim.m, sim.now()).is_empty());
}

#[test]
fn concurrency_filling_slowly_is_a_warning_with_eta() {
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(task(300, "java"), SRC, API, 300, 10.0)
        .open(task(300, "java"), SRC, API, 30, 15.0);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::Concurrency);
    // 670 ports left at 2/s: about 5.6 min.
    assert_eq!(f.severity, Severity::Warning);
    let eta = f.eta_s.unwrap();
    assert!(eta > 60.0 && eta < 600.0, "eta {eta}");
    assert!(f.title.contains("run out in ~"), "{}", f.title);
    // Once growth stops, nothing: 33 % and steady is healthy.
    sim.advance(20.0);
    assert!(explain(&sim.m, sim.now()).is_empty());
}

#[test]
fn past_exhaustion_fades_to_info() {
    let mut sim = Sim::range(40000, 40999, 2);
    sim.churn(gw, SRC, API, 25.0, 50.0);
    assert_eq!(explain(&sim.m, sim.now())[0].severity, Severity::Critical);
    // The churn stops; TIME_WAIT drains; the EADDRNOTAVAIL stays on record.
    sim.advance(130.0);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!((f.severity, f.in_use), (Severity::Info, Some(0)));
    assert_eq!(
        (f.pid, f.process_count),
        (Some(2314), 1),
        "named by its failures"
    );
    assert!(
        f.evidence.contains("failed") && f.evidence.contains("earlier"),
        "{}",
        f.evidence
    );
}

/// A program is recognised by what it executes: Envoy's worker threads are `wrk:worker_0`,
/// and as the process's `comm` that is also wrk's name, the load generator's; the learned
/// executable decides, through the model's input, and the finding says it.
#[test]
fn a_renamed_thread_is_recognised_by_its_executable() {
    let worker = |_| task(2400, "wrk:worker_0");
    let mut sim = Sim::range(40000, 40999, 2);
    sim.churn(worker, SRC, API, 25.0, 50.0);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::TimeWaitChurn);
    assert!(
        f.remedies.iter().all(|r| r.source.is_none()),
        "not yet known"
    );
    assert_eq!(sim.m.processes_to_resolve().len(), 1);
    let learned = vec![crate::model::ProcessExe {
        pid: 2400,
        comm: "wrk:worker_0".into(),
        exe: "envoy".into(),
    }];
    let at = sim.now();
    sim.m.feed(&crate::model::Input::Executables(
        crate::model::Stamped::new(at, learned),
    ));
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::TimeWaitChurn);
    assert_eq!(f.remedies[0].id, "envoy_upstream_reuse", "{:?}", f.remedies);
    assert_eq!(f.exe.as_deref(), Some("envoy"));
    assert_eq!(f.who(), "wrk:worker_0 (pid 2400, running envoy)");
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["exe"], "envoy");
}
