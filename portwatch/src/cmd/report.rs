//! `portwatch report [FILE]`: the diagnosis — findings first, then the tables behind them —
//! from a live window or from a recording, through the same model and rules.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    explain::explain,
    html,
    model::{Input, Model, ModelConfig},
    record::{self, Host, Writer},
    report::{self, LostEvents, Report, Source},
    session::{self, Flow, Live, Recorder, Replay, Sink, StderrWarnings, Until},
    timeline::Timeline,
};
use anyhow::Context as _;

use super::{SessionArgs, TraceArgs};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without FILE, portwatch traces live for --duration (Ctrl-C ends it early) and reports on
that window, including the sockets that existed before it started. With FILE, it reports on
a recording made with `portwatch record`, exactly as the live model saw it.

Examples:
  sudo portwatch report                       # 10 s live
  sudo portwatch report --duration 1m --json > report.json
  sudo portwatch report --record incident.pwr   # and keep what it saw
  portwatch report incident.pwr
  portwatch report incident.pwr --html incident.html   # one page, for the postmortem")]
pub struct Args {
    /// A recording (from `portwatch record`); without it, trace live.
    file: Option<PathBuf>,
    /// How long to trace live before reporting: seconds (`14`), or with a unit (`2m`, `1h30m`).
    #[arg(long, default_value = "10s", value_parser = super::parse_duration)]
    duration: Duration,
    /// The report as JSON (schema in the README, "Report JSON schema").
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained HTML page (findings, a timeline per pool,
    /// sysctls, lost events) to this file.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// Only this network namespace (inode, as in `ls -lL /proc/PID/ns/net`); live only.
    #[arg(long, value_name = "INODE")]
    netns: Option<u32>,
    /// Also group the processes by container, pod or systemd unit (a table, and `groups` in
    /// the JSON).
    #[arg(long, value_name = "WHAT", value_parser = parse_group_by)]
    group_by: Option<crate::model::GroupBy>,
    /// Also record the live window to FILE (as `portwatch record` would): `report FILE`
    /// on it later gives this same report.
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    record: Option<PathBuf>,
    #[command(flatten)]
    trace: TraceArgs,
    #[command(flatten)]
    session: SessionArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // The timeline costs a reading of the pools and the rules once per second: only for HTML.
    let mut timeline = args.html.as_ref().map(|_| Timeline::new());
    let report = match &args.file {
        Some(path) => from_file(path, limits(&args), timeline.as_mut())?,
        None => session::traced(live(&args, timeline.as_mut()))?,
    };
    if let (Some(out), Some(tl)) = (&args.html, &timeline) {
        std::fs::write(out, html::render(&report, tl))
            .with_context(|| format!("write {}", out.display()))?;
        eprintln!("portwatch: wrote {}", out.display());
    }
    print(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

fn sample(tl: &mut Timeline, model: &Model, now: u64, last: bool) {
    if last || tl.due(now) {
        let pools = model.pools(now, report::Limits::default().pools);
        tl.sample(now, &pools, &explain(model, now));
    }
}

/// Samples the timeline on the session's clock ticks.
struct Sampler<'a>(&'a mut Timeline);

impl Sink for Sampler<'_> {
    fn feed(&mut self, input: &Input, model: &Model) -> anyhow::Result<Flow> {
        if let Input::Tick(at) = input {
            sample(self.0, model, *at, false);
        }
        Ok(Flow::Continue)
    }
}

pub fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report::text::render(report));
    }
    Ok(())
}

pub fn context(
    host: &Host,
    source: Source,
    file: Option<String>,
    start: u64,
    end: u64,
) -> report::Context {
    let wall = host.wall_ns(end).max(0) as u64;
    let at = std::time::UNIX_EPOCH + Duration::from_nanos(wall);
    report::Context {
        host: host.hostname.clone(),
        kernel: host.kernel_release.clone(),
        source,
        recording: file,
        window_start_ns: start,
        window_end_ns: end,
        generated_at: Some(humantime::format_rfc3339_seconds(at).to_string()),
    }
}

fn parse_group_by(s: &str) -> Result<crate::model::GroupBy, String> {
    use crate::model::GroupBy;
    GroupBy::ALL
        .into_iter()
        .find(|g| g.name() == s)
        .ok_or_else(|| format!("expected container, pod or unit, not {s:?}"))
}

fn limits(args: &Args) -> report::Limits {
    report::Limits {
        group_by: args.group_by,
        ..Default::default()
    }
}

/// The report of a model at the end of its window (the one call site of both sources).
fn build(model: &Model, ctx: report::Context, limits: report::Limits) -> Report {
    Report::build(model, ctx, LostEvents::from(model.loss()), limits)
}

/// The report of a recording; with a timeline, replayed one second of recorded time at a
/// time and sampled after each.
fn from_file(
    path: &std::path::Path,
    limits: report::Limits,
    timeline: Option<&mut Timeline>,
) -> anyhow::Result<Report> {
    let mut replay = Replay::open(path, ModelConfig::default())?;
    match timeline {
        None => replay.run_to_end()?,
        Some(tl) => {
            let mut sink = Vec::new();
            let mut t = replay.host.start_mono_ns;
            while replay.advance_to(t, &mut sink)? {
                sink.clear();
                sample(tl, &replay.model, t, false);
                t += 1_000_000_000;
            }
            sample(tl, &replay.model, replay.position_ns, true);
        }
    }
    for w in replay.warnings() {
        eprintln!("portwatch: warning: {w}");
    }
    let (start, _) = replay.model.window_ns(replay.host.start_mono_ns);
    let ctx = context(
        &replay.host,
        Source::Recording,
        Some(path.display().to_string()),
        start,
        replay.position_ns.max(start),
    );
    Ok(build(&replay.model, ctx, limits))
}

async fn live(args: &Args, mut timeline: Option<&mut Timeline>) -> anyhow::Result<Report> {
    let mut opts = args.session.live_options(&args.trace);
    opts.trace.netns = args.netns;
    let host = Host::current();
    // Create the file first: a refusal (exists, symlink) should come before any tracing.
    let mut recorder = match &args.record {
        Some(path) => Some(Recorder::new(Writer::create(
            path,
            &host,
            record::Options::default(),
        )?)),
        None => None,
    };
    let mut live = Live::start(opts).await?;
    eprintln!(
        "portwatch: tracing for {}; Ctrl-C to report now",
        humantime::format_duration(args.duration)
    );
    let mut warnings = StderrWarnings;
    let mut sinks: Vec<&mut dyn Sink> = vec![&mut warnings];
    if let Some(r) = recorder.as_mut() {
        sinks.push(r);
    }
    let mut sampler = timeline.as_deref_mut().map(Sampler);
    if let Some(s) = sampler.as_mut() {
        sinks.push(s);
    }
    let until = Until {
        duration: Some(args.duration),
    };
    session::run(&mut live, &mut sinks, until).await?;
    drop(sinks);
    if let Some(r) = recorder {
        r.finish()?;
    }
    // The window begins with the model's first input (the start-up snapshot, once the
    // programs are attached: not when the command started, a second or so earlier) and ends
    // at the last, the final tick; in replay too.
    let (start, end) = live.model.window_ns(host.start_mono_ns);
    if let Some(tl) = timeline {
        sample(tl, &live.model, end, true);
    }
    let ctx = context(&host, Source::Live, None, start, end);
    Ok(build(&live.model, ctx, limits(args)))
}
