//! Issue 11, the right diagnosis on real incidents: each class reproduced with real programs
//! (python3 clients and servers of `tests/programs/`, Debian's nginx, haproxy, wrk, curl) in
//! a fresh namespace, and diagnosed twice — live, by `portwatch report --json` ending shortly
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
    let file = rec.finish();
    let r = report_file(&file);
    check(&r);
    drop((c4, c6, servers));
    eprintln!(
        "--- report {}:\n{}",
        file.display(),
        report_file_text(&file)
    );
}
