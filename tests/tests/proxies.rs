//! Issue 11, class 5 with the proxy operators configure most: Debian's HAProxy relaying TCP
//! to one upstream server, for clients in a second namespace (so that their ports are not
//! HAProxy's). Each relayed connection holds one of HAProxy's ports toward the upstream for
//! as long as the client stays; with more clients than ports, HAProxy logs "no free ports".
//! The finding must name HAProxy, the upstream, too many concurrent connections, and
//! HAProxy's own knobs with its documentation — live at onset and from the recording. Root
//! only; fails (never skips) without root or without PORTWATCH_BIN.

#[path = "causes/common.rs"]
mod common;

use common::*;
use portwatch_tests::incident::*;

const HAPROXY_SOURCE: &str = "https://docs.haproxy.org/2.6/configuration.html#5.2-source";

/// 300 clients held open through HAProxy to an upstream that never closes, in a 200-port
/// range: HAProxy holds 200 upstream connections in ESTABLISHED and its connect() fails
/// with EADDRNOTAVAIL for the rest (it retries 3 times, then closes the client).
#[test]
fn haproxy_relays_more_clients_than_it_has_ports() {
    let (ns, live) = setup("hap", &[("net.ipv4.ip_local_port_range", "40000 40199")]);
    let clients = Netns::new("hapc");
    clients.link_to(&ns, "pw0", "10.78.0.1/24", "pw1", "10.78.0.2/24");
    let rec = Recorder::start(ns.inode, "hap", MAX_WINDOW);
    let upstream = "127.0.0.1:9600";
    let mut up = python(&ns, "hold_server.py", &[upstream, "60"]);
    up.wait("ready", None, REACH);
    let hap = Haproxy::start(&ns, "10.78.0.2:8080", upstream);
    // Non-blocking connects: the kernel completes each handshake, HAProxy accepts and relays.
    let mut load = python(&clients, "nb_hold.py", &["10.78.0.2:8080", "300", "60"]);
    load.wait("reached", None, REACH);
    let onset = hap.wait_log("no free ports", REACH);
    let hap_pid = hap.pid;
    let check = |r: &Value| {
        let f = top(r);
        let got = (
            f["cause"].as_str(),
            f["severity"].as_str(),
            f["comm"].as_str(),
            f["pid"].as_u64(),
            f["netns"].as_u64(),
            f["dst"].as_str(),
        );
        let want = (
            Some("concurrency"),
            Some("critical"),
            Some("haproxy"),
            Some(u64::from(hap_pid)),
            Some(u64::from(ns.inode)),
            Some(upstream),
        );
        assert_eq!(got, want, "\n{}", describe(r));
        assert!(f["states"]["ESTABLISHED"].as_u64() >= Some(190), "{f:#}");
        assert!(f["errors"]["EADDRNOTAVAIL"].as_u64() >= Some(1), "{f:#}");
        assert_remedy(f, "haproxy_source_ranges", true);
        assert_eq!(f["remedies"][0]["id"], "haproxy_source_ranges", "{f:#}");
        let knob = &remedies(f, "haproxy_source_ranges")[0];
        assert_eq!(knob["source"], HAPROXY_SOURCE, "{knob:#}");
        assert!(
            knob["action"].as_str().unwrap().contains("maxconn"),
            "{knob:#}"
        );
        // Reusing idle connections, or TIME_WAIT knobs, do nothing for ports held open.
        for wrong in [
            "haproxy_http_reuse",
            "nginx_upstream_keepalive",
            "tcp_fin_timeout",
        ] {
            assert!(remedies(f, wrong).is_empty(), "{wrong}: {f:#}");
        }
        assert_remedy(f, "tcp_tw_reuse", false);
        assert_no_helping(f, "tcp_tw_reuse");
        let l = &r["lost_events"];
        assert_eq!(
            (&l["state"], &l["call"], &l["timewait"]),
            (&Value::from(0), &Value::from(0), &Value::from(0)),
            "events lost: {l}"
        );
    };
    let r = report_at(live, onset + 2 * S);
    assert_within_5s(&r, onset);
    check(&r);
    let file = rec.finish();
    drop(load);
    drop(hap);
    drop(up);
    let r = report_file(&file);
    check(&r);
    eprintln!(
        "--- report {}:\n{}",
        file.display(),
        report_file_text(&file)
    );
}
