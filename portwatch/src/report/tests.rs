//! Report tests: the JSON schema (exact keys), the text layout (width, order), and a golden
//! text report of a TIME_WAIT churn exhaustion.

use serde_json::Value;

use super::{Context, Limits, LostEvents, Report, Source, text, wrap::WIDTH};
use crate::{explain::tests::sim::Sim, model::testutil::*};

/// api-gw (pid 2314) churns 480 connections/s to 10.1.2.3:443 from 10.0.0.5 for 75 s with the
/// default range: 480 × 60 = 28,800 > 28,232, so it runs out after ~59 s and connect() fails
/// with EADDRNOTAVAIL. Around it, a healthy database pool and an nginx with clients.
pub(crate) fn churn_exhaustion() -> (Sim, Context) {
    let mut sim = Sim::default_range();
    let start = sim.now();
    let gw = task(2314, "api-gw");
    let nginx = task(812, "nginx");
    sim.s.listen(nginx, 0x10, "0.0.0.0:8080");
    for k in 0..12u64 {
        let remote = format!("10.0.3.{}:{}", 7 + k % 2, 50000 + k);
        sim.s.accept(swapper(), 0x20 + k, "10.0.0.5:8080", &remote);
    }
    sim.s.run(&mut sim.m);
    sim.open(gw, "10.0.0.5", "10.1.2.4:5432", 20, 1.0);
    sim.churn(|_| gw, "10.0.0.5", "10.1.2.3:443", 480.0, 75.0);
    let ctx = Context {
        host: "web-1".to_string(),
        kernel: "6.18.0".to_string(),
        source: Source::Live,
        recording: None,
        window_start_ns: start,
        window_end_ns: sim.now(),
        generated_at: None,
    };
    (sim, ctx)
}

fn report() -> Report {
    let (sim, ctx) = churn_exhaustion();
    Report::build(&sim.m, ctx, LostEvents::default(), Limits::default())
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn json_schema_keys_are_exact() {
    let r = report();
    let v: Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(
        keys(&v),
        [
            "close_wait",
            "conntrack",
            "context",
            "episodes",
            "failures",
            "findings",
            "listeners",
            "lost_events",
            "model",
            "nat_pools",
            "pools",
            "process_groups",
            "processes",
            "schema_version",
            "sysctls",
            "totals",
            "warnings",
        ]
    );
    assert_eq!(v["schema_version"], 1);
    assert_eq!(
        keys(&v["context"]),
        [
            "generated_at",
            "host",
            "kernel",
            "recording",
            "source",
            "window_end_ns",
            "window_start_ns",
        ]
    );
    assert_eq!(v["context"]["source"], "live");
    let f = &v["findings"][0];
    assert_eq!(
        keys(f),
        [
            "capacity",
            "cause",
            "comm",
            "dst",
            "episode",
            "errors",
            "eta_s",
            "evidence",
            "in_use",
            "issue",
            "netns",
            "pid",
            "ppid",
            "process_count",
            "rate_per_s",
            "remedies",
            "score",
            "severity",
            "src_ip",
            "states",
            "title",
        ]
    );
    assert_eq!(f["cause"], "time_wait_churn");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["pid"], 2314);
    assert_eq!(f["comm"], "api-gw");
    assert_eq!(f["src_ip"], "10.0.0.5");
    assert_eq!(f["dst"], "10.1.2.3:443");
    assert_eq!(f["capacity"], 28232);
    assert!(
        f["states"]["TIME_WAIT"].as_u64().unwrap() > 20000,
        "{}",
        f["states"]
    );
    assert!(f["errors"]["EADDRNOTAVAIL"].as_u64().unwrap() > 0);
    assert_eq!(f["eta_s"], 0.0);
    assert!(f["rate_per_s"].as_f64().unwrap() > 400.0);
    assert_eq!(f["issue"], Value::Null);
    let rem = &f["remedies"][0];
    assert_eq!(keys(rem), ["action", "helps", "id", "why"]);
    assert_eq!(
        keys(&v["lost_events"]),
        [
            "call",
            "decode_errors",
            "skipped_calls",
            "skipped_state",
            "state",
            "timers_skipped_upper_bound",
            "timewait",
            "total",
            "untracked_calls",
        ]
    );
    assert_eq!(v["lost_events"]["total"], 0);
    assert_eq!(v["pools"][0]["dst"], "10.1.2.3:443");
    assert!(
        v["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["comm"] == "api-gw")
    );
    assert_eq!(v["sysctls"][0]["port_range"][1], 60999);
    assert_eq!(v["listeners"][0]["by_remote"][0]["total"], 6);
}

#[test]
fn text_report_fits_and_puts_the_diagnosis_first() {
    let t = text::render(&report());
    for l in t.lines() {
        assert!(
            l.chars().count() <= WIDTH,
            "{} columns: {l}",
            l.chars().count()
        );
        assert!(!l.contains('\x1b'), "no colour");
    }
    let first = t.find("1. CRITICAL").expect("the finding");
    assert!(first < t.find("Pools (").unwrap());
    assert!(t.contains("Do this:") && t.contains("Won't help:"));
    assert!(t.contains("Lowering net.ipv4.tcp_fin_timeout: It only bounds orphaned FIN_WAIT2"));
}

#[test]
fn golden_time_wait_churn_exhaustion() {
    insta::assert_snapshot!("time_wait_churn_exhaustion", text::render(&report()));
}

#[test]
fn an_empty_model_says_so() {
    let sim = Sim::default_range();
    let ctx = Context {
        host: "h".into(),
        kernel: "k".into(),
        source: Source::Recording,
        recording: Some("incident.pwrec".into()),
        window_start_ns: 0,
        window_end_ns: 10 * SEC,
        generated_at: None,
    };
    let lost = LostEvents {
        total: 3,
        state: 3,
        ..LostEvents::default()
    };
    let t = text::render(&Report::build(&sim.m, ctx, lost, Limits::default()));
    assert!(t.contains("No findings"), "{t}");
    assert!(
        t.contains("Degraded: 3 events lost (3 state transitions (ring full)): counts may be low."),
        "{t}"
    );
    assert!(t.contains("recording incident.pwrec"), "{t}");
}
