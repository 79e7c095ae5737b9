//! A live session: the kernel collector and the context worker emit [`Input`]s over one
//! channel, and [`Live::pump`] feeds each to the model, then to the session's sinks.
//!
//! ```text
//! collector task ─ events, ticks (4 Hz), loss and ─────┐
//!                  connect() latency (1 Hz)             │
//! context worker ─ start-up snapshot, reconciliations, ─┤
//!                  warnings                             ├▶ channel ─▶ Model::feed ─▶ sinks
//! conntrack reader ─ NAT namespaces' readings (1 Hz) ───┘                 ▲
//! workload feed (on ticks) ─ cgroup ids → unit, container, pod ───────────┘
//! ```
//!
//! One task owns the collector and runs the context worker's dumps and the conntrack reads
//! (on blocking threads, so that neither holds up the ring buffer), so
//! the order of the inputs is the order the session saw them, and a recorder that writes them
//! all lets replay rebuild the same model. The start-up snapshot is taken after the programs
//! are attached: events that happen meanwhile wait in the ring buffer and come after it.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use super::{
    nat::{self, ConntrackReader},
    sink::{Flow, Sink},
    workloads::WorkloadFeed,
};
use crate::{
    collect::{self, Collector, Counters, monotonic_now_ns},
    context,
    event::Event,
    model::{Input, Model, ModelConfig, Stamped},
};

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub trace: collect::Options,
    /// Take the start-up snapshot (sock_diag + /proc owners + sysctls), so that the first
    /// picture includes the sockets that existed before portwatch started.
    pub snapshot: bool,
    /// Reconcile the model against sock_diag this often (`None`: never).
    pub reconcile_every: Option<Duration>,
    pub model: ModelConfig,
    /// Test only: the first N reconciliations fail (as a dump that errors would), so that
    /// tests can watch a failure travel to every view and into a recording.
    pub fail_reconciliations: u32,
    /// Read conntrack (statistics every second, SNAT'd entries when they may have changed)
    /// in every traced namespace that does source NAT: [`super::nat`].
    pub conntrack: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            trace: collect::Options::default(),
            snapshot: true,
            reconcile_every: Some(DEFAULT_RECONCILE),
            model: ModelConfig::default(),
            fail_reconciliations: 0,
            conntrack: true,
        }
    }
}

/// Reconciliation period: cheap (a sock_diag dump without the owner walk, ~100 ms per 100k
/// sockets), and the bound on how long a drift can last.
pub const DEFAULT_RECONCILE: Duration = Duration::from_secs(10);
/// How often the clock ticks without events.
pub const TICK: Duration = Duration::from_millis(250);
/// Loss counters are emitted every this many ticks (once a second).
const LOSS_EVERY_TICKS: u32 = 4;
/// Batches in flight between the collector task and the model: when the model falls behind,
/// the collector stops draining and the kernel counts what the full ring drops.
const CHANNEL_BATCHES: usize = 64;

/// What happened on the last [`Live::pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    More,
    /// A sink asked to stop (e.g. its output closed).
    SinkStopped,
    /// The source has ended (after [`Live::finish`] began, or the collector task failed).
    Ended,
}

/// What travels from the collector task to the model: the events of one read of the ring, in
/// the buffer the reader decoded them into (it goes back to the reader once fed: no copy, no
/// allocation per event), or any other inputs.
enum Batch {
    Events(Vec<Event>),
    Inputs(Vec<Input>),
}

pub struct Live {
    pub model: Model,
    inputs: mpsc::Receiver<Batch>,
    /// Where fed event batches go back to the ring's reader.
    recycler: collect::Recycler,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Inputs fed so far.
    pub fed: u64,
    /// Names the cgroups the model has seen; its answers are fed as inputs.
    pub workloads: WorkloadFeed,
    /// Asks the worker for a reconciliation before the periodic one (the value: how many
    /// unconfirmed FIN_WAIT2 timewait sockets the model had when it asked).
    early: watch::Sender<u64>,
    /// FIN_WAIT2 timewait sockets begun, and unconfirmed, at the last early request or
    /// reconciliation: the window [`Live::maybe_reconcile_early`] judges.
    early_base: (u64, u64),
}

