//! Issue 12: a real Prometheus (Debian's `prometheus` server) scraping `portwatch serve` every
//! second, with the shipped alert rules loaded, while a real exhaustion runs in a private
//! namespace. Root only; fails (never skips) without root, PORTWATCH_BIN or `prometheus`.
//!
//! The rules are the shipped file with every `for:` shortened to 2 s, so that the test does
//! not wait minutes; the shipped file itself is checked and unit-tested by promtool
//! (`tests/deploy.rs`).

use std::{
    net::SocketAddr,
    thread,
    time::{Duration, Instant},
};

use portwatch_tests::{
    Netns,
    live::{Scenario, Serve, TestServer},
    serve::{Agent, Prometheus, ss_in_use},
};

const SCENARIO: &str = env!("CARGO_BIN_EXE_pw-scenario");
const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/prometheus/portwatch.rules.yaml"
);

/// The shipped rules with every `for:` at 2 s.
fn quick_rules() -> String {
    let shipped = std::fs::read_to_string(RULES).expect("read the shipped rules");
    let quick: Vec<String> = shipped
        .lines()
        .map(|l| match l.split_once("for: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: 2s"),
            _ => l.to_string(),
        })
        .collect();
    assert!(quick.iter().filter(|l| l.ends_with("for: 2s")).count() >= 5);
    quick.join("\n")
}

/// Polls `f` every 250 ms for up to `secs`; panics with `what` and the last value otherwise.
fn eventually<T: std::fmt::Debug>(what: &str, secs: u64, mut f: impl FnMut() -> (bool, T)) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (ok, v) = f();
        if ok {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after {secs} s (last {v:?})"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_sees_the_pool_the_failures_and_fires_the_exhaustion_alert() {
    let ns = Netns::new("prom");
    ns.sysctl("net.ipv4.ip_local_port_range", "40000 40009");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let agent = Agent::start(ns.inode, &["--refresh", "250ms"]);
    let _server = TestServer::start(&ns, dst, Serve::CloseAfterClient);
    let prom = Prometheus::start(agent.addr, &quick_rules());
    let netns = ns.inode;
    let failures = format!(
        r#"portwatch_connect_failures_total{{job="portwatch",errno="EADDRNOTAVAIL",netns="{netns}"}}"#
    );
    // Scraped, and the failure counter known at 0 before anything fails.
    let before = eventually("the first scrape with the namespace", 30, || {
        let v = prom.value(&failures);
        (v.is_some(), v)
    });
    assert_eq!(before, Some(0.0), "{}", prom.log());
    assert_eq!(prom.value(r#"up{job="portwatch"}"#), Some(1.0));

    let mut sc = Scenario::start(SCENARIO, &ns, "pw-promchurn", &["churn", "127.0.0.1:8080"]);
    sc.wait("fail", Some("EADDRNOTAVAIL"), Duration::from_secs(20));

    // The pool as Prometheus stores it matches ss, in a sample at most one scrape old.
    let pool = format!(
        r#"portwatch_pool_ports_in_use{{job="portwatch",netns="{netns}",src="127.0.0.1",dst="127.0.0.1:8080"}}"#
    );
    let in_use = eventually("the full pool in Prometheus", 20, || {
        let v = prom.value(&pool);
        (v == Some(10.0), v)
    });
    assert_eq!(in_use, Some(ss_in_use(&ns, dst, (40000, 40009)) as f64));
    let age = prom
        .value(&format!("time() - timestamp({pool})"))
        .expect("the sample's age");
    assert!(
        age <= 2.0,
        "the pool's sample is {age} s old (scrapes every 1 s)"
    );
    let capacity = pool.replace("_in_use", "_capacity");
    assert_eq!(prom.value(&capacity), Some(10.0));

    // The failure counter rose (the client retries every 100 ms while the pool is full).
    let rose = eventually("EADDRNOTAVAIL counted", 20, || {
        let v = prom.value(&failures);
        (v > Some(0.0), v)
    });
    eprintln!("EADDRNOTAVAIL failures in Prometheus: {rose:?}");

    // And the shipped rules fire.
    let alert = eventually("PortwatchPoolExhausted firing", 30, || {
        let a = prom.firing("PortwatchPoolExhausted");
        (!a.is_empty(), a)
    });
    assert_eq!(alert[0]["labels"]["netns"], netns.to_string(), "{alert:#?}");
    assert_eq!(alert[0]["labels"]["dst"], "127.0.0.1:8080");
    assert_eq!(alert[0]["labels"]["severity"], "critical");
    let e = eventually("PortwatchEaddrnotavail firing", 30, || {
        let a = prom.firing("PortwatchEaddrnotavail");
        (!a.is_empty(), a)
    });
    assert_eq!(e[0]["labels"]["netns"], netns.to_string(), "{e:#?}");
    assert!(
        prom.firing("PortwatchEventsLost").is_empty(),
        "events lost during the test"
    );

    sc.stop();
    let (status, _, log) = agent.terminate();
    assert!(status.success(), "{}", log.join("\n"));
}
