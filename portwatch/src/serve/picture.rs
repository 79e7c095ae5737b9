//! The picture the exporter renders, built once per refresh from the model and the collector's
//! counters. `/metrics`, `/report.json` and `/healthz` all render this and nothing else: no
//! view asks the model anything.
//!
//! This is the seam for the shared per-refresh snapshot: until that lands, the picture is the
//! report (`portwatch report --json`'s object, with the top N pools) plus the few facts the
//! metrics need that a report does not keep (the highest utilisation over *all* pools, and the
//! failure totals per network namespace).

use std::time::Instant;

use crate::{
    collect::Counters,
    model::{Model, NetnsFailures},
    report::{Context, Limits, LostEvents, Report},
};

/// One refresh's picture.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The report for the window so far, with at most `top` pools (most urgent first).
    pub report: Report,
    /// The highest `in_use / capacity` over every pool (0 without pools).
    pub max_utilisation: f64,
    /// Pools with a socket or a failure, all of them (the report keeps `top`).
    pub pools_total: usize,
    /// Failed calls per (netns, call, errno) since the start; they only grow.
    pub failures: Vec<NetnsFailures>,
    /// Records the collector received from the ring buffer.
    pub events_received: u64,
    /// How long building this picture took (the agent's own cost per refresh).
    pub build_seconds: f64,
}

impl Picture {
    /// The picture of `model` at `context.window_end_ns`, keeping the `top` most urgent pools.
    pub fn build(model: &Model, context: Context, counters: &Counters, top: usize) -> Picture {
        let started = Instant::now();
        let limits = Limits {
            pools: usize::MAX,
            ..Limits::default()
        };
        let mut report = Report::build(model, context, LostEvents::from(counters), limits);
        let max_utilisation = report
            .pools
            .iter()
            .map(|p| p.utilisation)
            .fold(0.0, f64::max);
        let pools_total = report.pools.len();
        report.pools.truncate(top);
        let failures = model.failures_by_netns();
        Picture {
            report,
            max_utilisation,
            pools_total,
            failures,
            events_received: counters.received_total(),
            build_seconds: started.elapsed().as_secs_f64(),
        }
    }
}
