//! The `portwatch` binary itself: `check` and `events --json` against live traffic. Root only.
//! The binary comes from PORTWATCH_BIN (set by `cargo xtask test`); without it these fail.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use portwatch_tests::{live::portwatch_bin, *};

#[test]
fn check_says_this_machine_can_run_it() {
    require_root();
    let out = Command::new(portwatch_bin()).arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("portwatch can run here."), "{text}");
    for item in [
        "privileges",
        "BTF",
        "tracefs",
        "tp_btf/inet_sock_set_state",
        "syscalls/sys_exit_connect",
        "tp_btf/timer_start",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(item)),
            "{item}: {text}"
        );
    }
}

#[test]
fn events_json_streams_transitions_failures_and_timewait() {
    let ns = Netns::new("pw-cli");
    let mut child = Command::new(portwatch_bin())
        .args([
            "events",
            "--json",
            "--netns",
            &ns.inode.to_string(),
            "--duration",
            "4s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it is tracing.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("tracing") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "portwatch exited before tracing"
        );
    }
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    ns.run(move || {
        let listener = TcpListener::bind(dst).unwrap();
        let mut c = TcpStream::connect(dst).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        c.write_all(b"x").unwrap();
        drop(c);
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        thread::sleep(Duration::from_millis(100));
        // A refused connection: nobody listens on 9.
        assert!(TcpStream::connect("127.0.0.1:9").is_err());
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let has = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().any(pred);
    assert!(
        has(&|e| e["type"] == "state"
            && e["old"] == "CLOSE"
            && e["new"] == "SYN_SENT"
            && e["remote"] == "127.0.0.1:8080"
            && e["task"]["pid"] == std::process::id()),
        "{stdout}"
    );
    assert!(
        has(&|e| e["type"] == "time_wait" && e["op"] == "start" && e["substate"] == "FIN_WAIT2"),
        "{stdout}"
    );
    assert!(
        has(&|e| e["type"] == "call"
            && e["call"] == "connect"
            && e["error"] == "ECONNREFUSED"
            && e["addr"] == "127.0.0.1:9"),
        "{stdout}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["netns"] == ns.inode && e["time"].is_string()),
        "{stdout}"
    );
    // Ring-buffer and decoding losses of this namespace: none. (Skipped program runs are
    // counted for the whole machine and are not asserted here.)
    assert!(
        rest.contains("ring full or unreadable: state 0, call 0, timewait 0;")
            && rest.contains("undecodable 0"),
        "{rest}"
    );
}

/// Runs portwatch with `args`; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(portwatch_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn errors_say_their_cause_once() {
    let missing = "/nonexistent/portwatch-test.pwr";
    for args in [
        &["report", missing][..],
        &["info", missing],
        &["export", missing, "--format", "csv"],
        &["replay", missing],
        &["record", "-o", missing, "--duration", "1"],
    ] {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.starts_with("portwatch: error: "), "{args:?}: {err}");
        assert_eq!(
            err.matches("No such file or directory").count(),
            1,
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("/nonexistent").count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_bare_duration_is_seconds() {
    require_root();
    let ns = Netns::new("pw-cli-dur");
    let t0 = std::time::Instant::now();
    let (ok, out, err) = run(&[
        "report",
        "--duration",
        "3",
        "--json",
        "--netns",
        &ns.inode.to_string(),
    ]);
    let took = t0.elapsed();
    assert!(ok, "{err}");
    assert!(err.contains("tracing for 3s"), "{err}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (start, end) = (
        report["context"]["window_start_ns"].as_u64().unwrap(),
        report["context"]["window_end_ns"].as_u64().unwrap(),
    );
    // From the start-up snapshot (the programs attached) to the last tick: the 3 s asked
    // for, not the second of set-up before them.
    assert!(
        (3_000_000_000..3_500_000_000).contains(&(end - start)),
        "{start}..{end}: {} s",
        (end - start) as f64 / 1e9
    );
    // Units still work; garbage says what a duration looks like.
    let (ok, _, err) = run(&["report", "--duration", "soon"]);
    assert!(!ok && err.contains("e.g. 14, 10s, 2m"), "{err}");
}

#[test]
fn completions_and_man_pages_are_generated_and_parse() {
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let (ok, script, err) = run(&["completions", shell]);
        assert!(ok && script.contains("portwatch"), "{shell}: {err}");
        for word in ["report", "--duration", "--json", "completions"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
        let path = std::env::temp_dir().join(format!("portwatch-completion.{shell}"));
        std::fs::write(&path, &script).unwrap();
        // `-n`: parse without running. The shells come from .ci/run's install list.
        let out = Command::new(check)
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{check} (install it: apt-get install {check}): {e}"));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = std::env::temp_dir().join(format!("portwatch-man.{}", std::process::id()));
    let (ok, _, err) = run(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    for page in [
        "portwatch.1",
        "portwatch-report.1",
        "portwatch-record.1",
        "portwatch-check.1",
    ] {
        let path = dir.join(page);
        assert!(path.exists(), "{page} missing");
        // groff in warning-all mode, output discarded: any warning is a malformed page.
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&path)
            .output()
            .expect("groff (Debian groff-base)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let (_, page, _) = run(&["man"]);
    assert!(page.contains(".TH portwatch 1"), "{page}");
    assert!(page.contains("report"), "{page}");
}
