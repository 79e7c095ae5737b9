//! The command line: parses it and dispatches to one module per subcommand (`cmd/`). The
//! `portwatch` binary is only `portwatch::cli::main()`, so the subcommands live in the library
//! and see its private modules; the library's public API is what tests, bench and fuzz need.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

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

Without a command, portwatch opens the live TUI (the options below are its own); `sudo
portwatch demo` shows it explaining an exhaustion it stages in a throwaway namespace.

Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF (/sys/kernel/btf/vmlinux).
Start with `portwatch check`.";

#[derive(Parser)]
#[command(name = "portwatch", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// Without a subcommand: the live TUI (these options are its own).
    #[command(flatten)]
    live: crate::cmd::tui::Args,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Can this machine run portwatch? Checks privileges, kernel, BTF, tracefs, lockdown, and
    /// loads and attaches every program. Exits non-zero when portwatch cannot run.
    Check(crate::cmd::check::Args),
    /// Print every decoded kernel event as it happens, one per line (JSON Lines with --json),
    /// and the lost-event count when it stops (Ctrl-C, SIGTERM or --duration).
    Events(crate::cmd::events::Args),
    /// The diagnosis: ranked findings (cause, evidence, remedies), then the tables behind
    /// them, from a live window (default 10 s) or from a recording.
    Report(crate::cmd::report::Args),
    /// Record events and context to a file for later `report`, `replay`, `export`, `info`.
    Record(crate::cmd::record::Args),
    /// What a recording holds: header, time span, counts, loss, integrity.
    Info(crate::cmd::info::Args),
    /// A recording's events as JSON Lines or CSV, one row per event.
    Export(crate::cmd::export::Args),
    /// The TUI on a recording: pause (p), speed (+ -), seek ([ ] { }).
    Replay(crate::cmd::replay::Args),
    /// Watch portwatch explain a port exhaustion it stages in a throwaway network namespace
    /// (a client churning short connections through 50 ports). Needs root.
    Demo(crate::cmd::demo::Args),
    /// A shell completion script (bash, zsh, fish, elvish, powershell) on standard output.
    Completions(crate::cmd::completions::Args),
    /// The manual pages (roff), generated from these definitions.
    #[command(hide = true)]
    Man(crate::cmd::man::Args),
    /// The agent: trace and serve /metrics (Prometheus), /report.json and /healthz over HTTP.
    Serve(crate::cmd::serve::Args),
    /// The client process of `portwatch demo` (internal).
    #[command(hide = true)]
    DemoClient(crate::cmd::demo_client::Args),
}

/// Parses the command line, runs the subcommand, and reports its error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The agent logs its life (info); the interactive commands only what goes wrong.
    let level = if matches!(cli.cmd, Some(Cmd::Serve(_))) {
        "info"
    } else {
        "warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let result = match cli.cmd {
        Some(Cmd::Check(args)) => crate::cmd::check::run(args),
        Some(Cmd::Events(args)) => crate::cmd::events::run(args),
        Some(Cmd::Report(args)) => crate::cmd::report::run(args),
        Some(Cmd::Record(args)) => crate::cmd::record::run(args),
        Some(Cmd::Info(args)) => crate::cmd::info::run(args),
        Some(Cmd::Export(args)) => crate::cmd::export::run(args),
        Some(Cmd::Replay(args)) => crate::cmd::replay::run(args),
        Some(Cmd::Demo(args)) => crate::cmd::demo::run(args),
        Some(Cmd::Completions(args)) => crate::cmd::completions::run(args, Cli::command()),
        Some(Cmd::Man(args)) => crate::cmd::man::run(args, Cli::command()),
        Some(Cmd::Serve(args)) => crate::cmd::serve::run(args),
        Some(Cmd::DemoClient(args)) => crate::cmd::demo_client::run(args),
        None => crate::cmd::tui::run(cli.live),
    };
    result.unwrap_or_else(|e| {
        eprintln!("portwatch: error: {e:#}");
        ExitCode::FAILURE
    })
}
