//! Issue 4, the causes that fill a pool (TIME_WAIT churn, concurrency, bind before connect,
//! configuration): each reproduced for real, and named correctly — cause, severity, process,
//! destination, namespace, remedies — by `portwatch report` within 5 s of its onset. Root
//! only; these fail (never skip) without root or without PORTWATCH_BIN.
//!
//! Each test makes a fresh namespace with its own sysctls, starts `portwatch report --json
//! --netns INODE` first, then the misbehaving program as a process of its own (`pw-scenario`,
//! with a recognisable `comm`), which prints the CLOCK_MONOTONIC time it reached the bad state.
//! The test ends the report's window (SIGTERM, like Ctrl-C) a little after that onset and
//! checks the window ended at most 5 s after it. The pool causes run over IPv6 (`::1`) too. Servers run on threads of the test process,
//! so their pid differs from the scenario's.

#[path = "causes/common.rs"]
mod common;

use common::*;

/// A client that connects and closes first, as fast as it can, toward one destination, until
/// a 50-port range has no port left: connect() fails with EADDRNOTAVAIL.
#[test]
fn time_wait_churn_until_connect_fails() {
    time_wait_churn_until_connect_fails_to("twc", "127.0.0.1:8080", "127.0.0.1");
}

/// The same over IPv6 (`::1`): net.ipv4.ip_local_port_range governs IPv6 too.
#[test]
fn time_wait_churn_until_connect_fails_ipv6() {
    time_wait_churn_until_connect_fails_to("twc6", "[::1]:8080", "::1");
}

