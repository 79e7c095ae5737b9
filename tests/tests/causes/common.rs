//! Shared by the cause tests (`causes_pools.rs`, `causes_processes.rs`): how a scenario is
//! set up, reported on and checked.
#![allow(dead_code)]

pub use std::{net::SocketAddr, time::Duration};

#[allow(unused_imports)]
pub use portwatch_tests::{Netns, live::*, sh};
pub use serde_json::Value;

pub const SCENARIO: &str = env!("CARGO_BIN_EXE_pw-scenario");
pub const S: u64 = 1_000_000_000;
/// "Within 5 s of onset".
pub const ONSET_LIMIT_NS: u64 = 5 * S;
/// How long to wait for a scenario to reach its bad state.
pub const REACH: Duration = Duration::from_secs(20);
/// Bound on a report's window, in case a test never ends it.
pub const MAX_WINDOW: Duration = Duration::from_secs(120);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A namespace with these sysctls, and `portwatch report` tracing it.
pub fn setup(tag: &str, sysctls: &[(&str, &str)]) -> (Netns, LiveReport) {
    let ns = Netns::new(tag);
    for (k, v) in sysctls {
        ns.sysctl(k, v);
    }
    let report = LiveReport::start(ns.inode, MAX_WINDOW);
    (ns, report)
}

/// Ends the report's window at `at_ns` (CLOCK_MONOTONIC) and returns the report.
pub fn report_at(report: LiveReport, at_ns: u64) -> Value {
    sleep_until_ns(at_ns);
    let r = report.finish();
    // Shown when the test fails (the harness captures it otherwise).
    eprintln!("report ending {at_ns}:\n{}", describe(&r));
    if std::env::var_os("PW_DUMP").is_some() {
        eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    }
    r
}

/// The report's window covers the onset and ends at most 5 s after it.
pub fn assert_within_5s(r: &Value, onset_ns: u64) {
    let start = r["context"]["window_start_ns"].as_u64().unwrap();
    let end = r["context"]["window_end_ns"].as_u64().unwrap();
    assert!(
        start < onset_ns && end >= onset_ns && end - onset_ns <= ONSET_LIMIT_NS,
        "window {start}..{end} vs onset {onset_ns}: ends {:.2} s after it",
        (end as f64 - onset_ns as f64) / 1e9
    );
}

/// The finding has this cause and severity and names the scenario's process, the
/// namespace and `dst`.
pub fn assert_finding(
    r: &Value,
    f: &Value,
    cause: &str,
    sev: &str,
    sc: &Scenario,
    ns: &Netns,
    dst: &str,
) {
    let got = (
        f["cause"].as_str(),
        f["severity"].as_str(),
        f["pid"].as_u64(),
        f["comm"].as_str(),
        f["netns"].as_u64(),
        f["dst"].as_str(),
    );
    let want = (
        Some(cause),
        Some(sev),
        Some(u64::from(sc.pid)),
        Some(sc.comm.as_str()),
        Some(u64::from(ns.inode)),
        Some(dst),
    );
    assert_eq!(got, want, "\n{}", describe(r));
    assert_eq!(
        f["ppid"].as_u64(),
        Some(u64::from(std::process::id())),
        "the scenario's parent is this test: {f:#}"
    );
    // Records our programs could not deliver (after the namespace filter) or decode. Runs
    // the kernel skipped (`skipped_*`, recursion misses) are counted over every namespace of
    // a shared machine, so they are not asserted; the findings above are.
    let l = &r["lost_events"];
    assert_eq!(
        (&l["state"], &l["call"], &l["timewait"], &l["decode_errors"]),
        (
            &Value::from(0),
            &Value::from(0),
            &Value::from(0),
            &Value::from(0)
        ),
        "events lost: {l}"
    );
}

pub fn assert_no_helping(f: &Value, id: &str) {
    assert!(
        remedies(f, id).iter().all(|r| r["helps"] == false),
        "{id} must not be offered as helping: {:#}",
        f["remedies"]
    );
}

pub fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

// ---------------------------------------------------------------------------------------
// TIME_WAIT churn