/// New timewait sockets in the FIN_WAIT2 substate, not confirmed by a local peer's FIN,
/// that make the session ask for an early reconciliation: a remote peer's FIN (which makes
/// them TIME_WAIT) is usually untraced, and a pool of unconfirmed FIN_WAIT2 would otherwise
/// read as "the peer does not close" until the periodic reconciliation (docs/kernel-facts.md).
const EARLY_RECONCILE_AFTER: u64 = 16;
/// ... and they must be at least 1 in this many of the FIN_WAIT2 timewait sockets begun in
/// the same window: relative to the traffic. Loopback churn confirms nearly all of its own
/// (the local peer's LAST_ACK), but a few per 10k arrive in an order that leaves them
/// unconfirmed; with an absolute threshold alone, a 3 s churn of 20k connections/s asked
/// twice, each dump costing the model a full reconciliation. A remote peer's FIN leaves all of
/// its pool's unconfirmed.
const EARLY_UNCONFIRMED_SHARE: u64 = 16;
/// An early reconciliation comes no sooner than this after the last one, nor sooner than
/// [`EARLY_COST_FACTOR`] times the last one's duration (at most ~5 % of a core).
const EARLY_MIN_GAP: Duration = Duration::from_secs(1);
const EARLY_COST_FACTOR: u32 = 20;

fn dump_options(only_netns: &Option<Vec<u32>>, owners: bool) -> context::Options {
    context::Options {
        owners,
        sysctls: true,
        only_netns: only_netns.clone(),
        ..Default::default()
    }
}

/// The inputs of a dump: the snapshot, and a warning per namespace it could not read.
fn dump_inputs(
    report: context::Report,
    at_ns: u64,
    startup: bool,
    what: &str,
) -> impl Iterator<Item = Input> {
    let warnings: Vec<Input> = report
        .skipped
        .iter()
        .chain(&report.sysctl_errors)
        .map(|s| Input::warning(at_ns, format!("{what}: netns {}: {}", s.netns, s.error)))
        .collect();
    let snap = Stamped::new(at_ns, report.snapshot);
    let snap = if startup {
        Input::Startup(snap)
    } else {
        Input::Reconcile(snap)
    };
    warnings.into_iter().chain(std::iter::once(snap))
}

impl Live {
    /// Attaches the programs, takes the start-up snapshot, and starts the collector task.
    /// Warnings (hooks not attached, namespaces not read) are the first inputs.
    pub async fn start(opts: LiveOptions) -> anyhow::Result<Live> {
        let collector = Collector::start(&opts.trace)?;
        let mut first = Vec::new();
        for a in collector.attached() {
            if let Err(why) = &a.result {
                first.push(Input::warning(
                    monotonic_now_ns(),
                    format!(
                        "{} not attached ({why}): {}",
                        a.hook.attach_point(),
                        a.hook.loss_if_missing()
                    ),
                ));
            }
        }
        let only_netns = opts.trace.netns.map(|n| vec![n]);
        if opts.snapshot {
            let dump = dump_options(&only_netns, true);
            let report = tokio::task::spawn_blocking(move || context::take(&dump))
                .await
                .context("snapshot thread")?
                .context("start-up snapshot (sock_diag)")?;
            first.extend(dump_inputs(
                report,
                monotonic_now_ns(),
                true,
                "start-up snapshot",
            ));
        }
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        tx.send(Batch::Inputs(first)).await.ok();
        let recycler = collector.recycler();
        let (stop, stop_rx) = watch::channel(false);
        let (early, early_rx) = watch::channel(0);
        let worker = Worker {
            early: early_rx,
            collector,
            tx,
            stop: stop_rx,
            reconcile_every: opts.reconcile_every,
            conntrack: opts
                .conntrack
                .then(|| ConntrackReader::start(only_netns.clone()))
                .flatten(),
            only_netns,
            fail_reconciliations: opts.fail_reconciliations,
        };
        Ok(Live {
            model: Model::new(opts.model),
            inputs: rx,
            recycler,
            stop,
            task: Some(tokio::spawn(worker.run())),
            fed: 0,
            workloads: WorkloadFeed::new(context::cgroups::Resolver::system()),
            early,
            early_base: (0, 0),
        })
    }

    /// Asks for an early reconciliation when unconfirmed FIN_WAIT2 timewait sockets grew by
    /// [`EARLY_RECONCILE_AFTER`] since the last time it asked (or the last reconciliation),
    /// and by at least 1/[`EARLY_UNCONFIRMED_SHARE`] of those begun meanwhile.
    fn maybe_reconcile_early(&mut self) {
        let (started, unconfirmed) = (
            self.model.fin_wait2_started(),
            self.model.fin_wait2_unconfirmed(),
        );
        let grew = unconfirmed.saturating_sub(self.early_base.1);
        let begun = started.saturating_sub(self.early_base.0);
        if grew >= EARLY_RECONCILE_AFTER && grew * EARLY_UNCONFIRMED_SHARE >= begun {
            self.early.send_replace(unconfirmed);
            self.early_base = (started, unconfirmed);
        }
    }

