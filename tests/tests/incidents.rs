//! Issue 11, the right diagnosis on real incidents: each class reproduced with real programs
//! (python3 clients and servers of `tests/programs/`; the programs operators configure —
//! nginx, HAProxy, curl — are in `programs.rs`) in a fresh namespace, and diagnosed twice — live, by `portwatch report --json` ending shortly
//! after the onset, and after the incident ended, from a recording taken during it. Root
//! only; these fail (never skip) without root or without PORTWATCH_BIN.

#[path = "causes/common.rs"]
mod common;

use common::*;
use portwatch_tests::incident::*;

/// Every owner of the pool toward `dst` is known, and is `sc`.
fn assert_pool_owned_by(r: &Value, dst: &str, sc: &Scenario, sockets: u64) {
    let pool = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == dst)
        .unwrap_or_else(|| panic!("no pool toward {dst}: {}", r["pools"]));
    let owners = pool["owners"].as_array().unwrap();
    assert_eq!(owners.len(), 1, "one owner, known: {pool:#}");
    assert_eq!(owners[0]["owner"]["pid"], sc.pid, "{pool:#}");
    assert!(owners[0]["total"].as_u64() >= Some(sockets), "{pool:#}");
}

/// Class 3. Non-blocking connects toward a server that never answers wait in SYN_SENT; the
/// state tracepoint fired before their ports were chosen and no later transition shows
/// them. Past the periodic sock_diag reconciliation (10 s) they still belong to the client
/// that made them — IPv4 and IPv6 side by side, live and from the recording.
#[test]
fn syn_sent_connects_keep_their_owner_through_reconciliation() {
    let (ns, live) = setup("nbc", &[]);
    let rec = Recorder::start(ns.inode, "nbc", MAX_WINDOW);
    let mut servers = Vec::new();
    for a in ["127.0.0.1:9400", "[::1]:9406"] {
        let mut s = python(&ns, "listen_only.py", &[a]);
        s.wait("ready", None, REACH);
        servers.push(s);
    }
    let mut c4 = python(&ns, "nb_hold.py", &["127.0.0.1:9400", "300"]);
    let mut c6 = python(&ns, "nb_hold.py", &["[::1]:9406", "300"]);
    let onset = c4.wait("reached", None, REACH);
    c6.wait("reached", None, REACH);
    let check = |r: &Value| {
        for (sc, dst) in [(&c4, "127.0.0.1:9400"), (&c6, "[::1]:9406")] {
            let f = findings(r)
                .iter()
                .find(|f| f["dst"] == dst)
                .unwrap_or_else(|| panic!("no finding toward {dst}:\n{}", describe(r)));
            assert_finding(r, f, "syn_sent_pileup", "warning", sc, &ns, dst);
            // One connection fills the accept queue and is established; 299 wait.
            assert_eq!(f["states"]["SYN_SENT"], 299, "{f:#}");
            assert_eq!(f["process_count"], 1, "{f:#}");
            assert_remedy(f, "check_destination", true);
            assert_remedy(f, "widen_port_range", false);
            assert_pool_owned_by(r, dst, sc, 300);
        }
    };
    // Past the live report's first reconciliation.
    let r = report_at(live, onset.at_ns + 12 * S);
    check(&r);
    assert!(
        r["model"]["reconciliations"].as_u64() >= Some(1),
        "{}",
        r["model"]
    );
    // The recording ends; it is read afterwards, as it would be an hour later.
    check_recording(rec, check);
    drop((c4, c6, servers));
}

/// The finding of this cause toward `dst`.
fn finding_to<'a>(r: &'a Value, cause: &str, dst: &str) -> &'a Value {
    findings(r)
        .iter()
        .find(|f| f["cause"] == cause && f["dst"] == dst)
        .unwrap_or_else(|| panic!("no {cause} finding toward {dst}:\n{}", describe(r)))
}

fn rank_of(r: &Value, f: &Value) -> usize {
    findings(r).iter().position(|g| g == f).unwrap()
}

