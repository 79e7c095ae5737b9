//! `lab churn|hold`: the load generators as a process of their own, so that the tracer and the
//! load do not share one (the benchmark runs itself as `portwatch-bench lab …`; see
//! bench/src/load.rs). Each makes a fresh, anonymous network namespace (gone when the process
//! exits) and only ever talks on its loopback.
//!
//! With `--wait` (churn) or always (hold), the process speaks a line protocol on
//! stdin/stdout: it prints one JSON line `{"ready": true, "netns": …, "pid": …}` once set up,
//! (churn) waits for a line on stdin before it starts (listener included) and prints its
//! report as one JSON line when done, then keeps the namespace until stdin closes or
//! `--max-hold` passes.

use std::{
    io::{self, BufRead, Write},
    net::SocketAddr,
    process::ExitCode,
    sync::mpsc,
    time::Duration,
};

use anyhow::Context as _;
use portwatch::netns::Netns;
use serde::Serialize;

use crate::{
    churn::{self, ChurnOpts, Closer},
    hold::{self, HoldOpts},
};

/// `lab churn|hold`, to flatten into the command line of the program that runs it.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: LabCmd,
}

#[derive(clap::Subcommand, Debug)]
enum LabCmd {
    /// Open and close loopback connections as fast as possible, counting them, so that the
    /// transitions they cause are known: 10 per connection and 2 for the listener.
    Churn(ChurnArgs),
    /// Open N connections and keep both ends open.
    Hold(HoldArgs),
}

#[derive(clap::Args, Debug)]
struct ChurnArgs {
    /// Client threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Server threads accepting and closing connections.
    #[arg(long, default_value_t = 2)]
    acceptors: usize,
    /// How long to run.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many connections.
    #[arg(long)]
    max_connections: Option<u64>,
    /// Which side closes first (and so holds the TIME_WAIT).
    #[arg(long, value_enum, default_value = "client")]
    closer: Closer,
    /// Server port (listening on 0.0.0.0), below the ephemeral range (24000-65535).
    #[arg(long, default_value_t = 23100)]
    port: u16,
    /// Destination addresses 127.0.0.1 … 127.0.0.N, one port pool each.
    #[arg(long, default_value_t = 16)]
    spread: u32,
    /// Print `{"ready":…}` once set up and wait for a line on stdin before starting; after the
    /// report, keep the namespace until stdin closes.
    #[arg(long)]
    wait: bool,
    /// The longest to keep the namespace after the run when waiting for stdin to close.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    max_hold: Duration,
    /// The report as one JSON line.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct HoldArgs {
    /// Connections to hold (two sockets each).
    #[arg(long, default_value_t = 50_000)]
    connections: u64,
    /// Listener port (on 0.0.0.0); children holding part of the connections use the next
    /// ones. Below the ephemeral range (24000-65535).
    #[arg(long, default_value_t = 5001)]
    port: u16,
    /// Hold until stdin closes, or this long at most.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    max_hold: Duration,
    /// The ready line as JSON (always JSON; accepted for symmetry with `churn`).
    #[arg(long)]
    json: bool,
    /// A child holding part of the connections in its parent's namespace.
    #[arg(long, hide = true)]
    part: bool,
}

/// State transitions per churn connection (client CLOSE→SYN_SENT→ESTABLISHED→FIN_WAIT1→
/// FIN_WAIT2→CLOSE, server child LISTEN→SYN_RECV→ESTABLISHED→CLOSE_WAIT→LAST_ACK→CLOSE, or
/// the mirror image when the server closes first).
pub const TRANSITIONS_PER_CONNECTION: u64 = 10;
/// The listener's CLOSE→LISTEN and LISTEN→CLOSE.
pub const LISTENER_TRANSITIONS: u64 = 2;

#[derive(Serialize)]
struct Ready {
    ready: bool,
    netns: u32,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<hold::HoldReport>,
}

#[derive(Serialize)]
struct ChurnOut {
    netns: u32,
    #[serde(flatten)]
    report: churn::ChurnReport,
    closer: Closer,
    threads: usize,
    /// State transitions the run caused: 10 per connection + 2 for the listener (its
    /// LISTEN→CLOSE happens when the server stops, before this report).
    expected_transitions: u64,
    /// Every socket reached a state that changes no more on its own.
    settled: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (e.g. 10s, 2m)"))
}

/// Runs `lab churn|hold`. A hold of more connections than one process may open runs the
/// current executable again as `EXE lab hold --part …`: the program must dispatch
/// `lab` to this function.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        LabCmd::Churn(a) => run_churn(a),
        LabCmd::Hold(a) => run_hold(a),
    }
}

/// Ephemeral ports of the lab's namespaces: every listener port of the lab (below it) stays
/// free for `bind()` while clients connect, and 41,536 ports per destination.
const PORT_RANGE: &str = "24000 65535";

/// A fresh namespace that this whole process moves into (so that tools which find
/// namespaces through `/proc/PID/ns/net` see it), with ports and TIME_WAIT unconstrained.
fn namespace() -> anyhow::Result<Netns> {
    let ns = Netns::create().context("create the lab's network namespace")?;
    ns.sysctl("net/ipv4/ip_local_port_range", PORT_RANGE)?;
    ns.sysctl("net/ipv4/tcp_max_tw_buckets", "2000000")?;
    ns.enter().context("enter the new network namespace")?;
    Ok(ns)
}

