//! Stand-ins for `portwatch record` and `portwatch report` while portwatch has neither: the
//! library's own live session (collector + start-up snapshot + model + reconciliation), in a
//! process of its own like the real commands, writing the recording with `record::Writer` as
//! a recorder would. They print what they received as one JSON line ([`crate::tracer::Tally`]).

use std::path::PathBuf;

use anyhow::Context as _;
use portwatch::{
    collect,
    event::EventKind,
    model::{Input, Model},
    record::{self, Host, Writer},
    session::{self, Flow, Live, LiveOptions, Recorder, Sink, Until},
};

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
    let (netns, output) = match args.what {
        What::Live { netns } => (netns, None),
        What::Record { netns, output } => (netns, Some(output)),
    };
    let tally = session::block_on(run_session(netns, output))?;
    println!("{}", serde_json::to_string(&tally)?);
    Ok(())
}

/// Counts the state events the session received.
#[derive(Default)]
struct StateCount(u64);

impl Sink for StateCount {
    fn feed(&mut self, input: &Input, _model: &Model) -> anyhow::Result<Flow> {
        if let Input::Event(e) = input
            && matches!(e.kind, EventKind::State(_))
        {
            self.0 += 1;
        }
        Ok(Flow::Continue)
    }
}

async fn run_session(netns: Option<u32>, output: Option<PathBuf>) -> anyhow::Result<Tally> {
    let mut recorder = match &output {
        Some(path) => {
            let w = Writer::create(path, &Host::current(), record::Options::default())
                .with_context(|| format!("create {}", path.display()))?;
            Some(Recorder::new(w))
        }
        None => None,
    };
    let mut live = Live::start(LiveOptions {
        trace: collect::Options {
            netns,
            ..collect::Options::default()
        },
        ..LiveOptions::default()
    })
    .await?;
    let mut state = StateCount::default();
    let mut sinks: Vec<&mut dyn Sink> = vec![&mut state];
    if let Some(r) = recorder.as_mut() {
        sinks.push(r);
    }
    session::run(&mut live, &mut sinks, Until::default()).await?;
    drop(sinks);
    if let Some(r) = recorder {
        r.finish()?;
    }
    let c = live.counters();
    Ok(Tally {
        state_received: Some(state.0),
        received: c.received_total(),
        lost: c.lost_total(),
        lost_by: crate::parse::lost_by(&c),
        kernel_seen: Some(c.state.seen + c.skipped.state),
        ..Tally::default()
    })
}
