//! `portwatch events`: the live stream of decoded kernel events.

use std::{
    io::{self, BufWriter},
    process::ExitCode,
    time::Duration,
};

use crate::{
    collect::Counters,
    session::{
        self, Live, LiveOptions, Until,
        live::DEFAULT_RECONCILE,
        printer::{Filter, Printer},
    },
};

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
Only calls and the transitions that run in the caller's context (CLOSE -> SYN_SENT,
CLOSE -> LISTEN, SYN_SENT -> CLOSE) carry a task; the others run in softirq context and show
pid 0; --pid follows sockets to their owner.

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
    session::traced(stream(args))
}

async fn stream(args: Args) -> anyhow::Result<ExitCode> {
    // --pid asks the model who owns each socket: it then needs the start-up snapshot (owners
    // of the sockets that already exist) and the reconciliations, as every other view.
    let by_owner = args.pid.is_some();
    let mut opts = LiveOptions {
        trace: args.trace.options(),
        snapshot: by_owner,
        reconcile_every: by_owner.then_some(DEFAULT_RECONCILE),
        // Raw events only: NAT readings would show nowhere.
        conntrack: false,
        ..Default::default()
    };
    opts.trace.netns = args.netns;
    let mut live = Live::start(opts).await?;
    eprintln!("portwatch: tracing; Ctrl-C to stop");
    let filter = Filter {
        pid: args.pid,
        port: args.port,
        netns: args.netns,
    };
    let mut printer = Printer::new(filter, args.json, BufWriter::new(io::stdout().lock()));
    let until = Until {
        duration: args.duration,
    };
    session::run(&mut live, &mut [&mut printer], until).await?;
    eprintln!("{}", summary(&live.counters()));
    Ok(ExitCode::SUCCESS)
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