fn print_line(v: &impl Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Lines of stdin, read on a thread; the channel closes at end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until stdin closes, or `max`.
fn wait_for_eof(rx: &mpsc::Receiver<String>, max: Duration) {
    let deadline = std::time::Instant::now() + max;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(_) => continue,
            Err(_) => return,
        }
    }
}

fn run_churn(a: ChurnArgs) -> anyhow::Result<ExitCode> {
    let ns = namespace()?;
    let stdin = stdin_lines();
    if a.wait {
        print_line(&Ready {
            ready: true,
            netns: ns.inode,
            pid: std::process::id(),
            hold: None,
        })?;
        if stdin.recv().is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // The listener too starts after "go", so that a tracer started in between sees its
    // CLOSE→LISTEN (and its bind()).
    let bind: SocketAddr = ([0, 0, 0, 0], a.port).into();
    let server = churn::Server::start(&ns, bind, a.closer, a.acceptors)
        .with_context(|| format!("listen on {bind}"))?;
    let dst: SocketAddr = ([127, 0, 0, 1], server.addr.port()).into();
    let opts = ChurnOpts {
        dst,
        threads: a.threads,
        duration: a.duration,
        max_connections: a.max_connections,
        closer: a.closer,
        backoff_on_error: Duration::from_millis(1),
    };
    let report = churn::churn_to(&ns, &opts, &churn::spread(dst, a.spread))?;
    let n = report.connections;
    let served = server.stop_after(n, Duration::from_secs(10));
    let settled = served == n && churn::settle(&ns, Duration::from_secs(10))?;
    let out = ChurnOut {
        netns: ns.inode,
        report,
        closer: a.closer,
        threads: a.threads,
        expected_transitions: n * TRANSITIONS_PER_CONNECTION + LISTENER_TRANSITIONS,
        settled,
    };
    if a.json {
        print_line(&out)?;
    } else {
        println!(
            "{} connections in {:.2} s = {:.0}/s ({} threads, {:?} closes first); failures {:?}; \
             {} transitions caused; settled: {settled}; netns {}",
            n,
            out.report.elapsed_s,
            out.report.connections_per_s,
            a.threads,
            a.closer,
            out.report.failures,
            out.expected_transitions,
            ns.inode
        );
    }
    if a.wait {
        wait_for_eof(&stdin, a.max_hold);
    }
    Ok(ExitCode::SUCCESS)
}

fn run_hold(a: HoldArgs) -> anyhow::Result<ExitCode> {
    let opts = |connections, port| HoldOpts {
        port,
        ..HoldOpts::new(connections)
    };
    if a.part {
        // A child: in the parent's namespace already.
        let held = hold::hold(&opts(a.connections, a.port))?;
        print_line(&held.report)?;
        wait_for_eof(&stdin_lines(), a.max_hold);
        return Ok(ExitCode::SUCCESS);
    }
    let ns = namespace()?;
    let per = hold::per_process().max(1);
    let (report, held, children) = if a.connections <= per {
        let held = hold::hold(&opts(a.connections, a.port))?;
        (held.report.clone(), Some(held), Vec::new())
    } else {
        let (report, children) = hold_in_children(&a, per)?;
        (report, None, children)
    };
    print_line(&Ready {
        ready: true,
        netns: ns.inode,
        pid: std::process::id(),
        hold: Some(report),
    })?;
    wait_for_eof(&stdin_lines(), a.max_hold);
    drop(held);
    for mut c in children {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    Ok(ExitCode::SUCCESS)
}

/// Spreads the connections over child processes of at most `per` each (one listener port
/// each: `a.port`, `a.port + 1`, …); they inherit this process's namespace.
fn hold_in_children(
    a: &HoldArgs,
    per: u64,
) -> anyhow::Result<(hold::HoldReport, Vec<std::process::Child>)> {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().context("find my own executable")?;
    let start = std::time::Instant::now();
    let mut children = Vec::new();
    let mut left = a.connections;
    let mut port = a.port;
    while left > 0 {
        let n = left.min(per);
        let child = Command::new(&exe)
            .args(["lab", "hold", "--part", "--connections", &n.to_string()])
            .args(["--port", &port.to_string(), "--max-hold"])
            .arg(format!("{}s", a.max_hold.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start a holder process")?;
        children.push(child);
        left -= n;
        port = port.checked_add(1).context("out of listener ports")?;
    }
    let mut total = hold::HoldReport::default();
    for c in &mut children {
        let mut line = String::new();
        io::BufReader::new(c.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .context("read a holder's report")?;
        let r: hold::HoldReport = serde_json::from_str(&line)
            .with_context(|| format!("a holder process failed (said {line:?})"))?;
        total.connections += r.connections;
        total.sockets += r.sockets;
        total.addresses += r.addresses;
        total.processes += 1;
    }
    total.elapsed_s = start.elapsed().as_secs_f64();
    Ok((total, children))
}
