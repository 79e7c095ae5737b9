//! Issue 11, class 1: the cause of an exhaustion comes from what held the pool when
//! `connect()` failed, not from what is left at the end of the window. A load generator
//! (`tests/programs/hold_client.py`) wants 1,500 concurrent connections to a local server
//! and gets the pool's 1,000 ports, all ESTABLISHED; ~500 connects fail with EADDRNOTAVAIL;
//! then it stops and its connections end by RST (SO_LINGER 0: no TIME_WAIT) and it exits.
//! The top finding is "too many concurrent connections" from that process toward that
//! destination — live at onset (critical, the episode ongoing), live after it ended (info:
//! a past episode, nothing fails now), and from the recording read afterwards (the same finding,
//! to the nanosecond of the episode's start and end, read twice) — never TIME_WAIT churn.
//! IPv4 (127.0.0.1) and IPv6 (::1) side by side. Root only; these fail (never skip) without
//! root or without PORTWATCH_BIN.

#[path = "causes/common.rs"]
mod common;

use common::*;
use portwatch_tests::incident::*;

const PAIRS: [(&str, &str); 2] = [("127.0.0.1:9700", "127.0.0.1"), ("[::1]:9706", "::1")];

fn finding_to<'a>(r: &'a Value, dst: &str) -> &'a Value {
    findings(r)
        .iter()
        .find(|f| f["dst"] == dst)
        .unwrap_or_else(|| panic!("no finding toward {dst}:\n{}", describe(r)))
}

/// The finding toward `dst` (the first, for that pool) is concurrency at `sev` from the
/// load generator, with the remedies for too many connections and none for TIME_WAIT; no
/// finding about the pool says TIME_WAIT churn.
fn assert_concurrency(
    r: &Value,
    dst: &str,
    src: &str,
    sev: &str,
    sc: &Scenario,
    ns: &Netns,
    failed: u64,
) -> Value {
    let f = finding_to(r, dst);
    assert_finding(r, f, "concurrency", sev, sc, ns, dst);
    assert_eq!(f["src_ip"], src, "{f:#}");
    assert_eq!(f["process_count"], 1, "{f:#}");
    assert_eq!(f["capacity"], 1000, "{f:#}");
    // What held the ports when connect() failed.
    let ep = &f["episode"];
    assert_eq!(ep["composition"]["ESTABLISHED"], 1000, "{f:#}");
    assert!(ep["composition"]["TIME_WAIT"].is_null(), "{f:#}");
    assert_eq!(ep["failures"].as_u64(), Some(failed), "{f:#}");
    assert_eq!(f["errors"]["EADDRNOTAVAIL"].as_u64(), Some(failed), "{f:#}");
    assert_remedy(f, "more_destination_addresses", true);
    assert_remedy(f, "more_source_addresses", true);
    assert_remedy(f, "widen_port_range", true);
    // tcp_tw_reuse cannot free an ESTABLISHED port; nothing about TIME_WAIT is offered.
    assert_remedy(f, "tcp_tw_reuse", false);
    for id in ["connection_pooling", "tcp_fin_timeout", "tcp_tw_recycle"] {
        assert!(remedies(f, id).is_empty(), "{id} offered: {f:#}");
    }
    assert!(
        !f["evidence"]
            .as_str()
            .unwrap()
            .contains("60 s in TIME_WAIT"),
        "{f:#}"
    );
    assert!(
        !findings(r)
            .iter()
            .any(|g| g["cause"] == "time_wait_churn" && g["dst"] == dst),
        "\n{}",
        describe(r)
    );
    f.clone()
}

/// The top finding is a past episode (the namespace has nothing else going on).
fn assert_past_on_top(r: &Value) {
    let top = top(r);
    assert!(
        top["episode"]["ongoing"] == false,
        "a past episode is the top finding:\n{}",
        describe(r)
    );
}

