//! `portwatch record -o FILE`: keeps the events and the context the model needs (start-up
//! snapshot with owners, every reconciliation, loss counters, warnings), crash-safe, for
//! `report FILE`, `replay FILE`, `export FILE` and `info FILE` later.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use crate::{
    collect::monotonic_now_ns,
    record::{self, Host, Writer},
    session::{
        Live, LiveOptions,
        recording::{self, Schema},
    },
};
use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use super::TraceArgs;

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    super::traced(record(args))
}

fn write(w: &mut Writer, rec: &record::ContextRecord) -> anyhow::Result<()> {
    w.context(rec)
        .with_context(|| format!("write {}", w.path().display()))
}

async fn record(args: Args) -> anyhow::Result<ExitCode> {
    let host = Host::current();
    let opts = record::Options {
        force: args.force,
        sync: args.sync,
        ..Default::default()
    };
    // Create the file first: a refusal (exists, symlink) should come before any tracing.
    let mut w = Writer::create(&args.output, &host, opts)?;
    let mut lopts = LiveOptions {
        trace: args.trace.options(),
        ..Default::default()
    };
    lopts.trace.netns = args.netns;
    let mut live = Live::start(lopts).await?;
    for warning in &live.warnings.0 {
        eprintln!("portwatch: warning: {warning}");
        write(
            &mut w,
            &recording::warning_note(monotonic_now_ns(), warning),
        )?;
    }
    if let Some((at, snap)) = &live.snapshot {
        write(
            &mut w,
            &recording::snapshot_record(Schema::Startup, *at, snap)?,
        )?;
    }
    eprintln!(
        "portwatch: recording to {}; Ctrl-C to stop",
        args.output.display()
    );
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    let mut last_counters = Instant::now();
    let mut batch = Vec::new();
    loop {
        let until_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = live.next_batch(&mut batch) => r?,
            _ = ticks.tick() => {
                live.tick();
                if let Some((at, snap)) = live.reconciled.take() {
                    write(&mut w, &recording::snapshot_record(Schema::Reconcile, at, &snap)?)?;
                }
                if !live.workloads.learned.is_empty() {
                    let learned = std::mem::take(&mut live.workloads.learned);
                    write(&mut w, &recording::workloads_record(live.model.now_ns(), &learned)?)?;
                }
                if last_counters.elapsed() >= Duration::from_secs(1) {
                    write(&mut w, &recording::loss_record(monotonic_now_ns(), &live.counters())?)?;
                    last_counters = Instant::now();
                }
                w.flush_if_due(Instant::now()).with_context(|| format!("write {}", args.output.display()))?;
            }
            _ = until_deadline => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
        for ev in &batch {
            w.push(ev)
                .with_context(|| format!("write {}", args.output.display()))?;
        }
        batch.clear();
    }
    let rest = live.stop();
    for ev in &rest {
        w.push(ev)?;
    }
    if !live.workloads.learned.is_empty() {
        let learned = std::mem::take(&mut live.workloads.learned);
        write(
            &mut w,
            &recording::workloads_record(live.model.now_ns(), &learned)?,
        )?;
    }
    let counters = live.counters();
    write(
        &mut w,
        &recording::loss_record(monotonic_now_ns(), &counters)?,
    )?;
    let summary = w
        .finish()
        .with_context(|| format!("finish {}", args.output.display()))?;
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
        counters.lost_total()
    );
    Ok(ExitCode::SUCCESS)
}
