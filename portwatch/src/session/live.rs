//! A live session: the kernel collector feeding the model, with the start-up snapshot merged
//! first and a periodic reconciliation against sock_diag. Every live view (report, TUI,
//! recorder) drives one of these; replay drives the same model from a file instead.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::{
    collect::{self, Collector, Counters, monotonic_now_ns},
    context,
    event::Event,
    model::{Correction, Model, ModelConfig, SystemSnapshot},
    session::workloads::WorkloadFeed,
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
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            trace: collect::Options::default(),
            snapshot: true,
            reconcile_every: Some(DEFAULT_RECONCILE),
            model: ModelConfig::default(),
        }
    }
}

/// Reconciliation period: cheap (a sock_diag dump without the owner walk, ~100 ms per 100k
/// sockets), and the bound on how long a drift can last.
pub const DEFAULT_RECONCILE: Duration = Duration::from_secs(10);

/// What the collector, the snapshot or the reconciliation could not do, for the views to show.
#[derive(Debug, Clone, Default)]
pub struct Warnings(pub Vec<String>);

pub struct Live {
    pub collector: Collector,
    pub model: Model,
    /// The start-up snapshot, with the model time it was merged at (the recorder keeps it).
    pub snapshot: Option<(u64, SystemSnapshot)>,
    pub warnings: Warnings,
    reconcile_every: Option<Duration>,
    next_reconcile: Instant,
    pending: Option<tokio::task::JoinHandle<anyhow::Result<context::Report>>>,
    only_netns: Option<Vec<u32>>,
    /// Corrections from the last reconciliation.
    pub last_corrections: Vec<Correction>,
    /// The last reconciliation snapshot, until someone takes it (the recorder does, so that
    /// replay reconciles at the same point).
    /// With the model time it was applied at.
    pub reconciled: Option<(u64, SystemSnapshot)>,
    /// Events applied so far.
    pub events: u64,
    /// Names the cgroups the model has seen (the recorder takes `workloads.learned`).
    pub workloads: WorkloadFeed,
}

fn snapshot_options(only_netns: &Option<Vec<u32>>, owners: bool) -> context::Options {
    context::Options {
        owners,
        sysctls: true,
        only_netns: only_netns.clone(),
        ..Default::default()
    }
}

impl Live {
    /// Attaches the programs, then takes the snapshot: events that happen meanwhile wait in
    /// the ring buffer and are applied after it, so nothing falls between the two.
    pub async fn start(opts: LiveOptions) -> anyhow::Result<Live> {
        let collector = Collector::start(&opts.trace)?;
        let mut warnings = Warnings::default();
        for a in collector.attached() {
            if let Err(why) = &a.result {
                warnings.0.push(format!(
                    "{} not attached ({why}): {}",
                    a.hook.attach_point(),
                    a.hook.loss_if_missing()
                ));
            }
        }
        let only_netns = opts.trace.netns.map(|n| vec![n]);
        let mut model = Model::new(opts.model.clone());
        let mut snapshot = None;
        if opts.snapshot {
            let sopts = snapshot_options(&only_netns, true);
            let report = tokio::task::spawn_blocking(move || context::take(&sopts))
                .await
                .context("snapshot thread")?
                .context("start-up snapshot (sock_diag)")?;
            for s in report.skipped.iter().chain(&report.sysctl_errors) {
                warnings.0.push(format!("netns {}: {}", s.netns, s.error));
            }
            let at = monotonic_now_ns();
            model.load_snapshot(&report.snapshot, at);
            snapshot = Some((at, report.snapshot));
        }
        Ok(Live {
            collector,
            model,
            snapshot,
            warnings,
            next_reconcile: Instant::now() + opts.reconcile_every.unwrap_or(Duration::MAX / 4),
            reconcile_every: opts.reconcile_every,
            pending: None,
            only_netns,
            last_corrections: Vec::new(),
            reconciled: None,
            events: 0,
            workloads: WorkloadFeed::new(context::cgroups::Resolver::system()),
        })
    }

    /// Waits for events, applies them to the model, and leaves them in `out` (appended) for
    /// views that show or keep raw events.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()> {
        let from = out.len();
        self.collector
            .next_batch(out)
            .await
            .context("read the ring buffer")?;
        self.apply(&out[from..]);
        Ok(())
    }

    fn apply(&mut self, events: &[Event]) {
        for ev in events {
            self.model.apply(ev);
        }
        self.events += events.len() as u64;
    }

    /// Advances the model's clock, and runs the periodic reconciliation (the dump runs on a
    /// blocking thread; its result is merged on a later tick). Call a few times a second.
    pub fn tick(&mut self) {
        let now = monotonic_now_ns();
        self.model.tick(now);
        self.workloads.tick(&mut self.model);
        if let Some(h) = &self.pending
            && h.is_finished()
        {
            let h = self.pending.take().unwrap();
            match futures_now(h) {
                Some(Ok(report)) => {
                    let at = self.model.now_ns();
                    self.last_corrections = self.model.reconcile(&report.snapshot, at);
                    self.reconciled = Some((at, report.snapshot));
                }
                Some(Err(e)) => self
                    .warnings
                    .0
                    .push(format!("reconciliation failed: {e:#}")),
                None => {}
            }
        }
        if let Some(every) = self.reconcile_every
            && self.pending.is_none()
            && Instant::now() >= self.next_reconcile
        {
            let sopts = snapshot_options(&self.only_netns, false);
            self.pending = Some(tokio::task::spawn_blocking(move || context::take(&sopts)));
            self.next_reconcile = Instant::now() + every;
        }
    }

    /// Detaches the programs and applies what is left in the ring buffer; returns those last
    /// events.
    pub fn stop(&mut self) -> Vec<Event> {
        self.collector.stop();
        let mut rest = Vec::new();
        self.collector.drain(&mut rest);
        self.apply(&rest);
        self.model.tick(monotonic_now_ns());
        self.workloads.finish(&mut self.model);
        rest
    }

    pub fn counters(&self) -> Counters {
        self.collector.counters()
    }
}

/// The result of a finished task, without awaiting.
fn futures_now<T>(h: tokio::task::JoinHandle<anyhow::Result<T>>) -> Option<anyhow::Result<T>> {
    use std::task::{Context, Poll, Waker};
    let mut h = std::pin::pin!(h);
    match h.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(r)) => Some(r),
        Poll::Ready(Err(e)) => Some(Err(anyhow::anyhow!("reconciliation thread: {e}"))),
        Poll::Pending => None,
    }
}
