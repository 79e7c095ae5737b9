//! Issue 11, class 6: an early warning before EADDRNOTAVAIL. A python3 client fills a
//! 1,000-port pool step by step, holding every connection, while `portwatch serve` traces the
//! namespace and `portwatch record` keeps it. The kernel gives even ports first (the range
//! starts even), so the share of odd ports among new connections climbs from 0 to all of them
//! once half the pool is held; the finding says so (with connect()'s measured latency) before
//! the first EADDRNOTAVAIL, live and from the recording. The same traffic in a namespace with
//! the default range warns of nothing. Root only; fails (never skips) without it.

#[path = "causes/common.rs"]
mod common;

use common::*;
use portwatch_tests::{
    incident::{Recorder, python, report_file, report_file_text},
    serve::{Agent, get, sample},
};

const DST: &str = "127.0.0.1:9500";
/// Connections opened per step.
const STEP: u64 = 100;
/// After a step: past the next whole second (rates count complete seconds) and the agent's
/// next refresh (1 s), and spaced so that a 10 s rate window holds at most 4 steps: at 40
/// connections/s a default range (28,232 ports) is more than the 10 minutes away from
/// exhaustion under which the exhaustion-time rule warns (`explain::thresholds`), so the
/// healthy run tests the port-search rule alone.
const SETTLE: Duration = Duration::from_millis(3200);

/// One look at the agent after a step.
struct Look {
    held: u64,
    /// The pool's `port_search`.
    search: Value,
    /// Findings toward DST: (severity, evidence).
    findings: Vec<(String, String)>,
}

fn look(agent: &Agent, held: u64) -> Look {
    let (status, body) = get(agent.addr, "/report.json");
    assert_eq!(status, 200, "/report.json: {body}");
    let r: Value = serde_json::from_str(&body).expect("report JSON");
    let search = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == DST)
        .map(|p| p["port_search"].clone())
        .unwrap_or(Value::Null);
    let findings = findings(&r)
        .iter()
        .filter(|f| f["dst"] == DST)
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or("").to_string(),
                f["evidence"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    Look {
        held,
        search,
        findings,
    }
}

/// What one run saw.
struct Run {
    looks: Vec<Look>,
    /// The client's first failure.
    failed: Option<Said>,
    /// The recording, kept when the run failed.
    file: Option<std::path::PathBuf>,
    /// `/metrics` after the last step.
    metrics: String,
}

/// Runs the client in a namespace with `range` up to `steps` steps (or its first failure),
/// looking at the agent after each.
fn fill(tag: &str, range: &str, steps: u64) -> Run {
    let ns = Netns::new(tag);
    ns.sysctl("net.ipv4.ip_local_port_range", range);
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let agent = Agent::start(ns.inode, &[]);
    let rec = Recorder::start(ns.inode, tag, MAX_WINDOW);
    let mut server = python(&ns, "hold_server.py", &[DST, "120"]);
    server.wait("ready", None, REACH);
    let mut client = python(&ns, "step_client.py", &[DST, &STEP.to_string(), "120"]);
    client.wait("ready", None, REACH);
    let mut looks = Vec::new();
    let mut failed = None;
    for k in 1..=steps {
        client.send("step");
        let want = k * STEP;
        // Either this step's `held`, or the failure.
        let said = client.next(REACH);
        if said.what == "fail" {
            assert_eq!(
                said.get("errno"),
                Some("EADDRNOTAVAIL"),
                "{:#?}",
                client.said
            );
            failed = Some(said);
            break;
        }
        assert_eq!(said.num("n"), want, "{:#?}", client.said);
        std::thread::sleep(SETTLE);
        let l = look(&agent, want);
        eprintln!(
            "held {want} (odd {} of this step): port_search {} findings {:?}",
            said.num("odd"),
            l.search,
            l.findings
        );
        looks.push(l);
    }
    let metrics = agent.metrics();
    let file = failed.is_some().then(|| rec.finish());
    drop((client, server, agent));
    Run {
        looks,
        failed,
        file,
        metrics,
    }
}

fn share(l: &Look) -> f64 {
    num(&l.search["second_parity_share"])
}

