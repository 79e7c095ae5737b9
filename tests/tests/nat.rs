//! Issue 13, SNAT exhaustion: a client namespace (the "pod") reaches a remote namespace through
//! a router namespace whose nftables rule masquerades to 10 ports (`to :40000-40009`). A real
//! client (python3) holds 15 connections to a real server (python3) in the remote namespace:
//! 10 establish, the SYNs of the other 5 are dropped at the router (conntrack insert_failed).
//! `portwatch report` (every namespace traced) must say `snat_exhaustion`, naming the client's
//! process and namespace, the destination, and 10 of 10 NAT ports in use; the recording of the
//! same window must give the same finding; and the same client without the NAT gets no such
//! finding. Addresses (198.18.0.0/15, the benchmarking range) exist only inside the
//! namespaces the test makes. Root only: fails (never skips) without it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use portwatch_tests::{Netns, live::*, sh};
use serde_json::Value;

const POD_IP: &str = "198.18.1.2";
const REMOTE: &str = "198.18.2.2:80";
const CONNECTIONS: usize = 15;
const NAT_PORTS: u64 = 10;

/// One test at a time: both build the same addresses in namespaces of their own and trace
/// every namespace, and the model ties a pod's connections to a NAT by addresses, so one
/// test's NAT would explain the other's client (seen in a loaded run: "no NAT, no NAT finding"
/// failed with the masquerade test's pool).
static ONE_TOPOLOGY: Mutex<()> = Mutex::new(());

struct Topology {
    pod: Netns,
    router: Netns,
    remote: Netns,
}

/// pod (198.18.1.2) — router (198.18.1.1 | 198.18.2.1) — remote (198.18.2.2), joined by
/// veth pairs; with `nat`, the router masquerades TCP leaving toward remote to 10 ports;
/// without, remote routes back to the pod's subnet through the router.
fn topology(nat: bool) -> Topology {
    let t = Topology {
        pod: Netns::new("natpod"),
        router: Netns::new("natrt"),
        remote: Netns::new("natrm"),
    };
    let ip = |ns: &Netns, args: &str| {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &ns.name]).args(args.split_whitespace());
        sh(&mut cmd);
    };
    ip(
        &t.router,
        &format!("link add rp type veth peer name eth0 netns {}", t.pod.name),
    );
    ip(
        &t.router,
        &format!(
            "link add rr type veth peer name eth0 netns {}",
            t.remote.name
        ),
    );
    ip(&t.pod, "addr add 198.18.1.2/24 dev eth0");
    ip(&t.pod, "link set eth0 up");
    ip(&t.pod, "route add default via 198.18.1.1");
    ip(&t.router, "addr add 198.18.1.1/24 dev rp");
    ip(&t.router, "addr add 198.18.2.1/24 dev rr");
    ip(&t.router, "link set rp up");
    ip(&t.router, "link set rr up");
    ip(&t.remote, "addr add 198.18.2.2/24 dev eth0");
    ip(&t.remote, "link set eth0 up");
    t.router.sysctl("net.ipv4.ip_forward", "1");
    if nat {
        let rules = "table ip nat {\n\
                     chain post {\n\
                     type nat hook postrouting priority 100; policy accept;\n\
                     oifname \"rr\" meta l4proto tcp masquerade to :40000-40009\n\
                     }\n\
                     }\n";
        let mut nft = Command::new("ip")
            .args(["netns", "exec", &t.router.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn nft (apt-get install nftables)");
        use std::io::Write as _;
        nft.stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft -f failed");
    } else {
        ip(&t.remote, "route add 198.18.1.0/24 via 198.18.2.1");
    }
    t
}

const SERVER: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.2.2", 80))
s.listen(128)
print("listening", flush=True)
held = []
s.settimeout(0.5)
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        c, _ = s.accept()
        held.append(c)
    except socket.timeout:
        pass
"#;

const CLIENT: &str = r#"
import os, select, socket, sys, time
n, hold = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(n):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("198.18.2.2", 80))
    socks.append(c)
time.sleep(2.5)
done = 0
for c in socks:
    if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
        try:
            c.getpeername()
            done += 1
        except OSError:
            pass
print(f"pid={os.getpid()} established={done}", flush=True)
time.sleep(hold)
"#;

fn python(ns: &Netns, script: &str, args: &[&str]) -> (Child, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "/usr/bin/python3", "-c", script])
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .expect("read python3's first line");
    (child, line.trim().to_string())
}

/// `portwatch record -o FILE` over every namespace, started and recording.
fn record(path: &std::path::Path) -> Child {
    let mut child = Command::new(portwatch_bin())
        .args(["record", "-o"])
        .arg(path)
        .args(["--duration", "90s"])
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn portwatch record");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while Instant::now() < deadline {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains("recording to") {
            // Keep draining stderr so the recorder never blocks on it.
            std::thread::spawn(move || for _ in err.lines() {});
            return child;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("portwatch record did not start: {seen}");
}

fn stop(mut child: Child) {
    // SAFETY: a signal to a child we started and have not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "portwatch record failed");
}

/// The findings about the test's namespaces (the machine is shared), best first.
fn ours<'a>(r: &'a Value, t: &Topology) -> Vec<&'a Value> {
    let mine = [t.pod.inode, t.router.inode, t.remote.inode].map(u64::from);
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["netns"].as_u64().is_some_and(|n| mine.contains(&n)))
        .collect()
}