#[test]
fn concurrency_that_ended_by_reset_keeps_its_cause() {
    let (ns, live) = setup(
        "epi",
        &[
            ("net.ipv4.ip_local_port_range", "40000 40999"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    // A second live report, whose window covers the whole incident and ends after it, and
    // records what it saw: `report FILE` replays exactly the inputs its model took.
    let file = std::env::temp_dir().join(format!("pw-epi-{}.pwr", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let after = LiveReport::start_with(
        ns.inode,
        MAX_WINDOW,
        &[],
        &["--record", file.to_str().unwrap()],
    );
    let mut servers = Vec::new();
    for (a, _) in PAIRS {
        let mut s = python(&ns, "hold_server.py", &[a, "90"]);
        s.wait("ready", None, REACH);
        servers.push(s);
    }
    // Held for 3 s: long enough for the onset report, then RST and exit.
    let mut clients: Vec<Scenario> = PAIRS
        .iter()
        .map(|(a, _)| python(&ns, "hold_client.py", &[a, "1500", "3"]))
        .collect();
    let mut onset = 0;
    let mut failed = Vec::new();
    for c in &mut clients {
        onset = onset.max(c.wait("fail", Some("EADDRNOTAVAIL"), REACH).at_ns);
        let reached = c.wait("reached", None, REACH);
        assert_eq!(reached.num("made"), 1000, "{reached:?}");
        failed.push(reached.num("failed"));
    }
    assert!(failed.iter().all(|&n| n == 500), "{failed:?}");
    // Live, at onset: the episode is ongoing and connects are failing.
    let r = report_at(live, onset + 2 * S);
    assert_within_5s(&r, onset);
    for (i, (dst, src)) in PAIRS.iter().enumerate() {
        let f = assert_concurrency(&r, dst, src, "critical", &clients[i], &ns, failed[i]);
        assert_eq!(f["episode"]["ongoing"], true, "{f:#}");
        assert_eq!(f["states"]["ESTABLISHED"], 1000, "{f:#}");
    }
    // It stops: RST, no TIME_WAIT, and the process exits.
    let mut stopped = 0;
    for c in &mut clients {
        stopped = stopped.max(c.wait("stopped", None, REACH).at_ns);
    }
    // The episode ends 10 s after the last failure or fall under 90 %; a report after that.
    let r = report_at(after, stopped + 13 * S);
    let mut live_after = Vec::new();
    for (i, (dst, src)) in PAIRS.iter().enumerate() {
        let f = assert_concurrency(&r, dst, src, "info", &clients[i], &ns, failed[i]);
        assert_eq!(f["episode"]["ongoing"], false, "{f:#}");
        assert!(
            f["title"].as_str().unwrap().contains("past episode"),
            "{f:#}"
        );
        // `in_use` and `states` are the pool now (empty); what held it is the composition.
        assert_eq!(f["in_use"], 0, "{f:#}");
        assert!(
            f["evidence"]
                .as_str()
                .unwrap()
                .contains("now 0 of the 1,000 ports"),
            "{f:#}"
        );
        live_after.push(f);
    }
    assert_past_on_top(&r);
    // The recording, read after the incident (twice, seconds apart: model time only), gives
    // the live report's findings exactly.
    let a = report_file(&file);
    std::thread::sleep(Duration::from_secs(2));
    let b = report_file(&file);
    assert_eq!(a["findings"], b["findings"], "the same report, read later");
    assert_eq!(
        a["findings"], r["findings"],
        "the recording gives the live findings"
    );
    assert_eq!(a["episodes"], r["episodes"], "and the same episodes");
    for (i, (dst, src)) in PAIRS.iter().enumerate() {
        let f = assert_concurrency(&a, dst, src, "info", &clients[i], &ns, failed[i]);
        assert_eq!(f, live_after[i]);
    }
    assert_past_on_top(&a);
    eprintln!(
        "--- report {}:\n{}",
        file.display(),
        report_file_text(&file)
    );
    drop((clients, servers));
}

/// A neighbour of the class: TIME_WAIT churn whose client stopped. A python3 client closes
/// each connection first until a 200-port range is out (tcp_tw_reuse 0), retries twice a
/// second for 3 s and exits. Its ports sit 60 s in TIME_WAIT, so the episode ends only once
/// they expire (the pool under 90 %) and 10 s have passed: a report after that still says
/// TIME_WAIT churn from that process — a past episode, from what held the pool when
/// connect() failed — with the TIME_WAIT remedies, live and from its recording.
#[test]
fn time_wait_churn_whose_client_stopped_keeps_its_cause() {
    let (ns, live) = setup(
        "ept",
        &[
            ("net.ipv4.ip_local_port_range", "40000 40199"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    let file = std::env::temp_dir().join(format!("pw-ept-{}.pwr", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let after = LiveReport::start_with(
        ns.inode,
        MAX_WINDOW,
        &[],
        &["--record", file.to_str().unwrap()],
    );
    let dst = "127.0.0.1:9800";
    let _server = TestServer::start(&ns, addr(dst), Serve::CloseAfterClient);
    let mut client = python(&ns, "close_client.py", &[dst, "100000", "0", "3"]);
    let onset = client.wait("fail", Some("EADDRNOTAVAIL"), REACH).at_ns;
    let r = report_at(live, onset + 2 * S);
    assert_within_5s(&r, onset);
    let f = check_churn(&r, "critical", &client, &ns, dst);
    assert!(f["states"]["TIME_WAIT"].as_u64() >= Some(190), "{f:#}");
    client.wait("reached", None, REACH);
    // TIME_WAIT is 60 s (TCP_TIMEWAIT_LEN), and its timer may fire up to ~2 s late (the
    // timer wheel's granularity for a 15,000-jiffy timer at HZ=250 is 512 jiffies); the
    // episode ends 10 s after the pool is under 90 % of its ports.
    let r = report_at(after, onset + 80 * S);
    let f = check_churn(&r, "info", &client, &ns, dst);
    assert_eq!(f["episode"]["ongoing"], false, "{f:#}");
    assert!(
        f["title"].as_str().unwrap().contains("past episode"),
        "{f:#}"
    );
    assert_eq!(top(&r), &f, "the past episode is the top finding");
    let a = report_file(&file);
    assert_eq!(
        a["findings"], r["findings"],
        "the recording gives the live findings"
    );
    check_churn(&a, "info", &client, &ns, dst);
    eprintln!(
        "--- report {}:\n{}",
        file.display(),
        report_file_text(&file)
    );
}

/// The finding toward `dst` is TIME_WAIT churn at `sev` from `client`, read from a pool of
/// TIME_WAIT when connect() failed, with the TIME_WAIT remedies; nothing says concurrency.
fn check_churn(r: &Value, sev: &str, client: &Scenario, ns: &Netns, dst: &str) -> Value {
    let f = finding_to(r, dst);
    assert_finding(r, f, "time_wait_churn", sev, client, ns, dst);
    assert_eq!(f["process_count"], 1, "{f:#}");
    let ep = &f["episode"];
    // Closed first: in FIN_WAIT1/2 or TIME_WAIT when connect() failed.
    let closing: u64 = ["FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT"]
        .iter()
        .filter_map(|s| ep["composition"][s].as_u64())
        .sum();
    assert!(closing >= 190, "{f:#}");
    assert!(
        !f["evidence"].as_str().unwrap().contains(" 0/s"),
        "the demand when connect() failed: {f:#}"
    );
    assert!(ep["failures"].as_u64() >= Some(1), "{f:#}");
    assert_remedy(f, "connection_pooling", true);
    assert_remedy(f, "tcp_tw_reuse", true);
    assert_remedy(f, "tcp_fin_timeout", false);
    assert!(
        !findings(r)
            .iter()
            .any(|g| g["cause"] == "concurrency" && g["dst"] == dst),
        "\n{}",
        describe(r)
    );
    f.clone()
}
