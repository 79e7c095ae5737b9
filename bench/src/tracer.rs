//! The traced modes: each is a command line run as a process of its own beside the load
//! (or, for `kernel`, the library's collector inside the harness), started on the load's
//! network namespace, stopped with SIGINT, and asked what it received and lost.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use portwatch::collect::{Collector, Options};
use serde::{Deserialize, Serialize};

use crate::{
    bpfstats::{self, ProgStat},
    parse::{lost_by, parse_output, read_stdout},
};

/// How a mode's process says what it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// `portwatch events --json`: one JSON object per line; the summary on stderr.
    EventsJson,
    /// A recording at `{out}`, read back with `record::Reader`.
    Recording,
    /// `portwatch report --json`: `model.events`, `lost_events.total`.
    ReportJson,
    /// The stand-ins' one JSON line (`standin.rs`).
    StandinJson,
    /// libbpf-tools `tcpstates`: one line per transition; transitions of the load's port.
    Tcpstates { port: u16 },
    /// The TUI, on a pseudo-terminal of the harness's (its screen drained and thrown away);
    /// what it received and lost is its summary line on stderr when it exits.
    Tui,
}

#[derive(Debug, Clone)]
pub enum How {
    /// The library's collector in the harness: the kernel side and a consumer that only counts.
    InProcess,
    /// The floor: programs that return at once on the same attach points, in the harness.
    Bare,
    /// `{netns}` and `{out}` are replaced in the arguments.
    Command {
        argv: Vec<String>,
        parse: Parse,
    },
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct Mode {
    pub key: &'static str,
    /// What ran, for the table.
    pub label: String,
    pub how: How,
    /// Fallbacks and caveats, shown with its figures.
    pub note: String,
    /// Whether the ≥ 0.90 target applies.
    pub targeted: bool,
}

/// What a traced run received. `state_received` is `None` when the mode's output does not
/// separate state transitions from other events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    pub state_received: Option<u64>,
    /// Events of every kind.
    pub received: u64,
    pub lost: u64,
    /// `lost` by cause, where the mode says (ring full per kind, skipped runs, …).
    pub lost_by: std::collections::BTreeMap<String, u64>,
    /// CPU time of the tracer's userspace (its process, or the collector's thread), read
    /// before it stopped: consuming, decoding, modelling, writing.
    pub cpu_ns: Option<u64>,
    /// Kernel reads that failed (`Counters::read_failed`), where known.
    pub read_failed: Option<u64>,
    /// State transitions that reached the programs (seen + skipped runs), where known.
    pub kernel_seen: Option<u64>,
    pub recording_bytes: Option<u64>,
    /// The mode's BPF programs with their run-time statistics, read before it stopped.
    pub progs: Vec<ProgStat>,
    /// The in-process collector's hook name per program id.
    pub hooks: Vec<(u32, String)>,
}

pub enum Running {
    Kernel {
        stop: Arc<AtomicBool>,
        thread: JoinHandle<anyhow::Result<Tally>>,
    },
    Proc {
        child: Child,
        /// CPU time when it was ready: start-up (BTF, attach, snapshot) is not per event.
        cpu_at_ready: Option<u64>,
        parse: Parse,
        out: PathBuf,
        stdout: JoinHandle<StdoutSeen>,
        stderr: JoinHandle<String>,
    },
}

/// What a reader thread made of a process's standard output.
pub enum StdoutSeen {
    Lines { state: u64, total: u64 },
    Text(String),
}

fn subst(arg: &str, netns: u32, out: &Path) -> String {
    arg.replace("{netns}", &netns.to_string())
        .replace("{out}", &out.to_string_lossy())
}

impl Mode {
    /// Starts tracing `netns`; returns once the programs are attached.
    pub fn start(&self, netns: u32, out: &Path) -> anyhow::Result<Running> {
        match &self.how {
            How::Unavailable(why) => bail!("{}: {why}", self.key),
            How::InProcess => start_kernel(netns),
            How::Bare => start_bare(),
            How::Command { argv, parse } => {
                let _ = std::fs::remove_file(out);
                let args: Vec<String> = argv.iter().map(|a| subst(a, netns, out)).collect();
                let mut cmd = Command::new(&args[0]);
                cmd.args(&args[1..]).stderr(Stdio::piped());
                let (mut child, stdout) = if *parse == Parse::Tui {
                    crate::pty::spawn(cmd).with_context(|| format!("start {}", args.join(" ")))?
                } else {
                    let mut child = cmd
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .spawn()
                        .with_context(|| format!("start {}", args.join(" ")))?;
                    let stdout = child.stdout.take().expect("piped");
                    let stdout = thread::spawn({
                        let parse = *parse;
                        move || read_stdout(stdout, parse)
                    });
                    (child, stdout)
                };
                let mut err = child.stderr.take().expect("piped");
                let stderr = thread::spawn(move || {
                    let mut s = String::new();
                    let _ = err.read_to_string(&mut s);
                    s
                });
                let mut running = Running::Proc {
                    child,
                    cpu_at_ready: None,
                    parse: *parse,
                    out: out.to_path_buf(),
                    stdout,
                    stderr,
                };
                if let Err(e) = running.wait_attached() {
                    let said = running.kill_and_stderr();
                    bail!("{}: {e:#}; it said: {}", args.join(" "), said.trim());
                }
                if let Running::Proc {
                    child,
                    cpu_at_ready,
                    ..
                } = &mut running
                {
                    *cpu_at_ready = process_cpu_ns(child.id());
                }
                Ok(running)
            }
        }
    }
}

