//! `portwatch events`: the live stream of decoded kernel events.

use std::{
    collections::HashMap,
    io::{self, BufWriter, Write},
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    collect::{Attach, Collector, Counters, monotonic_to_realtime_offset_ns},
    event::{Event, EventKind, TcpState, TwOp},
};
use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::TraceArgs;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each line: time, network namespace, the task that was running when the kernel emitted the
event, and then one of
  STATE      OLD -> NEW  local > remote    a TCP state transition
  CONNECT    ERRNO addr                    a failed connect() (the requested destination)
  BIND       ERRNO|ok addr                 a failed bind(), or a bound port
  TW_START / TW_CANCEL / TW_EXPIRE         a timewait socket's timer (TIME_WAIT begins,
                                           ends early, or ends after 60 s)
Transitions that run in softirq context show whatever task was on the CPU, not the owner;
--pid follows sockets to their owner.

Examples:
  portwatch events --port 443
  portwatch events --json --duration 30s > events.jsonl")]
pub struct Args {
    /// JSON Lines on stdout (one object per event); the summary still goes to stderr.
    #[arg(long)]
    json: bool,
    /// Only events of this process: its own calls and transitions, and those of the sockets
    /// it connected, bound or accepted (followed across softirq transitions and TIME_WAIT).
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// Only events whose local or remote port is N.
    #[arg(long, value_name = "N")]
    port: Option<u16>,
    /// Only events in this network namespace (inode number, as in `ls -lL /proc/PID/ns/net`);
    /// filtered in the kernel, so the lost-event counts then concern this namespace alone.
    #[arg(long, value_name = "INODE")]
    netns: Option<u32>,
    /// Stop after this long: seconds (`14`), or with a unit (`2m`, `1h30m`); default: until
    /// Ctrl-C or SIGTERM.
    #[arg(long, value_parser = super::parse_duration)]
    duration: Option<Duration>,
    #[command(flatten)]
    trace: TraceArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::traced(stream(args))
}

/// Prints the attach list's problems to stderr (nothing when all is well).
pub fn warn_degraded(attached: &[Attach]) {
    for a in attached {
        if let Err(why) = &a.result {
            eprintln!(
                "portwatch: warning: {} not attached ({why}): {}",
                a.hook.attach_point(),
                a.hook.loss_if_missing()
            );
        }
    }
}

async fn stream(args: Args) -> anyhow::Result<ExitCode> {
    let mut opts = args.trace.options();
    opts.netns = args.netns;
    let mut collector = Collector::start(&opts)?;
    warn_degraded(collector.attached());
    let offset = monotonic_to_realtime_offset_ns();
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut out = BufWriter::new(io::stdout().lock());
    let mut filter = Filter::new(&args);
    let mut batch = Vec::new();
    let mut pipe_closed = false;
    eprintln!("portwatch: tracing; Ctrl-C to stop");
    loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = collector.next_batch(&mut batch) => r.context("read the ring buffer")?,
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = sleep => break,
        }
        if let Err(e) = write_batch(&mut out, &mut filter, &batch, args.json, offset) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                pipe_closed = true;
                break;
            }
            return Err(e).context("write to stdout");
        }
        batch.clear();
    }
    collector.stop();
    collector.drain(&mut batch);
    if !pipe_closed {
        let _ = write_batch(&mut out, &mut filter, &batch, args.json, offset);
    }
    let counters = collector.counters();
    eprintln!("{}", summary(&counters));
    if let Some(e) = collector.first_decode_error() {
        eprintln!("portwatch: first undecodable record: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn write_batch(
    out: &mut impl Write,
    filter: &mut Filter,
    batch: &[Event],
    json: bool,
    offset: i128,
) -> io::Result<()> {
    for ev in batch {
        if !filter.keep(ev) {
            continue;
        }
        let wall = wall_time(ev.ts_ns, offset);
        if json {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                time: String,
                #[serde(flatten)]
                event: &'a Event,
            }
            let line = Line {
                time: humantime::format_rfc3339_micros(wall).to_string(),
                event: ev,
            };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        } else {
            let t = humantime::format_rfc3339_micros(wall).to_string();
            // 2026-11-26T05:59:01.123456Z → 05:59:01.123456
            let short = t.get(11..26).unwrap_or(&t);
            writeln!(out, "{short} {ev}")?;
        }
    }
    out.flush()
}

fn wall_time(ts_ns: u64, offset: i128) -> SystemTime {
    let ns = (ts_ns as i128 + offset).max(0) as u64;
    UNIX_EPOCH + Duration::from_nanos(ns)
}

