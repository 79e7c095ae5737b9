//! Stand-ins for `portwatch record` and `portwatch report` while portwatch has neither: the
//! library's own live session (collector + start-up snapshot + model + reconciliation), in a
//! process of its own like the real commands, writing the recording with `record::Writer` as
//! a recorder would. They print what they received as one JSON line ([`crate::tracer::Tally`]).

use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use portwatch::{
    collect::{self, monotonic_now_ns},
    record::{self, ContextRecord, Host, Writer},
    session::{
        live::{Live, LiveOptions},
        recording::{Schema, loss_record, snapshot_record, warning_note},
    },
};
use tokio::signal::unix::{SignalKind, signal};

use crate::tracer::Tally;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// The live model, as `portwatch report` runs it.
    Live {
        #[arg(long)]
        netns: Option<u32>,
    },
    /// The live model and a recording, as `portwatch record` would.
    Record {
        #[arg(long)]
        netns: Option<u32>,
        #[arg(long)]
        output: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (netns, output) = match args.what {
        What::Live { netns } => (netns, None),
        What::Record { netns, output } => (netns, Some(output)),
    };
    let tally = rt.block_on(session(netns, output))?;
    println!("{}", serde_json::to_string(&tally)?);
    Ok(())
}

async fn session(netns: Option<u32>, output: Option<PathBuf>) -> anyhow::Result<Tally> {
    let mut live = Live::start(LiveOptions {
        trace: collect::Options {
            netns,
            ..collect::Options::default()
        },
        ..LiveOptions::default()
    })
    .await?;
    let mut writer = match &output {
        Some(path) => {
            let host = Host::current();
            let mut w = Writer::create(path, &host, record::Options::default())
                .with_context(|| format!("create {}", path.display()))?;
            w.context(&ContextRecord::Host(host))?;
            if let Some((at, snap)) = &live.snapshot {
                w.context(&snapshot_record(Schema::Startup, *at, snap)?)?;
            }
            for text in &live.warnings.0 {
                w.context(&warning_note(monotonic_now_ns(), text))?;
            }
            Some(w)
        }
        None => None,
    };
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    let mut last_loss = Instant::now();
    let mut batch = Vec::new();
    let mut state = 0u64;
    loop {
        tokio::select! {
            r = live.next_batch(&mut batch) => r?,
            _ = tick.tick() => live.tick(),
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
        if let Some(w) = writer.as_mut() {
            for e in &batch {
                w.push(e)?;
            }
            if let Some((at, snap)) = live.reconciled.take() {
                w.context(&snapshot_record(Schema::Reconcile, at, &snap)?)?;
            }
            if last_loss.elapsed().as_secs() >= 1 {
                w.context(&loss_record(monotonic_now_ns(), &live.counters())?)?;
                last_loss = Instant::now();
            }
            w.flush_if_due(Instant::now())?;
        }
        state += count_state(&batch);
        batch.clear();
    }
    let rest = live.stop();
    state += count_state(&rest);
    let c = live.counters();
    if let Some(mut w) = writer {
        for e in &rest {
            w.push(e)?;
        }
        w.context(&loss_record(monotonic_now_ns(), &c)?)?;
        w.finish()?;
    }
    Ok(Tally {
        state_received: Some(state),
        received: c.received_total(),
        lost: c.lost_total(),
        lost_by: crate::parse::lost_by(&c),
        kernel_seen: Some(c.state.seen + c.skipped.state),
        ..Tally::default()
    })
}

fn count_state(evs: &[portwatch::event::Event]) -> u64 {
    evs.iter()
        .filter(|e| matches!(e.kind, portwatch::event::EventKind::State(_)))
        .count() as u64
}
