//! The TUI as a person sees it: the real binary in a pseudo-terminal at 80×24, its output
//! read through a terminal emulator. `portwatch demo` (root: BPF and a network namespace)
//! must name the demo client, its destination and the cause within seconds, quit on `q` with
//! status 0 and leave the terminal as it found it, and take its client and namespace with it.
//! The binary comes from PORTWATCH_BIN (set by `cargo xtask test`); without it these fail.

use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use portwatch_tests::{live::portwatch_bin, pty::PtyChild, require_root};

const COLS: u16 = 80;
const ROWS: u16 = 24;
const DST: &str = "127.0.0.1:8080";

fn portwatch(args: &[&str]) -> Command {
    let mut cmd = Command::new(portwatch_bin());
    cmd.args(args)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    cmd
}

/// The finding's headline row: `▸CRIT time_wait_churn  demo-client(PID) → 127.0.0.1:8080 …`.
fn critical_churn_row(s: &vt100::Screen) -> Option<String> {
    s.contents().lines().find_map(|l| {
        (l.contains("CRIT")
            && l.contains("time_wait_churn")
            && l.contains("demo-client(")
            && l.contains(DST))
        .then(|| l.to_string())
    })
}

/// Processes (any thread) still in network namespace `inode`.
fn in_netns(inode: u64) -> Vec<String> {
    let mut found = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if std::fs::metadata(t.path().join("ns/net")).is_ok_and(|m| m.ino() == inode) {
                found.push(t.path().display().to_string());
            }
        }
    }
    found
}

/// Waits (bounded) until `f` holds.
fn eventually(timeout: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn demo_explains_the_exhaustion_and_quits_cleanly() {
    require_root();
    let started = Instant::now();
    let mut pty = PtyChild::spawn(portwatch(&["demo"]), COLS, ROWS);

    let found = pty.wait_for(Duration::from_secs(20), |s| critical_churn_row(s).is_some());
    let took = started.elapsed();
    assert!(
        found,
        "no critical time_wait_churn finding within 20 s:\n{}",
        pty.text()
    );
    let main_view = pty.rows().join("\n");
    println!(
        "critical finding after {:.1} s; the screen at {COLS}x{ROWS}:\n{main_view}",
        took.as_secs_f64()
    );
    let row = critical_churn_row(pty.parser.screen()).unwrap();
    let pid: u32 = row
        .split("demo-client(")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {row}"));
    assert!(row.contains("50/50 ports"), "{row}");
    // The header names the namespace the demo made.
    let netns: u64 = main_view
        .split("netns ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no netns in the header:\n{main_view}"));
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "demo-client"
    );
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino(),
        netns
    );

    // Expanded: the cause in words, the failures, and what to do.
    pty.send(b"\r");
    let explained = pty.wait_for(Duration::from_secs(5), |s| {
        let t = s.contents();
        t.contains("closes them first")
            && t.contains("60 s in TIME_WAIT")
            && t.contains("EADDRNOTAVAIL")
            && t.contains("Reuse connections in demo-client")
    });
    assert!(
        explained,
        "the expanded finding lacks the cause or remedy:\n{}",
        pty.text()
    );
    println!("expanded:\n{}", pty.rows().join("\n"));

    pty.send(b"q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();
    // Its client and its namespace went with it.
    assert!(
        eventually(Duration::from_secs(5), || !Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()),
        "demo client {pid} outlived portwatch"
    );
    assert!(
        eventually(Duration::from_secs(5), || in_netns(netns).is_empty()),
        "left in the demo namespace: {:?}",
        in_netns(netns)
    );
}

#[test]
fn sigterm_restores_the_terminal_and_exits_0() {
    require_root();
    let mut pty = PtyChild::spawn(portwatch(&["demo", "--rate", "5"]), COLS, ROWS);
    let up = pty.wait_for(Duration::from_secs(20), |s| s.contents().contains("● live"));
    assert!(up, "the TUI did not come up:\n{}", pty.text());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pty.child.id() as i32, libc::SIGTERM) };
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();
}

/// The live TUI on one namespace: once it has quit and restored the terminal, it says what it
/// received and lost (the line `portwatch events` prints), so that losses never go unsaid
/// with the screen.
#[test]
fn the_live_tui_says_what_it_received_and_lost_when_it_quits() {
    require_root();
    let ns = portwatch_tests::Netns::new("pw-tui-live");
    let mut pty = PtyChild::spawn(portwatch(&["--netns", &ns.inode.to_string()]), COLS, ROWS);
    assert!(
        pty.wait_for(Duration::from_secs(30), |s| s.contents().contains("● live")),
        "no live header within 30 s:\n{}",
        pty.text()
    );
    // A few connections for it to see.
    ns.run(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        for _ in 0..5 {
            let c = std::net::TcpStream::connect(addr).unwrap();
            drop(l.accept().unwrap());
            drop(c);
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    pty.send(b"q");
    let status = pty.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let out = String::from_utf8_lossy(&pty.raw).into_owned();
    let line = out
        .lines()
        .find(|l| l.contains("events received"))
        .unwrap_or_else(|| panic!("no summary after quitting:\n{}", pty.text()));
    let received: u64 = line
        .split("portwatch: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(
        received >= 5 * 5,
        "5 connections' transitions at least: {line}"
    );
    // No record lost for want of room or reading. (Skipped program runs are counted for
    // every namespace, the program not having looked at the socket yet: another load on the
    // machine can add some; they are said, in the same line.)
    assert!(
        line.contains("(ring full or unreadable: state 0, call 0, timewait 0;"),
        "{line}"
    );
    assert!(line.contains("undecodable 0)"), "{line}");
}