pub fn summary(c: &Counters) -> String {
    format!(
        "portwatch: {} events received, {} lost (ring full or unreadable: state {}, call {}, \
         timewait {}; skipped program runs: state {}, calls {}; untracked calls {}; \
         undecodable {}); timer program runs skipped (mostly unrelated timers): {}",
        c.received_total(),
        c.lost_total(),
        c.state.lost,
        c.call.lost,
        c.timewait.lost,
        c.skipped.state,
        c.skipped.calls,
        c.untracked_calls,
        c.decode_errors,
        c.skipped.timers
    )
}

/// The command-line filters. `--pid` follows a process's sockets: a socket belongs to the
/// process that connected, listened, bound or failed on it (those run in the owner's
/// context), an accepted socket to its listener's owner, and a timewait socket to the owner
/// of the connection whose 4-tuple it holds.
struct Filter {
    pid: Option<u32>,
    port: Option<u16>,
    netns: Option<u32>,
    owner_of_sock: HashMap<u64, u32>,
    owner_of_listener: HashMap<(u32, u16), u32>,
    owner_of_tuple: HashMap<(u32, SocketAddr, SocketAddr), u32>,
}

/// Bounds the --pid bookkeeping on a long run: past this, it starts over.
const FILTER_CAP: usize = 1 << 20;

impl Filter {
    fn new(a: &Args) -> Filter {
        Filter {
            pid: a.pid,
            port: a.port,
            netns: a.netns,
            owner_of_sock: HashMap::new(),
            owner_of_listener: HashMap::new(),
            owner_of_tuple: HashMap::new(),
        }
    }

    fn keep(&mut self, ev: &Event) -> bool {
        if self.netns.is_some_and(|n| n != ev.netns) {
            return false;
        }
        if self.port.is_some_and(|p| !ev.ports().contains(&p)) {
            return false;
        }
        match self.pid {
            None => true,
            Some(pid) => self.owner(ev) == Some(pid),
        }
    }

    /// The owner of the socket an event is about, learning ownership as it goes.
    fn owner(&mut self, ev: &Event) -> Option<u32> {
        if self.owner_of_sock.len() + self.owner_of_tuple.len() > FILTER_CAP {
            self.owner_of_sock.clear();
            self.owner_of_tuple.clear();
        }
        let pid = ev.task.pid;
        match &ev.kind {
            EventKind::Call(c) => {
                if let Some(sk) = c.sk {
                    self.owner_of_sock.insert(sk, pid);
                }
                Some(pid)
            }
            EventKind::State(s) => {
                let owner = match (s.old, s.new) {
                    // connect() and listen() run in the owner's context.
                    (TcpState::Close, TcpState::SynSent | TcpState::Listen) => {
                        self.owner_of_sock.insert(s.sk, pid);
                        Some(pid)
                    }
                    // A socket accepted from a listener belongs to the listener's owner.
                    (TcpState::Listen, TcpState::SynRecv) => {
                        let o = self
                            .owner_of_listener
                            .get(&(ev.netns, s.local.port()))
                            .copied();
                        if let Some(o) = o {
                            self.owner_of_sock.insert(s.sk, o);
                        }
                        o
                    }
                    _ => self.owner_of_sock.get(&s.sk).copied(),
                };
                if let Some(o) = owner {
                    let tuple = (ev.netns, s.local, s.remote);
                    match (s.old, s.new) {
                        (_, TcpState::Listen) => {
                            self.owner_of_listener.insert((ev.netns, s.local.port()), o);
                        }
                        (TcpState::Listen, TcpState::Close) => {
                            self.owner_of_sock.remove(&s.sk);
                            self.owner_of_listener.remove(&(ev.netns, s.local.port()));
                        }
                        // The active closer: its timewait socket (started just before this
                        // CLOSE) holds the 4-tuple on; TW_EXPIRE forgets it.
                        (
                            TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing,
                            TcpState::Close,
                        ) => {
                            self.owner_of_sock.remove(&s.sk);
                        }
                        (_, TcpState::Close) => {
                            self.owner_of_sock.remove(&s.sk);
                            self.owner_of_tuple.remove(&tuple);
                        }
                        _ if s.local.port() != 0 => {
                            self.owner_of_tuple.insert(tuple, o);
                        }
                        _ => {}
                    }
                }
                owner
            }
            EventKind::TimeWait(t) => {
                let key = (ev.netns, t.local, t.remote);
                let o = self.owner_of_tuple.get(&key).copied();
                if t.op == TwOp::Expire {
                    self.owner_of_tuple.remove(&key);
                }
                o
            }
        }
    }
}
