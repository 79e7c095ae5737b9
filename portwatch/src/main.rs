//! `portwatch`: parses the command line and dispatches to one module per subcommand.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const ABOUT: &str = "Who is exhausting ephemeral ports, and why.";

const LONG_ABOUT: &str = "\
Who is exhausting ephemeral ports, and why.

portwatch traces the TCP socket lifecycle in the kernel (eBPF on sock:inet_sock_set_state,
the connect()/bind() syscalls, and the timewait sockets' timers) and shows, per process and
destination, which local ports are held, in which state, how close each pool is to its limit,
and which change would help.

Each outbound connection needs a unique (source IP, source port, destination IP, destination
port). With the default net.ipv4.ip_local_port_range of 32768-60999 that is 28,232 ports per
source IP and destination; a connection closed first by this side keeps its port for 60 s in
TIME_WAIT. When none is free, connect() fails with EADDRNOTAVAIL.

Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF (/sys/kernel/btf/vmlinux).
Start with `portwatch check`.";

#[derive(Parser)]
#[command(name = "portwatch", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Can this machine run portwatch? Checks privileges, kernel, BTF, tracefs, lockdown, and
    /// loads and attaches every program. Exits non-zero when portwatch cannot run.
    Check(cmd::check::Args),
    /// Print every decoded kernel event as it happens, one per line (JSON Lines with --json),
    /// and the lost-event count when it stops (Ctrl-C, SIGTERM or --duration).
    Events(cmd::events::Args),
    /// The diagnosis: ranked findings (cause, evidence, remedies), then the tables behind
    /// them, from a live window (default 10 s) or from a recording.
    Report(cmd::report::Args),
    /// Record events and context to a file for later `report`, `replay`, `export`, `info`.
    Record(cmd::record::Args),
    /// What a recording holds: header, time span, counts, loss, integrity.
    Info(cmd::info::Args),
    /// A recording's events as JSON Lines or CSV, one row per event.
    Export(cmd::export::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Check(args)) => cmd::check::run(args),
        Some(Cmd::Events(args)) => cmd::events::run(args),
        Some(Cmd::Report(args)) => cmd::report::run(args),
        Some(Cmd::Record(args)) => cmd::record::run(args),
        Some(Cmd::Info(args)) => cmd::info::run(args),
        Some(Cmd::Export(args)) => cmd::export::run(args),
        None => {
            eprintln!(
                "the live view is not built yet; try `portwatch events` or `portwatch --help`"
            );
            Ok(ExitCode::from(2))
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("portwatch: error: {e:#}");
        ExitCode::FAILURE
    })
}