    /// A reconciliation was fed: the window of [`Live::maybe_reconcile_early`] starts anew.
    fn reconciled(&mut self) {
        self.early_base = (
            self.model.fin_wait2_started(),
            self.model.fin_wait2_unconfirmed(),
        );
    }

    /// Waits for the next inputs, feeds each to the model and then to every sink, in order.
    pub async fn pump(&mut self, sinks: &mut [&mut dyn Sink]) -> anyhow::Result<Pumped> {
        let Some(batch) = self.inputs.recv().await else {
            if let Some(task) = self.task.take() {
                task.await.context("collector task")??;
            }
            return Ok(Pumped::Ended);
        };
        let mut out = Pumped::More;
        let batch = match batch {
            Batch::Events(events) => {
                for ev in &events {
                    if self.feed(&Input::Event(*ev), sinks)? == Flow::Stop {
                        out = Pumped::SinkStopped;
                    }
                }
                self.recycler.give(events);
                self.maybe_reconcile_early();
                return Ok(out);
            }
            Batch::Inputs(inputs) => inputs,
        };
        for input in &batch {
            if self.feed(input, sinks)? == Flow::Stop {
                out = Pumped::SinkStopped;
            }
            if let Input::Reconcile(_) = input {
                self.reconciled();
            }
            if let Input::Tick(_) = input {
                self.workloads.tick(&mut self.model);
                if self.feed_exes(sinks)? == Flow::Stop {
                    out = Pumped::SinkStopped;
                }
                if self.feed_workloads(sinks)? == Flow::Stop {
                    out = Pumped::SinkStopped;
                }
            }
        }
        self.maybe_reconcile_early();
        Ok(out)
    }

    /// One input to the model, then to every sink.
    fn feed(&mut self, input: &Input, sinks: &mut [&mut dyn Sink]) -> anyhow::Result<Flow> {
        for s in sinks.iter_mut() {
            s.before(input, &self.model);
        }
        self.model.feed(input);
        self.fed += 1;
        let mut flow = Flow::Continue;
        for s in sinks.iter_mut() {
            if s.feed(input, &self.model)? == Flow::Stop {
                flow = Flow::Stop;
            }
        }
        Ok(flow)
    }

    /// What the processes seen since the last call execute, as an input.
    fn feed_exes(&mut self, sinks: &mut [&mut dyn Sink]) -> anyhow::Result<Flow> {
        match super::exes::learn(&mut self.model) {
            Some(input) => self.feed(&input, sinks),
            None => Ok(Flow::Continue),
        }
    }

    /// The workloads learned since the last call, as an input.
    fn feed_workloads(&mut self, sinks: &mut [&mut dyn Sink]) -> anyhow::Result<Flow> {
        if self.workloads.learned.is_empty() {
            return Ok(Flow::Continue);
        }
        let learned = std::mem::take(&mut self.workloads.learned);
        let input = Input::Workloads(Stamped::new(self.model.now_ns(), learned));
        self.feed(&input, sinks)
    }

    /// [`Live::pump`] without sinks, appending the events fed to `out` (for views that show
    /// raw events). Returns once something was fed.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> anyhow::Result<Pumped> {
        self.pump(&mut [&mut super::sink::EventTap(out)]).await
    }

    /// Stops the collector (detaching the programs), and feeds everything that is left: the
    /// last events in the ring buffer, the final loss counters and a last clock tick.
    pub async fn finish(&mut self, sinks: &mut [&mut dyn Sink]) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        while self.pump(sinks).await? != Pumped::Ended {}
        // The last names, so that the last picture has them.
        self.workloads.finish(&mut self.model);
        self.feed_exes(sinks)?;
        self.feed_workloads(sinks)?;
        Ok(())
    }

    /// The loss counters as last fed.
    pub fn counters(&self) -> Counters {
        *self.model.loss()
    }
}

/// The task that owns the collector and runs the dumps.
struct Worker {
    collector: Collector,
    tx: mpsc::Sender<Batch>,
    stop: watch::Receiver<bool>,
    reconcile_every: Option<Duration>,
    early: watch::Receiver<u64>,
    only_netns: Option<Vec<u32>>,
    fail_reconciliations: u32,
    conntrack: Option<ConntrackReader>,
}

type Dump = tokio::task::JoinHandle<anyhow::Result<context::Report>>;

