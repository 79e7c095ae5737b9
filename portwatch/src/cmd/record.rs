//! `portwatch record -o FILE`: keeps every input the model takes (events, the start-up
//! snapshot with owners, every reconciliation, loss counters, warnings, clock ticks),
//! crash-safe, for `report FILE`, `replay FILE`, `export FILE` and `info FILE` later.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    record::{self, Host, Writer},
    session::{self, Live, Recorder, StderrWarnings, Until},
};

use super::{SessionArgs, TraceArgs};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
The file is written in checksummed, compressed chunks, at least once a second: if portwatch is
killed or the disk fills, everything up to the last complete chunk reads back. It is created
with mode 0600 (it holds process names and addresses), never through a symlink, and never over
an existing file unless --force. Format: docs/recording-format.md.

Examples:
  sudo portwatch record -o incident.pwr                 # until Ctrl-C
  sudo portwatch record -o incident.pwr --duration 5m
  portwatch report incident.pwr; portwatch info incident.pwr")]
pub struct Args {
    /// The recording to create.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Stop after this long: seconds (`14`), or with a unit (`2m`, `1h30m`); default: until
    /// Ctrl-C or SIGTERM.
    #[arg(long, value_parser = super::parse_duration)]
    duration: Option<Duration>,
    /// Replace FILE if it exists (a regular file only).
    #[arg(long)]
    force: bool,
    /// Only this network namespace (inode, as in `ls -lL /proc/PID/ns/net`).
    #[arg(long, value_name = "INODE")]
    netns: Option<u32>,
    /// fdatasync every chunk (survives power loss; one disk flush a second).
    #[arg(long)]
    sync: bool,
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    session: SessionArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    session::traced(record(args))
}

async fn record(args: Args) -> anyhow::Result<ExitCode> {
    let host = Host::current();
    let opts = record::Options {
        force: args.force,
        sync: args.sync,
        ..Default::default()
    };
    // Create the file first: a refusal (exists, symlink) should come before any tracing.
    let mut recorder = Recorder::new(Writer::create(&args.output, &host, opts)?);
    let mut lopts = args.session.live_options(&args.trace);
    lopts.trace.netns = args.netns;
    let mut live = Live::start(lopts).await?;
    eprintln!(
        "portwatch: recording to {}; Ctrl-C to stop",
        args.output.display()
    );
    let until = Until {
        duration: args.duration,
    };
    session::run(&mut live, &mut [&mut StderrWarnings, &mut recorder], until).await?;
    let summary = recorder.finish()?;
    let per_event = if summary.events > 0 {
        summary.bytes as f64 / summary.events as f64
    } else {
        0.0
    };
    eprintln!(
        "portwatch: recorded {} events ({} bytes, {per_event:.1} bytes/event) to {}; {} lost",
        summary.events,
        summary.bytes,
        args.output.display(),
        live.counters().lost_total()
    );
    Ok(ExitCode::SUCCESS)
}
