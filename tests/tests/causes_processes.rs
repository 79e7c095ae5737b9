//! Issue 4, the causes in one process (bind conflicts, CLOSE_WAIT leaks, SYN_SENT pile-ups) and
//! a healthy pool: each reproduced for real, and named correctly — cause, severity, process,
//! destination, namespace, remedies — by `portwatch report` within 5 s of its onset. Root
//! only; these fail (never skip) without root or without PORTWATCH_BIN.
//!
//! Each test makes a fresh namespace with its own sysctls, starts `portwatch report --json
//! --netns INODE` first, then the misbehaving program as a process of its own (`pw-scenario`,
//! with a recognisable `comm`), which prints the CLOCK_MONOTONIC time it reached the bad state.
//! The test ends the report's window (SIGTERM, like Ctrl-C) a little after that onset and
//! checks the window ended at most 5 s after it. Servers run on threads of the test process,
//! so their pid differs from the scenario's.

#[path = "causes/common.rs"]
mod common;

use common::*;

/// A service binds a port another process listens on: the finding names the failing process
/// and the holder.
#[test]
fn bind_conflict_names_the_holder() {
    let (ns, report) = setup("bindc", &[]);
    let mut holder = Scenario::start(SCENARIO, &ns, "pw-holder", &["listen", "127.0.0.1:9000"]);
    holder.wait("ready", None, REACH);
    let args = ["bind", "127.0.0.1:9000", "--tries", "3"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-binder", &args);
    let onset = sc.wait("fail", Some("EADDRINUSE"), REACH);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "bind_conflict",
        "critical",
        &sc,
        &ns,
        "127.0.0.1:9000",
    );
    let held = format!("pw-holder (pid {}) listens on 127.0.0.1:9000", holder.pid);
    assert!(f["evidence"].as_str().unwrap().contains(&held), "{f:#}");
    assert_eq!(f["states"]["LISTEN"], 1, "{f:#}");
    assert!(f["errors"]["EADDRINUSE"].as_u64() >= Some(1), "{f:#}");
    assert_remedy(f, "stop_port_holder", true);
    let stop = remedies(f, "stop_port_holder")[0]["action"]
        .as_str()
        .unwrap();
    assert!(
        stop.contains(&format!("pw-holder (pid {})", holder.pid)),
        "{stop}"
    );
    assert_remedy(f, "tcp_tw_reuse", false);
}

// ---------------------------------------------------------------------------------------
// CLOSE_WAIT leaks

/// A client whose server closes first and which never closes: CLOSE_WAIT holds the source
/// ports until a 50-port range is out.
#[test]
fn close_wait_leak_of_outbound_connections_exhausts_ports() {
    let (ns, report) = setup("cwo", &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let _server = TestServer::start(&ns, addr("127.0.0.1:8080"), Serve::CloseFirst);
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-cwclient", &["hold", "127.0.0.1:8080"]);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "close_wait_leak",
        "critical",
        &sc,
        &ns,
        "127.0.0.1:8080",
    );
    assert_eq!(f["states"]["CLOSE_WAIT"], 50, "{f:#}");
    assert_eq!(f["eta_s"].as_f64(), Some(0.0));
    assert_remedy(f, "fix_close_path", true);
    assert_remedy(f, "restart_process", true);
    assert_remedy(f, "tcp_fin_timeout", false);
    assert_remedy(f, "tcp_tw_reuse", false);
}

