//! The exporter on synthetic incidents: which series a picture produces (values, bounded
//! cardinality, counters that only grow) and how each endpoint answers.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use super::{Pages, Picture, http::respond, metrics};
use crate::{
    collect::Counters,
    explain::tests::sim::Sim,
    model::testutil::*,
    report::{Context, Source},
};

fn context(sim: &Sim) -> Context {
    Context {
        host: "node-1".into(),
        kernel: "6.18.0".into(),
        source: Source::Live,
        recording: None,
        window_start_ns: 0,
        window_end_ns: sim.now(),
        generated_at: None,
    }
}

/// A client churning 20 connections/s through 10 ports for 3 s: out of ports after half a
/// second, then EADDRNOTAVAIL.
fn exhausted() -> Sim {
    let mut sim = Sim::range(40000, 40009, 0);
    let client = task(4242, "client");
    sim.churn(|_| client, "127.0.0.1", "127.0.0.1:8080", 20.0, 3.0);
    sim
}

fn picture(sim: &Sim, top: usize) -> Picture {
    Picture::build(&sim.m, context(sim), &Counters::default(), top)
}

/// The value of the sample `name{labels}` in the text format.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn series_count(text: &str, name: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .count()
}

const POOL: &str = r#"{netns="4026531840",src="127.0.0.1",dst="127.0.0.1:8080"}"#;

#[test]
fn an_exhausted_pool_shows_its_ports_capacity_and_failures() {
    let sim = exhausted();
    let m = metrics::render(&picture(&sim, 20));
    let t = &m.text;
    let in_use = format!("portwatch_pool_ports_in_use{POOL}");
    assert_eq!(sample(t, &in_use), Some(10.0), "{t}");
    let cap = format!("portwatch_pool_ports_capacity{POOL}");
    assert_eq!(sample(t, &cap), Some(10.0));
    let blocking = format!("portwatch_pool_ports_blocking{POOL}");
    assert_eq!(sample(t, &blocking), Some(10.0));
    assert_eq!(sample(t, "portwatch_pool_max_utilisation_ratio"), Some(1.0));
    let failures = sample(
        t,
        r#"portwatch_connect_failures_total{errno="EADDRNOTAVAIL",netns="4026531840"}"#,
    )
    .expect("the EADDRNOTAVAIL counter");
    // 60 attempts, 10 ports.
    assert_eq!(failures, 50.0);
    assert_eq!(
        sample(
            t,
            r#"portwatch_findings{cause="time_wait_churn",severity="critical"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            t,
            r#"portwatch_sockets{state="TIME_WAIT",netns="4026531840"}"#
        ),
        Some(10.0)
    );
    // Every (cause, severity) pair is present, zeros included.
    assert_eq!(series_count(t, "portwatch_findings"), 27);
    // Both formats carry the same samples; OpenMetrics ends with its EOF marker.
    assert!(m.openmetrics.ends_with("# EOF\n"));
    assert!(m.openmetrics.contains(&format!("{in_use} 10")));
    assert!(!m.text.contains("# EOF"));
}

#[test]
fn pool_series_are_bounded_by_top() {
    let mut sim = Sim::range(40000, 40999, 0);
    let client = task(4242, "client");
    for k in 0..30 {
        sim.open(client, "10.0.0.5", &format!("10.1.0.{k}:443"), 5 + k, 1.0);
    }
    let p = picture(&sim, 5);
    assert_eq!(p.pools_total, 30);
    let t = metrics::render(&p).text;
    assert_eq!(series_count(&t, "portwatch_pool_ports_in_use"), 5);
    assert_eq!(series_count(&t, "portwatch_pool_ports_capacity"), 5);
    // The most urgent (the fullest) first; the max covers every pool, not only those five.
    let fullest =
        r#"portwatch_pool_ports_in_use{netns="4026531840",src="10.0.0.5",dst="10.1.0.29:443"}"#;
    assert_eq!(sample(&t, fullest), Some(34.0));
    assert_eq!(sample(&t, "portwatch_pools"), Some(30.0));
    assert!(!t.contains("pid="), "no pid label");
}

#[test]
fn failure_counters_only_grow() {
    let mut sim = exhausted();
    let series = r#"portwatch_connect_failures_total{errno="EADDRNOTAVAIL",netns="4026531840"}"#;
    let before = sample(&metrics::render(&picture(&sim, 20)).text, series).unwrap();
    // Two minutes later every TIME_WAIT has expired and the pool is empty; the counter stays.
    sim.advance(120.0);
    let after = sample(&metrics::render(&picture(&sim, 20)).text, series).unwrap();
    assert_eq!(before, after);
}

#[test]
fn the_text_format_passes_the_counter_naming_rules() {
    let t = metrics::render(&picture(&exhausted(), 20)).text;
    for l in t.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut w = l.split(' ').skip(2);
        let (name, kind) = (w.next().unwrap(), w.next().unwrap());
        assert!(name.starts_with("portwatch_"), "{l}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
    }
}

fn pages() -> Pages {
    Pages::render(&picture(&exhausted(), 20))
}

#[tokio::test]
async fn endpoints_answer_from_the_latest_pages() {
    let p = pages();
    let stale = Duration::from_secs(5);
    let get = |path: &str, accept: Option<&str>, pages: Option<&Pages>| {
        respond(&Method::GET, path, accept, pages, stale)
    };
    assert_eq!(
        get("/metrics", None, None).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get("/healthz", None, None).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = get("/metrics", None, Some(&p));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], metrics::TEXT_0_0_4);
    let om = "application/openmetrics-text;version=1.0.0,text/plain;q=0.5";
    let r = get("/metrics", Some(om), Some(&p));
    assert_eq!(r.headers()["content-type"], metrics::OPENMETRICS);
    let r = get("/report.json", None, Some(&p));
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&p.report_json).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["findings"][0]["cause"], "time_wait_churn");
    assert_eq!(get("/healthz", None, Some(&p)).status(), StatusCode::OK);
    assert_eq!(get("/nope", None, Some(&p)).status(), StatusCode::NOT_FOUND);
    let post = respond(&Method::POST, "/metrics", None, Some(&p), stale);
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Refreshes that stopped: unhealthy.
    let old = Pages {
        at: Instant::now() - Duration::from_secs(6),
        ..p
    };
    assert_eq!(
        get("/healthz", None, Some(&old)).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[test]
fn exhaustion_errnos_start_at_zero_in_every_known_namespace() {
    let sim = Sim::range(40000, 40009, 0);
    let t = metrics::render(&picture(&sim, 20)).text;
    let connect = r#"portwatch_connect_failures_total{errno="EADDRNOTAVAIL",netns="4026531840"}"#;
    assert_eq!(sample(&t, connect), Some(0.0), "{t}");
    let bind = r#"portwatch_bind_failures_total{errno="EADDRINUSE",netns="4026531840"}"#;
    assert_eq!(sample(&t, bind), Some(0.0));
}
