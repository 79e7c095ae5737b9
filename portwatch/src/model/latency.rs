//! `connect()` latency per destination, from the kernel's aggregate (`CONNECT_LATENCY`, read
//! once a second into an [`Input::Latency`](super::Input) reading of cumulative counts). The
//! model keeps the differences of the last [`LATENCY_WINDOW_S`] seconds per (namespace,
//! destination), and as the destination's own baseline the median of its fastest window so
//! far. docs/early-warning.md says what the figures mean.

use std::{collections::VecDeque, net::SocketAddr};

use portwatch_common::latency::{BUCKETS, lower_ns};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Seconds of readings a window adds up (the pools' rate window).
pub const LATENCY_WINDOW_S: u64 = super::RATE_WINDOW_S;
/// Calls a window needs before its median counts (as a baseline or as a figure).
pub const LATENCY_MIN_CALLS: u64 = 20;
/// Destinations kept (the kernel map holds 1,024).
const MAX_DESTS: usize = 4096;

/// Cumulative `connect()` counts toward one destination, summed over CPUs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyCounts {
    pub netns: u32,
    pub dst: SocketAddr,
    pub calls: u64,
    pub sum_ns: u64,
    /// Calls per bucket of `portwatch_common::latency` (as many as it has).
    pub buckets: Vec<u64>,
}

/// One reading of the whole aggregate, at the time it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyReading {
    pub taken_at_ns: u64,
    pub dests: Vec<LatencyCounts>,
}

/// A destination's `connect()` latency as views and explain read it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnectLatency {
    /// `connect()` calls toward the destination in the window (every result).
    pub calls: u64,
    /// Seconds the window covers.
    pub window_s: f64,
    pub mean_us: f64,
    /// Quantiles, interpolated inside half-octave buckets (±20 %).
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    /// The median of the fastest window of at least [`LATENCY_MIN_CALLS`] calls seen so far.
    pub baseline_p50_us: Option<f64>,
    /// `p50_us / baseline_p50_us`, when both rest on enough calls.
    pub rise: Option<f64>,
}

#[derive(Clone, Debug)]
struct Hist {
    calls: u64,
    sum_ns: u64,
    buckets: [u64; BUCKETS],
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            calls: 0,
            sum_ns: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl Hist {
    fn add(&mut self, o: &Hist) {
        self.calls += o.calls;
        self.sum_ns += o.sum_ns;
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
    }

    /// The `q` quantile in ns, linear inside its bucket.
    fn quantile_ns(&self, q: f64) -> f64 {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let want = q * total as f64;
        let mut seen = 0.0;
        for (i, &c) in self.buckets.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let next = seen + c as f64;
            if next >= want {
                let lo = lower_ns(i) as f64;
                if i + 1 >= BUCKETS {
                    return lo;
                }
                let hi = lower_ns(i + 1) as f64;
                return lo + (hi - lo) * ((want - seen) / c as f64).clamp(0.0, 1.0);
            }
            seen = next;
        }
        lower_ns(BUCKETS - 1) as f64
    }
}

#[derive(Clone, Debug, Default)]
struct Dest {
    last: Option<LatencyCounts>,
    last_at_ns: u64,
    /// Differences between consecutive readings: (taken at, what they added).
    window: VecDeque<(u64, Hist)>,
    baseline_p50_ns: Option<f64>,
}

/// Every destination's latency window.
#[derive(Clone, Debug, Default)]
pub(crate) struct LatencyBook {
    dests: FxHashMap<(u32, SocketAddr), Dest>,
}

impl LatencyBook {
    pub fn feed(&mut self, r: &LatencyReading) {
        let horizon = r.taken_at_ns.saturating_sub(LATENCY_WINDOW_S * super::NS);
        for c in &r.dests {
            let key = (c.netns, c.dst);
            if !self.dests.contains_key(&key) && self.dests.len() >= MAX_DESTS {
                continue;
            }
            let d = self.dests.entry(key).or_default();
            let delta = match &d.last {
                Some(prev) if prev.calls <= c.calls => diff(c, prev),
                // New, or counts that went down (the kernel entry was evicted and made
                // again): everything it holds came since the programs were loaded or since
                // the last reading.
                _ => diff(c, &zero(c)),
            };
            d.last = Some(c.clone());
            d.last_at_ns = r.taken_at_ns;
            if delta.calls > 0 {
                d.window.push_back((r.taken_at_ns, delta));
            }
            while d.window.front().is_some_and(|(at, _)| *at <= horizon) {
                d.window.pop_front();
            }
            let sum = d.sum();
            if sum.calls >= LATENCY_MIN_CALLS {
                let p50 = sum.quantile_ns(0.5);
                d.baseline_p50_ns = Some(d.baseline_p50_ns.map_or(p50, |b| b.min(p50)));
            }
        }
        // Destinations the kernel no longer has, and quiet for a whole window: gone.
        self.dests
            .retain(|_, d| d.last_at_ns == r.taken_at_ns || !d.window.is_empty());
    }

    /// The latency toward `dst` from namespace `netns`, over the window before `now_ns`.
    pub fn get(&self, netns: u32, dst: SocketAddr, now_ns: u64) -> Option<ConnectLatency> {
        let d = self.dests.get(&(netns, dst))?;
        let horizon = now_ns.saturating_sub(LATENCY_WINDOW_S * super::NS);
        let mut sum = Hist::default();
        let mut first = None;
        for (at, h) in d.window.iter().filter(|(at, _)| *at > horizon) {
            first.get_or_insert(*at);
            sum.add(h);
        }
        if sum.calls == 0 {
            return None;
        }
        let p50 = sum.quantile_ns(0.5);
        let enough = sum.calls >= LATENCY_MIN_CALLS;
        let base = d.baseline_p50_ns.filter(|b| *b > 0.0);
        Some(ConnectLatency {
            calls: sum.calls,
            window_s: (LATENCY_WINDOW_S as f64)
                .min(now_ns.saturating_sub(first.unwrap_or(now_ns)) as f64 / 1e9 + 1.0),
            mean_us: sum.sum_ns as f64 / sum.calls as f64 / 1e3,
            p50_us: p50 / 1e3,
            p90_us: sum.quantile_ns(0.9) / 1e3,
            p99_us: sum.quantile_ns(0.99) / 1e3,
            baseline_p50_us: base.map(|b| b / 1e3),
            rise: base.filter(|_| enough).map(|b| p50 / b),
        })
    }
}

impl Dest {
    fn sum(&self) -> Hist {
        let mut s = Hist::default();
        for (_, h) in &self.window {
            s.add(h);
        }
        s
    }
}

fn zero(c: &LatencyCounts) -> LatencyCounts {
    LatencyCounts {
        calls: 0,
        sum_ns: 0,
        buckets: Vec::new(),
        ..c.clone()
    }
}

/// `now − before`, bucket by bucket (u32 kernel buckets wrap: the difference is taken
/// modulo 2^32 per bucket).
fn diff(now: &LatencyCounts, before: &LatencyCounts) -> Hist {
    let mut h = Hist {
        calls: now.calls.saturating_sub(before.calls),
        sum_ns: now.sum_ns.saturating_sub(before.sum_ns),
        buckets: [0; BUCKETS],
    };
    for (i, b) in h.buckets.iter_mut().enumerate() {
        let a = now.buckets.get(i).copied().unwrap_or(0);
        let p = before.buckets.get(i).copied().unwrap_or(0);
        *b = if a >= p {
            a - p
        } else {
            (a as u32).wrapping_sub(p as u32) as u64
        };
    }
    h
}
