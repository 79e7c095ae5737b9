//! Issue 10, replay equals live by construction: one live `portwatch report --json --record
//! FILE` traces a real incident in a fresh namespace (a local python3 server that never closes
//! what its client closes: CLOSE_WAIT at the server, FIN_WAIT2 at the client, whose 500-port
//! range runs out), and `portwatch report FILE --json` afterwards gives the same document —
//! findings, pools, processes and every other table, the window, the lost-event counts and the
//! model's own counters — but for where it came from (`source`, `recording`) and when it was
//! generated. A reconciliation made to fail during the window (the hidden
//! `--fail-reconciliations 1`) is a warning in both, on stderr and in the JSON. Root only;
//! fails, never skips, without root or PORTWATCH_BIN.

use std::{process::Command, time::Duration};

use portwatch_tests::{
    Netns,
    incident::python,
    live::{LiveReport, mono_ns, portwatch_bin, sleep_until_ns},
};
use serde_json::Value;

const S: u64 = 1_000_000_000;
const REACH: Duration = Duration::from_secs(20);
/// Bound on the live window, in case the test never ends it.
const MAX_WINDOW: Duration = Duration::from_secs(120);
const DST: &str = "127.0.0.1:9500";
const FAILED: &str = "reconciliation failed";

/// The report without what says where it came from and when it was generated.
fn comparable(r: &Value) -> Value {
    let mut r = r.clone();
    let ctx = r["context"].as_object_mut().expect("a context object");
    for k in ["source", "recording", "generated_at"] {
        assert!(ctx.remove(k).is_some(), "context.{k} is in the schema");
    }
    r
}

fn causes(r: &Value) -> Vec<&str> {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["cause"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn a_live_report_and_its_recording_give_the_same_report() {
    let ns = Netns::new("lvr");
    ns.sysctl("net.ipv4.ip_local_port_range", "40000 40499");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let file = std::env::temp_dir().join(format!("pw-lvr-{}.pwr", std::process::id()));
    let _ = std::fs::remove_file(&file);
    // Reconciled every second, the first attempt refused: a warning mid-window, then
    // reconciliations that succeed, all in the recording.
    let live = LiveReport::start_with(
        ns.inode,
        MAX_WINDOW,
        &[],
        &[
            "--record",
            file.to_str().unwrap(),
            "--reconcile-every",
            "1s",
            "--fail-reconciliations",
            "1",
        ],
    );
    let started = mono_ns();
    let mut server = python(&ns, "hold_server.py", &[DST]);
    server.wait("ready", None, REACH);
    let mut client = python(&ns, "close_client.py", &[DST]);
    let onset = client.wait("fail", Some("EADDRNOTAVAIL"), REACH).at_ns;
    // Past the failed reconciliation and at least two that succeeded.
    sleep_until_ns(onset.max(started + 3 * S) + 2 * S);
    let (live, live_log) = live.finish_with_log();
    drop((client, server));

    let out = Command::new(portwatch_bin())
        .arg("report")
        .arg(&file)
        .arg("--json")
        .output()
        .expect("run portwatch report FILE --json");
    let file_log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "portwatch report FILE: {file_log}");
    let recorded: Value = serde_json::from_slice(&out.stdout).expect("report FILE JSON");
    let _ = std::fs::remove_file(&file);

    // The incident was seen, so that the comparison below compares something.
    let seen = causes(&live);
    eprintln!(
        "live: findings {seen:?}, {} pools, {} processes, model {}, warnings {}",
        live["pools"].as_array().map_or(0, Vec::len),
        live["processes"].as_array().map_or(0, Vec::len),
        live["model"],
        live["warnings"]
    );
    assert!(
        seen.contains(&"close_wait_leak") && seen.contains(&"fin_wait2_hold"),
        "live findings: {seen:?}"
    );
    assert!(
        live["processes"].as_array().is_some_and(|p| p.len() >= 2),
        "{}",
        live["processes"]
    );
    assert!(
        live["model"]["reconciliations"].as_u64() >= Some(2),
        "{}",
        live["model"]
    );
    assert_eq!(live["context"]["source"], "live");
    assert_eq!(recorded["context"]["source"], "recording");

    // The failed reconciliation: a warning in both, said once on stderr by each.
    let warnings = live["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(FAILED))),
        "live warnings: {warnings:?}"
    );
    assert!(
        live_log
            .iter()
            .any(|l| l.contains("warning") && l.contains(FAILED)),
        "live stderr: {live_log:?}"
    );
    assert!(
        file_log.contains("warning") && file_log.contains(FAILED),
        "report FILE stderr: {file_log}"
    );

    // The same document, table by table (the first difference named), then whole.
    let (a, b) = (comparable(&live), comparable(&recorded));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    for k in ["findings", "pools", "processes", "warnings"] {
        assert_eq!(a[k], b[k], "{k}: live vs recording");
    }
    for k in keys(&a) {
        assert_eq!(a[&k], b[&k], "{k}: live vs recording");
    }
    assert_eq!(a, b);
}