fn summary(fs: &[&Value]) -> String {
    fs.iter()
        .map(|f| format!("{} {} {}", f["severity"], f["cause"], f["title"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_snat_finding(r: &Value, t: &Topology, client_pid: u64) {
    let fs = ours(r, t);
    let f = fs
        .first()
        .unwrap_or_else(|| panic!("no finding about the test's namespaces:\n{r:#}"));
    let got = (
        f["cause"].as_str(),
        f["severity"].as_str(),
        f["pid"].as_u64(),
        f["comm"].as_str(),
        f["netns"].as_u64(),
        f["nat_netns"].as_u64(),
        f["dst"].as_str(),
        f["in_use"].as_u64(),
        f["capacity"].as_u64(),
    );
    let want = (
        Some("snat_exhaustion"),
        Some("critical"),
        Some(client_pid),
        Some("python3"),
        Some(u64::from(t.pod.inode)),
        Some(u64::from(t.router.inode)),
        Some(REMOTE),
        Some(NAT_PORTS),
        Some(NAT_PORTS),
    );
    assert_eq!(got, want, "{}\n{f:#}", summary(&fs));
    assert_eq!(f["src_ip"], "198.18.2.1", "{f:#}");
    assert!(
        f["errors"]["conntrack_insert_failed"].as_u64() >= Some(5),
        "5 SYNs (and their retransmissions) die at the NAT: {f:#}"
    );
    assert!(
        !fs.iter().any(|f| f["cause"] == "syn_sent_pileup"),
        "the SYN_SENT pile-up is this finding: {}",
        summary(&fs)
    );
    let helps = |id: &str| {
        f["remedies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["helps"].as_bool().unwrap())
    };
    assert_eq!(helps("connection_pooling"), Some(true), "{f:#}");
    assert_eq!(helps("widen_port_range"), Some(false), "{f:#}");
    assert_eq!(helps("random_fully"), Some(false), "{f:#}");
}

#[test]
fn masquerade_to_ten_ports_is_snat_exhaustion() {
    let _one = ONE_TOPOLOGY.lock().unwrap_or_else(|e| e.into_inner());
    let t = topology(true);
    let dir = tempdir();
    let file = dir.join("nat.pwr");
    let report = LiveReport::start_all(&[], Duration::from_secs(90));
    let rec = record(&file);
    let (_server, said) = python(&t.remote, SERVER, &["40"]);
    assert_eq!(said, "listening");
    let (mut client, said) = python(&t.pod, CLIENT, &[&CONNECTIONS.to_string(), "30"]);
    let pid = u64::from(client.id());
    assert_eq!(
        said,
        format!("pid={pid} established={NAT_PORTS}"),
        "10 NAT ports: 10 of 15 connections establish"
    );
    // A few 1 s conntrack readings and SYN retransmissions (1 s, 3 s) later.
    std::thread::sleep(Duration::from_secs(5));
    let live = report.finish();
    stop(rec);
    let _ = client.kill();
    let _ = client.wait();
    eprintln!("{}", summary(&ours(&live, &t)));
    assert_snat_finding(&live, &t, pid);

    let pool = live["nat_pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["netns"].as_u64() == Some(u64::from(t.router.inode)))
        .unwrap_or_else(|| panic!("no NAT pool of the router: {:#}", live["nat_pools"]));
    assert_eq!(pool["dst"], REMOTE, "{pool:#}");
    assert_eq!(pool["in_use"].as_u64(), Some(NAT_PORTS), "{pool:#}");
    assert_eq!(
        pool["capacity"]["ports"].as_u64(),
        Some(NAT_PORTS),
        "{pool:#}"
    );
    assert_eq!(pool["capacity"]["source"], "rule", "{pool:#}");
    assert_eq!(pool["clients"][0]["orig_src_ip"], POD_IP, "{pool:#}");

    // The recording of the same window gives the same finding.
    let out = sh(Command::new(portwatch_bin())
        .args(["report", "--json"])
        .arg(&file));
    let replayed: Value = serde_json::from_str(&out).unwrap();
    assert_snat_finding(&replayed, &t, pid);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_client_without_nat_has_no_snat_finding() {
    let _one = ONE_TOPOLOGY.lock().unwrap_or_else(|e| e.into_inner());
    let t = topology(false);
    let report = LiveReport::start_all(&[], Duration::from_secs(90));
    let (_server, said) = python(&t.remote, SERVER, &["30"]);
    assert_eq!(said, "listening");
    let (mut client, said) = python(&t.pod, CLIENT, &[&CONNECTIONS.to_string(), "20"]);
    let pid = client.id();
    assert_eq!(said, format!("pid={pid} established={CONNECTIONS}"));
    std::thread::sleep(Duration::from_secs(3));
    let r = report.finish();
    let _ = client.kill();
    let _ = client.wait();
    let fs = ours(&r, &t);
    assert!(
        !fs.iter().any(|f| f["cause"] == "snat_exhaustion"),
        "no NAT, no NAT finding:\n{}",
        summary(&fs)
    );
    let mine = [t.pod.inode, t.router.inode, t.remote.inode].map(u64::from);
    assert!(
        r["nat_pools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["netns"].as_u64().is_some_and(|n| mine.contains(&n))),
        "{:#}",
        r["nat_pools"]
    );
}

/// A private directory for the recording (the test removes it when it passes).
fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pw-nat-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