/// The brief's server leak: it accepts, the peer closes, it never does. 100 at once are worth
/// an info at once; a leak is CLOSE_WAIT that stays (a minute: CLOSE_WAIT_OLD_S) while more
/// arrive, so the warning's onset is the moment the first ones are a minute old. This test
/// takes 65 s (it waits for that minute for real; the threshold is not lowered for tests).
#[test]
fn close_wait_leak_of_a_server_that_never_closes() {
    let (ns, early) = setup("cws", &[]);
    let late = LiveReport::start(ns.inode, MAX_WINDOW);
    let service = "127.0.0.1:8080";
    let args = ["--max-s", "90", "listen", service, "--accept"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-leaky", &args);
    sc.wait("ready", None, REACH);
    // The peers: 100 connections closed at once, then one a second.
    let dst = addr(service);
    let first_close = ns.run(move || {
        let burst: Vec<_> = (0..100)
            .map(|_| std::net::TcpStream::connect(dst).unwrap())
            .collect();
        drop(burst);
        mono_ns()
    });
    let peers = ns.spawn(move || {
        let end = first_close + 63 * S;
        let mut t = first_close;
        while mono_ns() < end {
            t += S;
            sleep_until_ns(t);
            drop(std::net::TcpStream::connect(dst).unwrap());
        }
    });

    let r = report_at(early, first_close + 3 * S);
    assert_within_5s(&r, first_close);
    let f = top(&r);
    assert_finding(&r, f, "close_wait_leak", "info", &sc, &ns, service);
    assert!(f["states"]["CLOSE_WAIT"].as_u64() >= Some(100), "{f:#}");

    let old = first_close + 60 * S;
    let r = report_at(late, old + 2 * S);
    assert_within_5s(&r, old);
    let f = top(&r);
    assert_finding(&r, f, "close_wait_leak", "warning", &sc, &ns, service);
    assert!(f["states"]["CLOSE_WAIT"].as_u64() >= Some(150), "{f:#}");
    assert!(num(&f["rate_per_s"]) > 0.5, "new ones keep arriving: {f:#}");
    assert_remedy(f, "fix_close_path", true);
    assert_remedy(f, "restart_process", true);
    assert_remedy(f, "tcp_fin_timeout", false);
    assert_remedy(f, "tcp_tw_reuse", false);
    peers.join().unwrap();
    sc.stop();
}

// ---------------------------------------------------------------------------------------
// SYN_SENT pile-up

/// A destination that never answers: a server that stopped accepting, whose full accept
/// queue makes the kernel drop every further SYN. Non-blocking connects pile up in SYN_SENT.
#[test]
fn syn_sent_pileup_toward_a_server_that_never_accepts() {
    let (ns, report) = setup("syn", &[]);
    let server = TestServer::start(&ns, addr("127.0.0.1:9090"), Serve::NeverAccept);
    let _queued = server.fill_accept_queue(&ns);
    let args = ["hold", "127.0.0.1:9090", "--nonblocking", "--count", "150"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-synsent", &args);
    let onset = sc.wait("reached", None, REACH);
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "syn_sent_pileup",
        "warning",
        &sc,
        &ns,
        "127.0.0.1:9090",
    );
    assert_eq!(f["states"]["SYN_SENT"], 150, "{f:#}");
    assert_remedy(f, "check_destination", true);
    assert_remedy(f, "connect_timeout", true);
    assert_remedy(f, "widen_port_range", false);
}

/// The same into a 50-port range: the hanging connects use up every port.
#[test]
fn syn_sent_pileup_exhausts_a_small_range() {
    let (ns, report) = setup("synx", &[("net.ipv4.ip_local_port_range", "40000 40049")]);
    let server = TestServer::start(&ns, addr("127.0.0.1:9090"), Serve::NeverAccept);
    let _queued = server.fill_accept_queue(&ns);
    let args = ["hold", "127.0.0.1:9090", "--nonblocking"];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-synx", &args);
    let onset = sc.wait("fail", Some("EADDRNOTAVAIL"), REACH);
    assert_eq!(
        onset.num("kept"),
        49,
        "one port went to the queued connection"
    );
    let r = report_at(report, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "syn_sent_pileup",
        "critical",
        &sc,
        &ns,
        "127.0.0.1:9090",
    );
    assert_eq!(f["states"]["SYN_SENT"], 49, "{f:#}");
    assert_remedy(f, "check_destination", true);
    assert_remedy(f, "widen_port_range", false);
}

// ---------------------------------------------------------------------------------------
// Configuration

/// Busy but healthy: 20 kept-alive connections and 100 short ones a second that the server
/// closes first (its side keeps the TIME_WAIT). Nothing above info.
#[test]
fn busy_healthy_pool_gives_nothing_above_info() {
    let (ns, report) = setup("ok", &[]);
    let _server = TestServer::start(&ns, addr("127.0.0.1:8080"), Serve::CloseFirst);
    let args = [
        "healthy",
        "127.0.0.1:8080",
        "--keepalive",
        "20",
        "--rate",
        "100",
    ];
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-healthy", &args);
    let onset = sc.wait("start", None, REACH);
    let r = report_at(report, onset.at_ns + 4 * S);
    let loud: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect();
    assert!(loud.is_empty(), "\n{}", describe(&r));
    // It was busy, and seen.
    let pool = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == "127.0.0.1:8080")
        .unwrap_or_else(|| panic!("no pool: {}", r["pools"]));
    assert!(num(&pool["rates"]["attempts_per_s"]) >= 30.0, "{pool:#}");
    assert_eq!(pool["owners"][0]["owner"]["pid"], sc.pid, "{pool:#}");
    sc.stop();
}