fn warns(l: &Look) -> bool {
    l.findings
        .iter()
        .any(|(sev, _)| sev == "warning" || sev == "critical")
}

#[test]
fn odd_ports_and_connect_latency_warn_before_eaddrnotavail() {
    // 40000–40999: 500 even ports, then 500 odd; the 11th step fails.
    let Run {
        looks,
        failed,
        file,
        metrics,
    } = fill("early", "40000 40999", 12);
    let failed = failed.expect("the 1,001st connect() fails with EADDRNOTAVAIL");
    assert_eq!(failed.num("n"), 1000);
    assert_eq!(looks.len(), 10);
    for l in &looks {
        assert_eq!(l.search["second_parity"], "odd", "{}", l.search);
        // The share is over the newest complete seconds back until 20 connections
        // (model::PARITY_SAMPLE): a step that straddles a second may count only part of it.
        assert!(l.search["chosen"].as_u64() >= Some(20), "{}", l.search);
        // The latency of this step's connects (all of them blocking, on loopback).
        let lat = &l.search["latency"];
        let p50 = num(&lat["p50_us"]);
        assert!(
            lat["calls"].as_u64() >= Some(STEP) && (1.0..100_000.0).contains(&p50),
            "held {}: {lat}",
            l.held
        );
        assert!(num(&lat["p99_us"]) >= p50, "{lat}");
    }
    // While even ports are left, every new connection gets one; after, none can.
    for l in looks.iter().filter(|l| l.held <= 500) {
        assert_eq!(share(l), 0.0, "held {}: {}", l.held, l.search);
    }
    for l in looks.iter().filter(|l| l.held >= 600) {
        assert_eq!(share(l), 1.0, "held {}: {}", l.held, l.search);
    }
    // Before the failure: a warning (at least) whose evidence says what was measured.
    let first = looks
        .iter()
        .find(|l| {
            warns(l)
                && l.findings
                    .iter()
                    .any(|(_, e)| e.contains("port search:") && e.contains("got an odd port"))
        })
        .expect("a port-search warning before EADDRNOTAVAIL");
    assert!(first.held <= 700, "warned at {} held", first.held);
    let (_, evidence) = first
        .findings
        .iter()
        .find(|(_, e)| e.contains("port search:"))
        .unwrap();
    assert!(
        evidence.contains("the even half toward 127.0.0.1:9500 is full")
            && evidence.contains("connect() takes"),
        "{evidence}"
    );

    // The agent's figures (last refresh).
    let labels = [("dst", DST)];
    assert_eq!(
        sample(
            &metrics,
            "portwatch_pool_second_parity_share_ratio",
            &labels
        ),
        Some(1.0),
        "{metrics}"
    );
    let p50 = sample(
        &metrics,
        "portwatch_pool_connect_latency_seconds",
        &[("dst", DST), ("percentile", "50")],
    )
    .expect("connect() latency on /metrics");
    assert!(p50 > 0.0 && p50 < 0.1, "{p50}");

    // The recording, read after the incident: the same figures.
    let file = file.unwrap();
    let r = report_file(&file);
    let pool = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == DST)
        .expect("the pool in the recording's report");
    let s = &pool["port_search"];
    assert!(s["latency"]["calls"].as_u64() > Some(0), "{s}");
    assert!(num(&s["latency"]["p50_us"]) > 0.0, "{s}");
    eprintln!(
        "--- report {}:\n{}",
        file.display(),
        report_file_text(&file)
    );
}

#[test]
fn the_same_traffic_in_a_wide_range_warns_of_nothing() {
    let Run { looks, failed, .. } = fill("calm", "32768 60999", 10);
    assert!(failed.is_none());
    assert_eq!(looks.len(), 10);
    for l in &looks {
        assert_eq!(share(l), 0.0, "held {}: {}", l.held, l.search);
        assert!(
            l.search["latency"]["calls"].as_u64() >= Some(STEP),
            "{}",
            l.search
        );
        assert!(!warns(l), "held {}: {:?}", l.held, l.findings);
        assert!(
            l.findings.iter().all(|(_, e)| !e.contains("port search:")),
            "held {}: {:?}",
            l.held,
            l.findings
        );
    }
}