impl Worker {
    async fn run(mut self) -> anyhow::Result<()> {
        let mut ticks = tokio::time::interval(TICK);
        let far = Duration::from_secs(86_400 * 365);
        let every = self.reconcile_every.unwrap_or(far);
        let mut reconcile = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut pending: Option<Dump> = None;
        // The last dump's start and duration, and whether the model asked for one early.
        let mut last_dump: Option<(std::time::Instant, Duration)> = None;
        let mut dump_started = std::time::Instant::now();
        let mut early_wanted = false;
        let mut conntrack_every = tokio::time::interval(nat::READ_EVERY);
        conntrack_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conntrack = self.conntrack.take();
        let mut n_ticks = 0u32;
        let mut events = Vec::new();
        loop {
            let mut out = Vec::new();
            let mut read = None;
            tokio::select! {
                r = self.collector.recv_batch() => {
                    read = Some(r.context("read the ring buffer")?);
                }
                _ = ticks.tick() => {
                    let now = monotonic_now_ns();
                    n_ticks += 1;
                    if n_ticks.is_multiple_of(LOSS_EVERY_TICKS) {
                        out.push(Input::Loss(Box::new(Stamped::new(now, self.collector.counters()))));
                        out.extend(self.collector.latency(now).map(Input::Latency));
                    }
                    out.push(Input::Tick(now));
                    let due = last_dump.is_none_or(|(at, took)| {
                        at.elapsed() >= EARLY_MIN_GAP.max(took * EARLY_COST_FACTOR)
                    });
                    if early_wanted && pending.is_none() && due {
                        early_wanted = false;
                        dump_started = std::time::Instant::now();
                        pending = Some(dump(&self.only_netns, &mut self.fail_reconciliations));
                    }
                }
                r = self.early.changed(), if self.reconcile_every.is_some() && !early_wanted => {
                    // A dropped sender (the session ending) is the stop branch's business.
                    early_wanted = r.is_ok();
                }
                _ = reconcile.tick(), if self.reconcile_every.is_some() && pending.is_none() => {
                    dump_started = std::time::Instant::now();
                    pending = Some(dump(&self.only_netns, &mut self.fail_reconciliations));
                }
                r = async { pending.as_mut().unwrap().await }, if pending.is_some() => {
                    pending = None;
                    last_dump = Some((dump_started, dump_started.elapsed()));
                    let at = monotonic_now_ns();
                    match r.context("reconciliation thread").and_then(|r| r) {
                        Ok(report) => out.extend(dump_inputs(report, at, false, "reconciliation")),
                        Err(e) => out.push(Input::warning(at, format!("reconciliation failed: {e:#}"))),
                    }
                }
                _ = conntrack_every.tick(), if conntrack.as_ref().is_some_and(|c| c.idle()) => {
                    if let Some(c) = conntrack.as_mut() {
                        c.read();
                    }
                    continue;
                }
                r = async { conntrack.as_mut().unwrap().done().await },
                    if conntrack.as_ref().is_some_and(|c| c.busy()) => {
                    out = r;
                }
                _ = self.stop.wait_for(|s| *s) => break,
            }
            let batch = match read {
                Some(events) => Batch::Events(events),
                None => Batch::Inputs(out),
            };
            if self.tx.send(batch).await.is_err() {
                return Ok(()); // nobody listens any more
            }
        }
        // Stopped: the programs detach, so that the counters stop moving, then the rest.
        self.collector.stop();
        self.collector.drain(&mut events);
        let now = monotonic_now_ns();
        let mut out: Vec<Input> = events.drain(..).map(Input::Event).collect();
        if let Some(e) = self.collector.first_decode_error() {
            out.push(Input::warning(
                now,
                format!("first undecodable record: {e}"),
            ));
        }
        if let Some(c) = conntrack {
            out.extend(c.finish().await);
        }
        let now = monotonic_now_ns();
        out.extend(self.collector.latency(now).map(Input::Latency));
        out.push(Input::Loss(Box::new(Stamped::new(
            now,
            self.collector.counters(),
        ))));
        out.push(Input::Tick(now));
        self.tx.send(Batch::Inputs(out)).await.ok();
        Ok(())
    }
}

/// A reconciliation dump (no owner walk) on a blocking thread.
fn dump(only_netns: &Option<Vec<u32>>, fail_first: &mut u32) -> Dump {
    let opts = dump_options(only_netns, false);
    let fail = *fail_first > 0;
    *fail_first = fail_first.saturating_sub(1);
    tokio::task::spawn_blocking(move || {
        if fail {
            anyhow::bail!("dump refused (test: --fail-reconciliations)");
        }
        context::take(&opts)
    })
}