fn time_wait_churn_until_connect_fails_to(tag: &str, dst: &str, src: &str) {
    let (ns, report) = setup(
        tag,
        &[
            ("net.ipv4.ip_local_port_range", "40000 40049"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    let _server = TestServer::start(&ns, addr(dst), Serve::CloseAfterClient);
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-twchurn", &["churn", dst]);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    // 50 ports (51 only if a peer's RST ended a TIME_WAIT early: RFC 1337 assassination).
    assert!((50..=51).contains(&onset.num("made")), "{onset:?}");
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(&r, f, "time_wait_churn", "critical", &sc, &ns, dst);
    assert_eq!(f["src_ip"], src);
    assert_eq!(
        (f["in_use"].as_u64(), f["capacity"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(f["eta_s"].as_f64(), Some(0.0));
    assert!(f["errors"]["EADDRNOTAVAIL"].as_u64() >= Some(1), "{f:#}");
    let closing: u64 = ["FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
        .iter()
        .filter_map(|s| f["states"][s].as_u64())
        .sum();
    assert_eq!(closing, 50, "{f:#}");
    assert_remedy(f, "connection_pooling", true);
    // tcp_tw_reuse is 0 here: turning it on would help this pool.
    assert_remedy(f, "tcp_tw_reuse", true);
    assert_remedy(f, "widen_port_range", true);
    assert_remedy(f, "more_destination_addresses", true);
    assert_remedy(f, "tcp_fin_timeout", false);
    assert_remedy(f, "tcp_tw_recycle", false);
}

/// Before exhaustion: 100 connections/s closed first, into a 2,000-port range. At that rate
/// the range would need 6,000 ports (100/s × 60 s of TIME_WAIT), so it runs out in about
/// 20 s. The steady-state projection warns at once; once the growth has lasted 5 s the
/// finding carries the time left (under a minute: critical) — still before any failure.
///
/// Why not a *warning* with an ETA: with nothing released (TIME_WAIT lasts 60 s), a rate
/// that exhausts C ports at all needs rate × 60 ≥ C, so it does so in C / rate ≤ 60 s. A
/// churn whose ETA is over a minute is one whose steady state fits, which has no ETA.
#[test]
fn time_wait_churn_is_flagged_before_ports_run_out() {
    let (ns, early) = setup(
        "twf",
        &[
            ("net.ipv4.ip_local_port_range", "40000 41999"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    let late = LiveReport::start(ns.inode, MAX_WINDOW);
    let _server = TestServer::start(&ns, addr("127.0.0.1:8080"), Serve::CloseAfterClient);
    // 12 s at most: 1,200 ports, never out.
    let args = ["--max-s", "12", "churn", "127.0.0.1:8080", "--rate", "100"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-twfill", &args);
    let onset = sc.wait("start", None, REACH);

    let r = report_at(early, onset.at_ns + 3_500_000_000);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "time_wait_churn",
        "warning",
        &sc,
        &ns,
        "127.0.0.1:8080",
    );
    assert!(f["errors"].as_object().unwrap().is_empty(), "{f:#}");
    assert!(f["in_use"].as_u64() < f["capacity"].as_u64(), "{f:#}");
    assert!(
        f["title"].as_str().unwrap().contains("heading for"),
        "{f:#}"
    );
    assert_remedy(f, "connection_pooling", true);
    assert_remedy(f, "tcp_fin_timeout", false);

    let r = report_at(late, onset.at_ns + 7 * S);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "time_wait_churn",
        "critical",
        &sc,
        &ns,
        "127.0.0.1:8080",
    );
    assert!(
        f["errors"].as_object().unwrap().is_empty(),
        "no failure yet: {f:#}"
    );
    let eta = num(&f["eta_s"]);
    assert!(
        eta > 0.0 && eta < 60.0,
        "out in under a minute, not yet: {f:#}"
    );
    assert!(f["title"].as_str().unwrap().contains("run out in"), "{f:#}");
    assert_no_helping(f, "tcp_fin_timeout");
    sc.stop();
}

// ---------------------------------------------------------------------------------------
// Concurrency

/// One client holds open connections to one destination until a 50-port range is full.
#[test]
fn concurrency_at_capacity() {
    concurrency_at_capacity_to("conc", "127.0.0.1:8080");
}

#[test]
fn concurrency_at_capacity_ipv6() {
    concurrency_at_capacity_to("conc6", "[::1]:8080");
}

fn concurrency_at_capacity_to(tag: &str, dst: &str) {
    // tcp_tw_reuse stays at its default (2: loopback): it still must not be offered.
    let (ns, report) = setup(tag, &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let _server = TestServer::start(&ns, addr(dst), Serve::Keep);
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-conc", &["hold", dst]);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    assert_eq!(onset.num("kept"), 50);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(&r, f, "concurrency", "critical", &sc, &ns, dst);
    assert_eq!(f["states"]["ESTABLISHED"], 50, "{f:#}");
    assert_eq!(f["eta_s"].as_f64(), Some(0.0));
    assert_remedy(f, "more_destination_addresses", true);
    assert_remedy(f, "more_source_addresses", true);
    assert_remedy(f, "widen_port_range", true);
    assert_remedy(f, "limit_concurrency", true);
    assert_remedy(f, "tcp_tw_reuse", false);
    assert_no_helping(f, "tcp_tw_reuse");
}

/// 40 connections held in a 50-port range: 80 % blocking connect(), nothing failing yet.
#[test]
fn concurrency_near_capacity_warns() {
    let (ns, report) = setup("concw", &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let _server = TestServer::start(&ns, addr("127.0.0.1:8080"), Serve::Keep);
    let args = ["hold", "127.0.0.1:8080", "--count", "40"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-concw", &args);
    let onset = sc.wait("reached", None, REACH);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(&r, f, "concurrency", "warning", &sc, &ns, "127.0.0.1:8080");
    assert_eq!(
        (f["in_use"].as_u64(), f["capacity"].as_u64()),
        (Some(40), Some(50))
    );
    assert!(f["errors"].as_object().unwrap().is_empty(), "{f:#}");
    assert_remedy(f, "tcp_tw_reuse", false);
    assert_no_helping(f, "tcp_tw_reuse");
}

// ---------------------------------------------------------------------------------------
// bind() before connect(), bind() conflicts

/// bind(127.0.0.1:0) then connect(), without IP_BIND_ADDRESS_NO_PORT, kept open: every
/// socket takes its port from every pool, until bind() finds none (EADDRINUSE).
#[test]
fn bind_before_connect_until_bind_fails() {
    bind_before_connect_until_bind_fails_to("bbc", "127.0.0.1:8080", "127.0.0.1:0");
}

#[test]
fn bind_before_connect_until_bind_fails_ipv6() {
    bind_before_connect_until_bind_fails_to("bbc6", "[::1]:8080", "[::1]:0");
}

fn bind_before_connect_until_bind_fails_to(tag: &str, dst: &str, bind: &str) {
    let (ns, report) = setup(tag, &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let _server = TestServer::start(&ns, addr(dst), Serve::Keep);
    let args = ["hold", dst, "--bind", bind];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-bbc", &args);
    let onset = sc.wait("fail", Some("EADDRINUSE"), REACH);
    assert_eq!(onset.num("kept"), 50);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(&r, f, "bind_before_connect", "critical", &sc, &ns, dst);
    assert_eq!(
        (f["in_use"].as_u64(), f["capacity"].as_u64()),
        (Some(50), Some(50))
    );
    assert!(f["errors"]["EADDRINUSE"].as_u64() >= Some(1), "{f:#}");
    assert_remedy(f, "ip_bind_address_no_port", true);
    assert_remedy(f, "drop_bind", true);
    assert_remedy(f, "tcp_tw_reuse", false);
    // The pool is out because bind() holds its ports, not because of how many connect.
    assert!(
        findings(&r).iter().all(|f| f["cause"] != "concurrency"),
        "\n{}",
        describe(&r)
    );
}

/// A range whose ends have the same parity (40000–40100, 101 ports) with 40 of its ports
/// reserved, under TIME_WAIT pressure. The kernel hands out all 61 unreserved ports, the top
/// one included (each connect() scans 100 of the 101, skipping one end or the other:
/// model/capacity.rs), and the report says what the reservation and the parity cost.
#[test]
fn config_parity_and_reserved_ports_under_pressure() {
    let (ns, report) = setup(
        "cfg",
        &[
            ("net.ipv4.ip_local_port_range", "40000 40100"),
            ("net.ipv4.ip_local_reserved_ports", "40000-40039"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    let _server = TestServer::start(&ns, addr("127.0.0.1:8080"), Serve::CloseAfterClient);
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-cfg", &["churn", "127.0.0.1:8080"]);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    let ports = (onset.num("min_port"), onset.num("max_port"));
    assert_eq!(ports, (40040, 40100), "{onset:?}");
    assert!((61..=62).contains(&onset.num("made")), "{onset:?}");
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "time_wait_churn",
        "critical",
        &sc,
        &ns,
        "127.0.0.1:8080",
    );
    let (in_use, capacity) = (f["in_use"].as_u64(), f["capacity"].as_u64());
    assert_eq!(
        (in_use, capacity),
        (Some(61), Some(61)),
        "the model agrees with the kernel"
    );

    let f = finding(&r, "config", Some("reserved_ports"));
    assert_eq!(
        f["severity"], "warning",
        "a pool of the namespace is failing: {f:#}"
    );
    assert_eq!(f["netns"], ns.inode);
    assert_eq!(
        (f["in_use"].as_u64(), f["capacity"].as_u64()),
        (Some(40), Some(101))
    );
    assert_remedy(f, "free_reserved_ports", true);

    let f = finding(&r, "config", Some("range_parity"));
    assert_eq!(f["severity"], "info");
    assert_eq!(f["netns"], ns.inode);
    let ev = f["evidence"].as_str().unwrap();
    assert!(
        ev.contains("scans only 100 of them, skipping 40000 or 40100"),
        "{ev}"
    );
    assert_remedy(f, "range_parity", true);
    let fix = remedies(f, "range_parity")[0]["action"].as_str().unwrap();
    assert!(fix.contains("40000 40101"), "{fix}");
}

/// tcp_tw_reuse=2 (the default) covers loopback only: TIME_WAIT churn over a veth pair to a
/// server in a second namespace runs out as if it were off, and the report says so.
#[test]
fn config_tw_reuse_loopback_only_on_a_veth() {
    let (ns, report) = setup("twv", &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let peer = Netns::new("twvpeer");
    ns.link_to(&peer, "pw0", "10.77.0.1/24", "pw1", "10.77.0.2/24");
    let _server = TestServer::start(&peer, addr("10.77.0.2:8080"), Serve::CloseAfterClient);
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-twveth", &["churn", "10.77.0.2:8080"]);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    let r = report_at(report, onset.at_ns + 2 * S);
    // connect() never took a TIME_WAIT over (the kernel's own count, TcpExt TWRecycled, in
    // the client's namespace): with reuse it would after 1 s. Whether the client, retrying
    // every 100 ms, ever got a port back is not the test: now and then (about one run in five
    // on a loaded machine) the kernel frees one port early without any reuse.
    assert_eq!(tcp_ext(&ns, "TWRecycled"), 0, "{:?}", sc.said);
    assert!(
        r["failures"]["total"].as_u64() >= Some(10),
        "{}",
        r["failures"]
    );
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "time_wait_churn",
        "critical",
        &sc,
        &ns,
        "10.77.0.2:8080",
    );
    assert_eq!(f["src_ip"], "10.77.0.1");
    assert_remedy(f, "tcp_tw_reuse", true);

    let f = finding(&r, "config", Some("tw_reuse_loopback_only"));
    assert_eq!(f["severity"], "warning", "{f:#}");
    assert_eq!(f["dst"], "10.77.0.2:8080");
    assert_remedy(f, "tcp_tw_reuse", true);
}

/// A `TcpExt` counter of `/proc/net/netstat`, read inside the namespace.
fn tcp_ext(ns: &Netns, name: &str) -> u64 {
    let text = ns.cat("/proc/net/netstat");
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().unwrap(), lines.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no TcpExt {name}"));
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// Healthy
