//! The history a report's window does not keep: per-pool figures sampled once per second of
//! model time while a session runs (live or replay), and the moments findings appeared and
//! ended. Pure: it is fed the per-refresh picture (the pools and findings every view renders)
//! with its model time, never the model itself, never the clock.
//!
//! The HTML report draws its charts from it (the whole window, up to an hour per pool); the TUI
//! draws the selected pool's chart from one that keeps only its last minutes
//! ([`Timeline::window`]), so that a console left running for days stays small.

use std::collections::HashMap;

use crate::{
    explain::{Cause, ConfigIssue, Finding, Severity},
    model::{PoolKey, PoolStats, StateCounts},
};

const SEC: u64 = 1_000_000_000;

/// One second's figures of one pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolSample {
    /// Model time (CLOCK_MONOTONIC ns).
    pub t_ns: u64,
    /// Sockets whose port comes out of the capacity, by state: what fills the pool.
    pub states: StateCounts,
    pub in_use: u32,
    pub capacity: u32,
    /// EADDRNOTAVAIL failures since the previous sample.
    pub failures: u64,
}

/// A pool's samples, oldest first. A second in which the pool was not among those shown has
/// no sample.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSeries {
    pub key: PoolKey,
    pub samples: Vec<PoolSample>,
    /// Cumulative EADDRNOTAVAIL at the last sample (to turn the total into a per-second
    /// figure).
    last_total: Option<u64>,
}

impl PoolSeries {
    pub fn peak_in_use(&self) -> u32 {
        self.samples.iter().map(|s| s.in_use).max().unwrap_or(0)
    }
    pub fn capacity(&self) -> u32 {
        self.samples.last().map_or(0, |s| s.capacity)
    }
    pub fn failures(&self) -> u64 {
        self.samples.iter().map(|s| s.failures).sum()
    }
    /// The first sample at capacity (no port left), if any.
    pub fn first_full_ns(&self) -> Option<u64> {
        self.samples
            .iter()
            .find(|s| s.capacity > 0 && s.in_use >= s.capacity)
            .map(|s| s.t_ns)
    }
    /// The first sample with failures, if any.
    pub fn first_failure_ns(&self) -> Option<u64> {
        self.samples.iter().find(|s| s.failures > 0).map(|s| s.t_ns)
    }
}

/// Which finding a span is about: the same cause on the same thing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingKey {
    pub cause: Cause,
    pub issue: Option<ConfigIssue>,
    pub netns: u32,
    pub dst: Option<std::net::SocketAddr>,
}

impl FindingKey {
    pub fn of(f: &Finding) -> FindingKey {
        FindingKey {
            cause: f.cause,
            issue: f.issue,
            netns: f.netns,
            dst: f.dst,
        }
    }
}

/// From when to when a finding was present (sampled once per second).
#[derive(Clone, Debug, PartialEq)]
pub struct FindingSpan {
    pub key: FindingKey,
    pub title: String,
    /// The most severe it got, and when it first got there.
    pub severity: Severity,
    pub severe_since_ns: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    /// Still present at the last sample.
    pub open: bool,
}

/// Per-pool samples and finding spans, once per second of model time.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pools: Vec<PoolSeries>,
    index: HashMap<PoolKey, usize>,
    spans: Vec<FindingSpan>,
    next_ns: Option<u64>,
    last_ns: Option<u64>,
    /// Keep only what is this recent (ns): older samples and spans go, and a pool with no
    /// sample left goes with them ([`Timeline::window`]).
    keep_ns: Option<u64>,
}

/// At most this many samples per pool (one hour at one per second); older ones are dropped.
const MAX_SAMPLES: usize = 3600;

impl Timeline {
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// A timeline of the last `secs` seconds only: a pool not sampled for that long is
    /// forgotten, so memory follows the pools shown recently, not every pool ever shown.
    pub fn window(secs: u64) -> Timeline {
        Timeline {
            keep_ns: Some(secs.saturating_mul(SEC)),
            ..Timeline::default()
        }
    }

    /// Model time of the last sample (None before the first).
    pub fn last_ns(&self) -> Option<u64> {
        self.last_ns
    }

    /// Whether a sample is due at model time `now_ns` (one per second).
    pub fn due(&self, now_ns: u64) -> bool {
        self.next_ns.is_none_or(|next| now_ns >= next)
    }

    /// Model time of the next sample (None before the first).
    pub fn next_ns(&self) -> Option<u64> {
        self.next_ns
    }

    /// Records the picture at `now_ns`: the pools shown and the findings present.
    pub fn sample(&mut self, now_ns: u64, pools: &[PoolStats], findings: &[Finding]) {
        if self.last_ns.is_some_and(|last| now_ns <= last) {
            return;
        }
        for p in pools {
            let key = p.key();
            let i = *self.index.entry(key).or_insert_with(|| {
                self.pools.push(PoolSeries {
                    key,
                    samples: Vec::new(),
                    last_total: None,
                });
                self.pools.len() - 1
            });
            let series = &mut self.pools[i];
            // A pool seen for the first time: its failures so far happened before this sample.
            let failures = p
                .eaddrnotavail
                .saturating_sub(series.last_total.unwrap_or(0));
            series.last_total = Some(p.eaddrnotavail);
            if series.samples.len() == MAX_SAMPLES {
                series.samples.remove(0);
            }
            series.samples.push(PoolSample {
                t_ns: now_ns,
                states: p.states_in_capacity,
                in_use: p.in_use,
                capacity: p.capacity,
                failures,
            });
        }
        for span in self.spans.iter_mut() {
            span.open = false;
        }
        for f in findings {
            let key = FindingKey::of(f);
            match self.spans.iter_mut().rev().find(|s| s.key == key) {
                // Present at the previous sample too: the same span goes on.
                Some(s) if s.last_ns == self.last_ns.unwrap_or(0) => {
                    s.last_ns = now_ns;
                    s.open = true;
                    s.title.clone_from(&f.title);
                    if f.severity > s.severity {
                        s.severity = f.severity;
                        s.severe_since_ns = now_ns;
                    }
                }
                _ => self.spans.push(FindingSpan {
                    key,
                    title: f.title.clone(),
                    severity: f.severity,
                    severe_since_ns: now_ns,
                    first_ns: now_ns,
                    last_ns: now_ns,
                    open: true,
                }),
            }
        }
        self.last_ns = Some(now_ns);
        self.next_ns = Some(now_ns - now_ns % SEC + SEC);
        if let Some(keep) = self.keep_ns {
            self.forget_before(now_ns.saturating_sub(keep));
        }
    }

    /// Drops samples and ended spans older than `t_ns`, and the pools left without a sample.
    fn forget_before(&mut self, t_ns: u64) {
        let mut gone = false;
        for p in &mut self.pools {
            let old = p.samples.partition_point(|s| s.t_ns < t_ns);
            p.samples.drain(..old);
            gone |= p.samples.is_empty();
        }
        if gone {
            self.pools.retain(|p| !p.samples.is_empty());
            self.index = (self.pools.iter().enumerate())
                .map(|(i, p)| (p.key, i))
                .collect();
        }
        self.spans.retain(|s| s.open || s.last_ns >= t_ns);
    }

    pub fn pools(&self) -> &[PoolSeries] {
        &self.pools
    }

    pub fn pool(&self, key: &PoolKey) -> Option<&PoolSeries> {
        self.index.get(key).map(|&i| &self.pools[i])
    }

    /// Every span, in the order they began.
    pub fn spans(&self) -> &[FindingSpan] {
        &self.spans
    }
}

#[cfg(test)]
mod tests;
