//! `perf stat -e sock:inet_sock_set_state` over the load's transitions: the kernel's own count
//! of tracepoint firings, to cross-check what reached the BPF programs. Filtered on the load's
//! server port (every transition of the churn has it as local or remote port), so other
//! traffic on this shared machine does not count.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};

pub struct Perf {
    child: Child,
}

/// Whether `perf` can run here.
pub fn available() -> Result<(), String> {
    match Command::new("perf").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("perf --version failed: {}", o.status)),
        Err(e) => Err(format!("perf not found ({e}; Debian package linux-perf)")),
    }
}

impl Perf {
    /// Starts counting system-wide; gives perf a moment to open its counters.
    pub fn start(port: u16) -> anyhow::Result<Perf> {
        let mut child = Command::new("perf")
            .args([
                "stat",
                "-a",
                "-x,",
                "-e",
                "sock:inet_sock_set_state",
                "--filter",
            ])
            .arg(format!("sport == {port} || dport == {port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("start perf stat")?;
        std::thread::sleep(Duration::from_millis(500));
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            bail!(
                "perf stat exited at once ({status}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Perf { child })
    }

    /// Stops it (SIGINT) and returns the count.
    pub fn stop(self) -> anyhow::Result<u64> {
        // SAFETY: kill has no memory-safety preconditions; the child is ours.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let out = self.child.wait_with_output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines()
            .find(|l| l.contains("sock:inet_sock_set_state"))
            .and_then(|l| l.split(',').next()?.trim().parse().ok())
            .with_context(|| format!("no count in perf's output: {}", err.trim()))
    }
}
