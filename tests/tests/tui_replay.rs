//! `portwatch replay FILE` in a pseudo-terminal at 80×24: the header follows pause, seek and
//! speed keys, the end of the recording, and `q` leaves the terminal as it was. No kernel
//! involved (it runs without root); the recording is written here with `record::Writer`.
//! The binary comes from PORTWATCH_BIN (set by `cargo xtask test`); without it this fails.

use std::{path::Path, process::Command, time::Duration};

use portwatch::{
    event::{Comm, Event, EventKind, StateChange, Task, TcpState},
    record::{Host, Options, Writer},
};
use portwatch_tests::{live::portwatch_bin, pty::PtyChild};

const SEC: u64 = 1_000_000_000;

/// A 100 s recording: a listener opened at the start and closed at the end.
fn write_recording(path: &Path) {
    let start = 1_000 * SEC;
    let host = Host {
        start_mono_ns: start,
        ..Host::current()
    };
    let mut w = Writer::create(path, &host, Options::default()).unwrap();
    let ev = |ts_ns, old, new| Event {
        ts_ns,
        netns: 4_026_531_840,
        task: Task {
            cgroup: 0,
            pid: 42,
            tid: 42,
            ppid: 1,
            comm: Comm::new("server"),
        },
        kind: EventKind::State(StateChange {
            sk: 0xffff_0000_1000,
            local: "127.0.0.1:8080".parse().unwrap(),
            remote: "0.0.0.0:0".parse().unwrap(),
            old,
            new,
        }),
    };
    w.push(&ev(start + SEC, TcpState::Close, TcpState::Listen))
        .unwrap();
    w.push(&ev(start + 100 * SEC, TcpState::Listen, TcpState::Close))
        .unwrap();
    w.finish().unwrap();
}

fn header(pty: &PtyChild) -> String {
    pty.rows()[0].clone()
}

#[test]
fn replay_keys_move_the_header_and_q_restores_the_terminal() {
    let bin = portwatch_bin();
    let dir = tempfile_dir();
    let file = dir.join("listener.pwr");
    write_recording(&file);
    let mut cmd = Command::new(&bin);
    cmd.arg("replay")
        .arg(&file)
        .args(["--speed", "0.125"])
        .env("TERM", "xterm-256color");
    let mut pty = PtyChild::spawn(cmd, 80, 24);
    let wait = |pty: &mut PtyChild, want: &str| {
        let ok = pty.wait_for(Duration::from_secs(10), |s| {
            s.contents()
                .lines()
                .next()
                .is_some_and(|h| h.contains(want))
        });
        assert!(ok, "header never showed {want:?}:\n{}", pty.text());
    };
    wait(&mut pty, "0s / 100s  ×0.125");
    pty.send(b"p");
    wait(&mut pty, "PAUSED");
    pty.send(b"]");
    wait(&mut pty, "10s / 100s  ×0.125  PAUSED");
    // One key at a time: two keys in one write can both land before a frame shows the first.
    pty.send(b"}");
    wait(&mut pty, "70s / 100s");
    pty.send(b"}");
    wait(&mut pty, "100s / 100s  ×0.125  ENDED");
    pty.send(b"[");
    wait(&mut pty, "90s / 100s  ×0.125  PAUSED");
    pty.send(b"++");
    wait(&mut pty, "×0.5  PAUSED");
    assert!(
        header(&pty).starts_with("portwatch ▶ replay"),
        "{}",
        header(&pty)
    );
    pty.send(b"q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    pty.assert_restored();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pw-tui-replay-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
