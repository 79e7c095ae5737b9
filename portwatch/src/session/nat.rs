//! The conntrack source of a live session: [`NatSource`] read on a blocking thread every
//! second (its namespace discovery every ten), one read at a time. Each reading becomes an
//! [`Input::Conntrack`], and what could not be read a warning, on the session's one input
//! channel, so that the model, the recorder and replay all see the same readings.
//!
//! The read never runs on the event path: the collector task only starts it and collects its
//! result when it is done. A slow read (a dump of a large table: docs/nat.md, "Cost of the
//! dump") only delays the next reading; the dump itself is bounded by [`DumpPolicy`].

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

use crate::{
    collect::monotonic_now_ns,
    context::{
        ContextError, Skipped,
        nat::{DumpPolicy, NatSource},
    },
    model::{Input, nat::ConntrackReading},
};

/// How often every NAT namespace is read.
pub const READ_EVERY: Duration = Duration::from_secs(1);
/// How often the namespaces are searched again for NAT rules.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(10);
/// How long the end of a session waits for a read in flight, and for its own last read.
const FINISH_WAIT: Duration = Duration::from_secs(10);

/// What one read on the blocking thread gives back.
struct Step {
    /// The source, handed back for the next read (`None`: discovery failed altogether).
    source: Option<NatSource>,
    readings: Vec<Result<ConntrackReading, Skipped>>,
    /// Namespaces that discovery could not look into.
    skipped: Vec<Skipped>,
    /// Why discovery failed.
    failed: Option<ContextError>,
}

/// Reads conntrack in the background; at most one read in flight.
pub struct ConntrackReader {
    /// Between reads; `None` while one is in flight or once discovery failed.
    source: Option<NatSource>,
    task: Option<JoinHandle<Step>>,
    next_discover: Instant,
    /// Namespaces already warned about, so that a failing one is said once.
    warned: BTreeSet<u32>,
}

impl ConntrackReader {
    /// Starts finding the NAT namespaces (all, or `only`) and reading each once with a dump,
    /// in the background. `None` without CAP_NET_ADMIN, which every netfilter netlink request
    /// needs: the session then has no NAT pools, and says so once in the log (at info level:
    /// the deployment files grant no CAP_NET_ADMIN, and a session without NAT pools has
    /// lost nothing it had before; docs/nat.md, "Privileges").
    pub fn start(only: Option<Vec<u32>>) -> Option<ConntrackReader> {
        if !crate::privileges::has_net_admin() {
            log::info!(
                "conntrack not read: it needs CAP_NET_ADMIN (no NAT pools, no snat_exhaustion)"
            );
            return None;
        }
        let task = tokio::task::spawn_blocking(move || {
            match NatSource::discover(only, DumpPolicy::default()) {
                Ok((mut source, skipped)) => Step {
                    readings: source.read(monotonic_now_ns(), true),
                    source: Some(source),
                    skipped,
                    failed: None,
                },
                Err(e) => Step {
                    source: None,
                    readings: Vec::new(),
                    skipped: Vec::new(),
                    failed: Some(e),
                },
            }
        });
        Some(ConntrackReader {
            source: None,
            task: Some(task),
            next_discover: Instant::now() + DISCOVER_EVERY,
            warned: BTreeSet::new(),
        })
    }

    /// Whether a read can start now.
    pub fn idle(&self) -> bool {
        self.task.is_none() && self.source.is_some()
    }

    /// Whether a read is in flight ([`ConntrackReader::done`] then completes).
    pub fn busy(&self) -> bool {
        self.task.is_some()
    }

    /// Starts a read (and a discovery when one is due) if none is in flight.
    pub fn read(&mut self) {
        let Some(mut source) = self.source.take().filter(|_| self.task.is_none()) else {
            return;
        };
        let discover = Instant::now() >= self.next_discover;
        if discover {
            self.next_discover = Instant::now() + DISCOVER_EVERY;
        }
        self.task = Some(tokio::task::spawn_blocking(move || {
            let (skipped, failed) = match discover.then(|| source.rediscover()) {
                Some(Ok(skipped)) => (skipped, None),
                Some(Err(e)) => (Vec::new(), Some(e)),
                None => (Vec::new(), None),
            };
            Step {
                readings: source.read(monotonic_now_ns(), false),
                source: Some(source),
                skipped,
                failed,
            }
        }));
    }

    /// Waits for the read in flight and gives its inputs (never completes when none is).
    pub async fn done(&mut self) -> Vec<Input> {
        let Some(task) = self.task.as_mut() else {
            return std::future::pending().await;
        };
        let r = task.await;
        self.task = None;
        self.take(r)
    }

    /// The end of a session: the read in flight, then a last reading with a dump, so that the
    /// last picture has the NAT pools as they are now. Each waits at most [`FINISH_WAIT`].
    pub async fn finish(mut self) -> Vec<Input> {
        let mut out = Vec::new();
        if self.busy() {
            match tokio::time::timeout(FINISH_WAIT, self.done()).await {
                Ok(inputs) => out.extend(inputs),
                Err(_) => {
                    out.push(warning("conntrack read did not finish".into()));
                    return out;
                }
            }
        }
        let Some(mut source) = self.source.take() else {
            return out;
        };
        let last = tokio::task::spawn_blocking(move || Step {
            readings: source.read(monotonic_now_ns(), true),
            source: Some(source),
            skipped: Vec::new(),
            failed: None,
        });
        match tokio::time::timeout(FINISH_WAIT, last).await {
            Ok(r) => out.extend(self.take(r)),
            Err(_) => out.push(warning("last conntrack read did not finish".into())),
        }
        out
    }

    fn take(&mut self, r: Result<Step, tokio::task::JoinError>) -> Vec<Input> {
        let step = match r {
            Ok(step) => step,
            Err(e) => return vec![warning(format!("conntrack thread: {e}"))],
        };
        self.source = step.source;
        let mut out = Vec::new();
        if let Some(e) = step.failed {
            out.push(warning(format!("conntrack: find NAT namespaces: {e}")));
        }
        let mut failed = step.skipped;
        for r in step.readings {
            match r {
                Ok(r) => out.push(Input::Conntrack(Box::new(r))),
                Err(s) => failed.push(s),
            }
        }
        for s in failed {
            if self.warned.insert(s.netns) {
                out.push(warning(format!(
                    "netns {}: conntrack not read: {}",
                    s.netns, s.error
                )));
            }
        }
        out
    }
}

fn warning(text: String) -> Input {
    Input::warning(monotonic_now_ns(), text)
}
