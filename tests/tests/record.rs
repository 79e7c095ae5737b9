//! `portwatch record` end to end: a real scenario recorded, the recorder killed with SIGKILL,
//! and the recording still gives the findings the live report gave; file safety; export
//! schema. Root only; the binary comes from PORTWATCH_BIN (`cargo xtask test` sets it).

use std::{
    io::{BufRead, BufReader, Read},
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use portwatch::netns::Netns;
use portwatch_lab::churn::{self, ChurnOpts, Closer, Server};
use portwatch_tests::{live::portwatch_bin, require_root};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pw-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Spawns portwatch and waits until it says it is tracing/recording (stderr).
fn start(args: &[&str], ready: &str) -> (Child, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(portwatch_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains(ready) {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "portwatch {args:?} exited before `{ready}`"
        );
    }
    (child, err)
}

/// Kills the child when dropped (a failed assertion must not leave a recorder behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The comparable part of the top findings.
fn findings(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} pid={} dst={} cap={} in_use={}",
                f["cause"], f["severity"], f["pid"], f["dst"], f["capacity"], f["in_use"]
            )
        })
        .collect()
}

#[test]
fn a_recording_cut_by_sigkill_reports_what_live_reported() {
    require_root();
    let ns = Netns::create().unwrap();
    ns.sysctl("net/ipv4/ip_local_port_range", "40000 40049")
        .unwrap();
    ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
    let inode = ns.inode.to_string();
    let file = tmp("killed.pwr");
    // Bounded, and killed by the guard if an assertion fails first: never an orphan.
    let (recorder, _rec_err) = start(
        &[
            "record",
            "--duration",
            "60s",
            "-o",
            file.to_str().unwrap(),
            "--netns",
            &inode,
        ],
        "recording to",
    );
    let mut recorder = KillOnDrop(recorder);
    let (mut reporter, mut rep_err) = start(
        &["report", "--json", "--netns", &inode, "--duration", "6s"],
        "tracing for",
    );

    // Exhaustion: 50 ports, the client closes first, 60 s of TIME_WAIT each.
    let dst = "127.0.0.1:8080".parse().unwrap();
    let server = Server::start(&ns, dst, Closer::Client, 1).unwrap();
    let report = churn::churn(
        &ns,
        &ChurnOpts {
            dst,
            threads: 1,
            duration: Duration::from_secs(3),
            max_connections: None,
            closer: Closer::Client,
            backoff_on_error: Duration::from_millis(20),
        },
    )
    .unwrap();
    // At least the range, not exactly: now and then the kernel gives a port back before its
    // 60 s are up, with tcp_tw_reuse=0 (seen 51-58 connections in 50 ports with a plain python
    // loop and no portwatch attached, on a loaded machine; the mechanism is not pinned down).
    // What matters here is that the pool ran out, asserted next to this.
    assert!(report.connections >= 50, "{report:?}");
    assert!(
        report.failures.get("EADDRNOTAVAIL").copied().unwrap_or(0) > 0,
        "{report:?}"
    );
    server.stop_after(50, Duration::from_secs(5));

    let mut live_json = String::new();
    reporter
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut live_json)
        .unwrap();
    let mut rest = String::new();
    rep_err.read_to_string(&mut rest).unwrap();
    assert!(reporter.wait().unwrap().success(), "{rest}");
    // Let the recorder write its last full chunk (it flushes every second), then kill it.
    std::thread::sleep(Duration::from_millis(2500));
    recorder.0.kill().unwrap(); // SIGKILL: no chance to finish the file
    recorder.0.wait().unwrap();

    let out = Command::new(portwatch_bin())
        .args(["report", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("truncated") || stderr.contains("warning"),
        "the cut is reported: {stderr}"
    );
    let live: serde_json::Value = serde_json::from_str(&live_json).unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = std::process::id();
    assert_eq!(
        live["findings"][0]["cause"], "time_wait_churn",
        "{live_json}"
    );
    assert_eq!(live["findings"][0]["pid"], me);
    assert_eq!(findings(&recorded), findings(&live), "recording vs live");

    // info says the file was cut short (exit status 2), and what it holds.
    let info = Command::new(portwatch_bin())
        .arg("info")
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert_eq!(info.status.code(), Some(2), "{text}");
    assert!(text.contains("truncated"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("context") && l.contains("startup")),
        "the start-up snapshot is in the file: {text}"
    );
}

#[test]
fn recordings_are_private_fresh_and_never_through_a_symlink() {
    require_root();
    let file = tmp("private.pwr");
    let out = Command::new(portwatch_bin())
        .args(["record", "--duration", "1s", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Exists: refused without --force, replaced with it.
    let again = Command::new(portwatch_bin())
        .args(["record", "--duration", "1s", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let forced = Command::new(portwatch_bin())
        .args(["record", "--force", "--duration", "1s", "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );

    // A symlink is never followed, even with --force.
    let target = tmp("target");
    std::fs::write(&target, b"precious").unwrap();
    let link = tmp("link.pwr");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let via = Command::new(portwatch_bin())
        .args(["record", "--force", "--duration", "1s", "-o"])
        .arg(&link)
        .output()
        .unwrap();
    assert!(!via.status.success());
    assert_eq!(std::fs::read(&target).unwrap(), b"precious");
}

#[test]
fn export_has_the_documented_columns() {
    require_root();
    let ns = Netns::create().unwrap();
    let file = tmp("export.pwr");
    let inode = ns.inode.to_string();
    let (mut rec, _err) = start(
        &[
            "record",
            "--duration",
            "3s",
            "--netns",
            &inode,
            "-o",
            file.to_str().unwrap(),
        ],
        "recording to",
    );
    let dst = "127.0.0.1:9000".parse().unwrap();
    let server = Server::start(&ns, dst, Closer::Client, 1).unwrap();
    let opts = ChurnOpts {
        dst,
        threads: 1,
        duration: Duration::from_secs(1),
        max_connections: Some(5),
        closer: Closer::Client,
        backoff_on_error: Duration::from_millis(10),
    };
    assert_eq!(churn::churn(&ns, &opts).unwrap().connections, 5);
    server.stop_after(5, Duration::from_secs(5));
    assert!(rec.wait().unwrap().success());

    let csv = Command::new(portwatch_bin())
        .args(["export", "--format", "csv"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(csv.status.success());
    let text = String::from_utf8_lossy(&csv.stdout);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "time,ts_ns,netns,pid,tid,ppid,comm,type,op,old_state,new_state,local,remote,errno,fd,sk,bound_port,remaining_jiffies"
    );
    assert!(
        lines.any(|l| l.contains("SYN_SENT") && l.contains("127.0.0.1:9000")),
        "{text}"
    );

    let jsonl = Command::new(portwatch_bin())
        .args(["export", "--format", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&jsonl.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 5 connections: 10 transitions each, the listener's 2, 5 timewait starts, 1 bind.
    let states = rows.iter().filter(|r| r["type"] == "state").count();
    assert_eq!(states, 52, "{rows:#?}");
    assert!(rows.iter().all(|r| r["netns"] == ns.inode));
}