/// Class 2. Clients close their connections first; the local server never closes its ends
/// (CLOSE_WAIT there), so the clients' ports wait in FIN_WAIT2 — not TIME_WAIT — until
/// `tcp_fin_timeout` (60 s), and a 500-port range runs out. The server's leak is the root
/// cause and ranks first; the clients' finding says FIN_WAIT2, and that `tcp_fin_timeout` is
/// the knob (and `tcp_tw_reuse` is not). IPv4 and IPv6 side by side.
#[test]
fn fin_wait2_behind_a_local_close_wait_leak() {
    let (ns, live) = setup(
        "fw2",
        &[
            ("net.ipv4.ip_local_port_range", "40000 40499"),
            ("net.ipv4.tcp_tw_reuse", "0"),
        ],
    );
    let rec = Recorder::start(ns.inode, "fw2", MAX_WINDOW);
    let pairs = [("127.0.0.1:9500", "v4"), ("[::1]:9506", "v6")];
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for (a, _) in pairs {
        let mut s = python(&ns, "hold_server.py", &[a]);
        s.wait("ready", None, REACH);
        servers.push(s);
    }
    for (a, _) in pairs {
        clients.push(python(&ns, "close_client.py", &[a]));
    }
    let mut onset = 0;
    for c in &mut clients {
        onset = onset.max(c.wait("fail", Some("EADDRNOTAVAIL"), REACH).at_ns);
    }
    let check = |r: &Value| {
        for (i, (dst, _)) in pairs.iter().enumerate() {
            let leak = finding_to(r, "close_wait_leak", dst);
            assert_finding(
                r,
                leak,
                "close_wait_leak",
                "critical",
                &servers[i],
                &ns,
                dst,
            );
            assert!(
                leak["states"]["CLOSE_WAIT"].as_u64() >= Some(490),
                "{leak:#}"
            );
            assert_remedy(leak, "fix_close_path", true);
            assert_remedy(leak, "tcp_fin_timeout", false);
            let hold = finding_to(r, "fin_wait2_hold", dst);
            assert_finding(r, hold, "fin_wait2_hold", "critical", &clients[i], &ns, dst);
            assert!(
                hold["states"]["FIN_WAIT2"].as_u64() >= Some(490),
                "{hold:#}"
            );
            assert!(
                hold["errors"]["EADDRNOTAVAIL"].as_u64() >= Some(1),
                "{hold:#}"
            );
            assert_remedy(hold, "fix_peer_close_path", true);
            assert_remedy(hold, "tcp_fin_timeout", true);
            assert_remedy(hold, "tcp_tw_reuse", false);
            assert!(
                hold["evidence"].as_str().unwrap().contains("FIN_WAIT2"),
                "{hold:#}"
            );
            // The root cause first; nothing calls it TIME_WAIT churn.
            assert!(rank_of(r, leak) < rank_of(r, hold), "\n{}", describe(r));
            assert!(
                !findings(r)
                    .iter()
                    .any(|f| f["cause"] == "time_wait_churn" && f["dst"] == *dst),
                "\n{}",
                describe(r)
            );
        }
        // A root cause ranks first.
        assert_eq!(top(r)["cause"], "close_wait_leak", "\n{}", describe(r));
    };
    let r = report_at(live, onset + 2 * S);
    assert_within_5s(&r, onset);
    check(&r);
    check_recording(rec, check);
    drop((clients, servers));
}

/// Class 4. A server that closes its connections first is restarted; its new bind() (no
/// SO_REUSEADDR) fails with EADDRINUSE while the previous instance's 300 TIME_WAIT sockets
/// hold the port. The finding names the process whose bind() fails, not the old instance
/// (killed: it holds nothing), and says SO_REUSEADDR is the fix.
#[test]
fn bind_conflict_on_time_wait_of_a_killed_server() {
    let (ns, live) = setup("tw4", &[]);
    let mut old = python(&ns, "close_first_server.py", &["127.0.0.1:9400", "noreuse"]);
    old.wait("ready", None, REACH);
    let mut clients = python(&ns, "read_client.py", &["127.0.0.1:9400", "300"]);
    clients.wait("reached", None, REACH);
    let old_pid = old.pid;
    // SAFETY: a signal to a child we started.
    unsafe { libc::kill(old_pid as i32, libc::SIGKILL) };
    drop(old);
    let mut new = python(
        &ns,
        "close_first_server.py",
        &["127.0.0.1:9400", "noreuse", "5"],
    );
    let onset = new.wait("fail", Some("EADDRINUSE"), REACH);
    let r = report_at(live, onset.at_ns + 2 * S);
    assert_within_5s(&r, onset.at_ns);
    let f = top(&r);
    assert_finding(
        &r,
        f,
        "bind_conflict",
        "critical",
        &new,
        &ns,
        "127.0.0.1:9400",
    );
    let said = format!("{} {}", f["title"], f["evidence"]);
    assert!(!said.contains(&format!("pid {old_pid}")), "{f:#}");
    assert!(!said.contains("listens on"), "{f:#}");
    assert_remedy(f, "so_reuseaddr", true);
    assert_remedy(f, "tcp_tw_reuse", false);
    drop((clients, new));
}

/// Class 2's neighbour: a client closes first toward a server in another namespace (not
/// traced) that closes 0.3 s later. Each client port sits in a timewait socket's FIN_WAIT2
/// substate until that FIN arrives, and the kernel's move to TIME_WAIT is usually untraced
/// (the re-armed timer lands in the same wheel bucket). The model must not call these ports
/// FIN_WAIT2 — a peer that never closes — for the 10 s until the periodic reconciliation:
/// the session reconciles early, so a report 3 s in shows them in TIME_WAIT.
#[test]
fn remote_peer_close_moves_fin_wait2_to_time_wait() {
    let (ns, live) = setup("fw2r", &[]);
    let peer = Netns::new("fw2rpeer");
    ns.link_to(&peer, "pw0", "10.79.0.1/24", "pw1", "10.79.0.2/24");
    let dst = "10.79.0.2:8080";
    let mut server = python(&peer, "slow_close_server.py", &[dst, "0.3", "30"]);
    server.wait("ready", None, REACH);
    let mut client = python(&ns, "close_client.py", &[dst, "60", "100", "30"]);
    let done = client.wait("reached", None, REACH);
    let r = report_at(live, done.at_ns + 3 * S);
    let pool = r["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == dst)
        .unwrap_or_else(|| panic!("no pool toward {dst}:\n{}", describe(&r)));
    assert_eq!(pool["states"]["TIME_WAIT"], 60, "{pool:#}\n{}", r["model"]);
    assert!(pool["states"].get("FIN_WAIT2").is_none(), "{pool:#}");
    assert!(
        findings(&r).iter().all(|f| f["cause"] != "fin_wait2_hold"),
        "\n{}",
        describe(&r)
    );
    drop((client, server));
}
