//! The load generators, each in a process of its own: this binary again, as
//! `portwatch-bench lab churn --wait` and `portwatch-bench lab hold` (the `portwatch-lab`
//! crate; see lab/src/cli.rs for their line protocol).

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The churn workload of one run.
#[derive(Debug, Clone)]
pub struct ChurnLoad {
    pub threads: usize,
    pub acceptors: usize,
    pub duration: Duration,
    pub max_connections: Option<u64>,
    /// The server's port; the perf and tcpstates filters use it.
    pub port: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChurnOut {
    pub connections: u64,
    pub failures: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub connections_per_s: f64,
    pub expected_transitions: u64,
    pub settled: bool,
}

#[derive(Deserialize)]
struct Ready {
    netns: u32,
    pid: u32,
    hold: Option<HoldReport>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HoldReport {
    pub sockets: u64,
    pub processes: u64,
    pub elapsed_s: f64,
}

/// A `lab` process that said it is ready.
pub struct Lab {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub netns: u32,
    pub pid: u32,
    pub hold: Option<HoldReport>,
}

impl Lab {
    fn spawn(args: &[String]) -> anyhow::Result<Lab> {
        let me = std::env::current_exe().context("find my own executable")?;
        let mut child = Command::new(&me)
            .arg("lab")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {} lab {}", me.display(), args.join(" ")))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let ready: Ready = serde_json::from_str(&line).with_context(|| {
            let status = child.wait().ok();
            format!(
                "`portwatch-bench lab {}` failed ({status:?})",
                args.join(" ")
            )
        })?;
        Ok(Lab {
            child,
            stdin,
            stdout,
            netns: ready.netns,
            pid: ready.pid,
            hold: ready.hold,
        })
    }

    /// A churn process, set up and waiting for [`Lab::go`].
    pub fn churn(load: &ChurnLoad) -> anyhow::Result<Lab> {
        let mut args: Vec<String> = vec![
            "churn".into(),
            "--wait".into(),
            "--json".into(),
            "--threads".into(),
            load.threads.to_string(),
            "--acceptors".into(),
            load.acceptors.to_string(),
            "--duration".into(),
            format!("{}ms", load.duration.as_millis()),
            "--port".into(),
            load.port.to_string(),
            "--max-hold".into(),
            "5m".into(),
        ];
        if let Some(n) = load.max_connections {
            args.extend(["--max-connections".into(), n.to_string()]);
        }
        Lab::spawn(&args)
    }

    /// A hold process with `connections` open.
    pub fn hold(connections: u64, port: u16) -> anyhow::Result<Lab> {
        Lab::spawn(&[
            "hold".into(),
            "--connections".into(),
            connections.to_string(),
            "--port".into(),
            port.to_string(),
            "--max-hold".into(),
            "10m".into(),
        ])
    }

    /// Starts the churn and waits for its report (the run, then until every socket settled).
    pub fn go(&mut self) -> anyhow::Result<ChurnOut> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        stdin.write_all(b"go\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let out: ChurnOut =
            serde_json::from_str(&line).with_context(|| format!("churn report {line:?}"))?;
        if !out.failures.is_empty() {
            bail!("the churn had failures: {:?}", out.failures);
        }
        Ok(out)
    }

    /// Lets the process go (it removes its namespace on exit), and waits until the kernel
    /// has freed the namespace's timewait sockets, so that the next run does not pay for
    /// this one's teardown.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
        quiesce();
    }
}

/// Timewait sockets allocated, system-wide (`/proc/slabinfo`, `tw_sock_TCP` active objects).
fn timewait_objects() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("tw_sock_TCP "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits (up to 10 s) until fewer than 5,000 timewait sockets are left in the system: a
/// namespace's are freed by a kernel worker after its last process exits.
pub fn quiesce() {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while timewait_objects().is_some_and(|n| n >= 5_000) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            // Closing stdin ends it; give it the time to close its sockets.
            for _ in 0..600 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