/// CPU time of the calling thread.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of a process so far (`/proc/PID/stat` utime + stime, clock ticks).
fn process_cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ticks * 1_000_000_000 / hz)
}

fn start_kernel(netns: u32) -> anyhow::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let stop2 = stop.clone();
    let thread = thread::spawn(move || -> anyhow::Result<Tally> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let opts = Options {
                netns: Some(netns),
                ..Options::default()
            };
            let mut c = match Collector::start(&opts) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            let _ = ready_tx.send(Ok(()));
            let cpu_at_ready = thread_cpu_ns();
            let mut buf = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let _ =
                    tokio::time::timeout(Duration::from_millis(100), c.next_batch(&mut buf)).await;
                buf.clear();
            }
            // Programs are unloaded at stop: read their statistics first.
            let progs = bpfstats::of_process(std::process::id());
            // This thread only waits; the reader thread reads and decodes.
            let cpu_ns = thread_cpu_ns() - cpu_at_ready + c.read_stats().cpu_us * 1000;
            let hooks = hook_names(&c, &progs);
            c.stop();
            c.drain(&mut buf);
            let k = c.counters();
            Ok(Tally {
                state_received: Some(k.state.received),
                received: k.received_total(),
                lost: k.lost_total(),
                lost_by: lost_by(&k),
                read_failed: Some(k.read_failed),
                cpu_ns: Some(cpu_ns),
                kernel_seen: Some(k.state.seen + k.skipped.state),
                recording_bytes: None,
                progs,
                hooks,
            })
        })
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Running::Kernel { stop, thread }),
        Ok(Err(e)) => bail!("start the collector: {e}"),
        Err(_) => bail!("the collector thread died"),
    }
}

fn start_bare() -> anyhow::Result<Running> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let stop2 = stop.clone();
    let thread = thread::spawn(move || -> anyhow::Result<Tally> {
        let bare = match portwatch::collect::bare::Bare::attach() {
            Ok(b) => b,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("{e:#}")));
                return Err(e);
            }
        };
        let _ = ready_tx.send(Ok(()));
        while !stop2.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
        }
        let progs = bpfstats::of_process(std::process::id());
        let mut ids = progs.iter();
        let hooks = bare
            .programs
            .iter()
            .filter_map(|name| {
                ids.by_ref()
                    .find(|p| name.starts_with(&p.name))
                    .map(|p| (p.id, name.to_string()))
            })
            .collect();
        drop(bare);
        Ok(Tally {
            progs,
            hooks,
            ..Tally::default()
        })
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Running::Kernel { stop, thread }),
        Ok(Err(e)) => bail!("attach the bare programs: {e}"),
        Err(_) => bail!("the bare-programs thread died"),
    }
}

/// Programs are loaded in attach order, so ids follow `Hook::ALL`; the kernel keeps 15
/// characters of each name.
fn hook_names(c: &Collector, progs: &[ProgStat]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut it = progs.iter();
    for a in c.attached().iter().filter(|a| a.result.is_ok()) {
        let name = a.hook.program();
        if let Some(p) = it.by_ref().find(|p| name.starts_with(&p.name)) {
            out.push((p.id, name.to_string()));
        }
    }
    out
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Kernel { .. } => std::process::id(),
            Running::Proc { child, .. } => child.id(),
        }
    }

    /// Waits until the process has attached its programs and stopped attaching more.
    fn wait_attached(&mut self) -> anyhow::Result<()> {
        let Running::Proc { child, .. } = self else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut last, mut since) = (0, Instant::now());
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("exited before attaching ({status})");
            }
            let n = bpfstats::attachments(child.id());
            if n != last {
                (last, since) = (n, Instant::now());
            } else if n > 0 && since.elapsed() >= Duration::from_millis(300) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("nothing attached after 30 s");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill_and_stderr(self) -> String {
        match self {
            Running::Kernel { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                let _ = thread.join();
                String::new()
            }
            Running::Proc {
                mut child, stderr, ..
            } => {
                let _ = child.kill();
                let _ = child.wait();
                stderr.join().unwrap_or_default()
            }
        }
    }

    /// Reads the programs' statistics, stops with SIGINT, and collects what it received.
    pub fn stop(self) -> anyhow::Result<Tally> {
        let progs = bpfstats::of_process(self.pid());
        let cpu_ns = process_cpu_ns(self.pid());
        match self {
            Running::Kernel { stop, thread } => {
                stop.store(true, Ordering::Relaxed);
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("collector panicked"))?
            }
            Running::Proc {
                mut child,
                cpu_at_ready,
                parse,
                out,
                stdout,
                stderr,
            } => {
                // SAFETY: kill has no memory-safety preconditions; the child is ours.
                unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
                let deadline = Instant::now() + Duration::from_secs(120);
                let status = loop {
                    if let Some(s) = child.try_wait()? {
                        break s;
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        bail!("did not stop within 120 s of SIGINT");
                    }
                    thread::sleep(Duration::from_millis(10));
                };
                let seen = stdout
                    .join()
                    .map_err(|_| anyhow::anyhow!("reader panicked"))?;
                let err = stderr.join().unwrap_or_default();
                // A clean stop: 0, 130, or killed by the SIGINT itself.
                use std::os::unix::process::ExitStatusExt;
                let clean = status.success()
                    || status.code() == Some(130)
                    || status.signal() == Some(libc::SIGINT);
                if !clean {
                    bail!("exited with {status}: {}", err.trim());
                }
                let mut t = parse_output(parse, &out, seen, &err)?;
                t.progs = progs;
                t.cpu_ns = cpu_ns.zip(cpu_at_ready).map(|(end, start)| end - start);
                Ok(t)
            }
        }
    }
}
