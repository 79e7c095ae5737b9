//! Helpers for the incident tests (issue 11): real programs started in a test's namespace
//! (Debian's nginx, haproxy, wrk, curl, and the python3 scripts of `tests/programs/`), and a
//! recording taken during the incident that is reported on after it ended.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub use crate::daemons::{Haproxy, Nginx};
use crate::{Netns, live::Scenario, live::portwatch_bin, require_root};

/// Debian's python3 (not a pyenv shim): its `comm` is `python3`.
pub const PYTHON: &str = "/usr/bin/python3";

/// Path of a script in `tests/programs/`.
pub fn program(name: &str) -> String {
    format!("{}/programs/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `ip netns exec NS BIN ARGS…` (which execs: the program keeps the spawned pid).
pub fn in_netns(ns: &Netns, bin: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &ns.name, bin]).args(args);
    c
}

/// A python3 script of `tests/programs/` in the namespace, as a [`Scenario`] (`comm`
/// `python3`).
pub fn python(ns: &Netns, script: &str, args: &[&str]) -> Scenario {
    let path = program(script);
    let mut all = vec![path.as_str()];
    all.extend_from_slice(args);
    Scenario::spawn(in_netns(ns, PYTHON, &all), "python3")
}

/// `portwatch record -o FILE --netns INODE`, started and tracing; [`Recorder::finish`] ends it
/// (SIGTERM) and returns the file.
pub struct Recorder {
    child: Option<Child>,
    file: PathBuf,
}

impl Recorder {
    pub fn start(netns: u32, tag: &str, max: Duration) -> Recorder {
        Recorder::start_bin(&portwatch_bin(), netns, tag, max)
    }

    /// Like [`Recorder::start`], running `bin` (e.g. [`crate::live::portwatch_release_bin`]).
    pub fn start_bin(bin: &str, netns: u32, tag: &str, max: Duration) -> Recorder {
        require_root();
        let file = std::env::temp_dir().join(format!("pw-{tag}-{}.pwr", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let mut child = Command::new(bin)
            .args(["record", "--netns", &netns.to_string(), "-o"])
            .arg(&file)
            .args(["--duration", &format!("{}s", max.as_secs().max(1))])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portwatch record");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut log = String::new();
        loop {
            let mut line = String::new();
            let n = err.read_line(&mut line).unwrap_or(0);
            log.push_str(&line);
            if line.contains("recording to") {
                break;
            }
            assert!(
                n > 0 && Instant::now() < deadline,
                "portwatch record did not start: {log}"
            );
        }
        // Keep draining stderr so that the recorder never blocks on it.
        std::thread::spawn(move || for _ in err.lines() {});
        Recorder {
            child: Some(child),
            file,
        }
    }

    /// Ends the recording; returns its path.
    pub fn finish(mut self) -> PathBuf {
        let mut child = self.child.take().unwrap();
        // SAFETY: a signal to the child we started and have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "portwatch record: {status}");
        self.file.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `portwatch report FILE --json`, read after the incident.
pub fn report_file(file: &Path) -> Value {
    let out = Command::new(portwatch_bin())
        .arg("report")
        .arg(file)
        .arg("--json")
        .output()
        .expect("run portwatch report FILE");
    assert!(
        out.status.success(),
        "portwatch report {file:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report JSON: {e}"))
}

/// Ends the recording and checks its report with `check`, as the live one was checked: after
/// the incident, as an operator reads it an hour later. Prints the text report (pasted into
/// issues) too.
pub fn check_recording(rec: Recorder, check: impl Fn(&Value)) {
    check_recording_file(&rec.finish(), check);
}

/// [`check_recording`] of a recording already ended.
pub fn check_recording_file(file: &Path, check: impl Fn(&Value)) {
    check(&report_file(file));
    eprintln!("--- report {}:\n{}", file.display(), report_file_text(file));
}

/// `portwatch report FILE` as text, for people (printed by the tests that reproduce an
/// incident, and pasted into the issue).
pub fn report_file_text(file: &Path) -> String {
    let out = Command::new(portwatch_bin())
        .arg("report")
        .arg(file)
        .output()
        .expect("run portwatch report FILE");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wrk` (Debian's) in a namespace: `conns` kept-alive connections to `url` for `secs`
/// seconds; it ends by itself.
pub fn wrk(ns: &Netns, url: &str, conns: u32, secs: u32) -> Child {
    in_netns(
        ns,
        "/usr/bin/wrk",
        &["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), url],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn wrk (apt-get install wrk)")
}
