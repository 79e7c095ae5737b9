//! NAT pools: what the conntrack readings say about the source ports a namespace's
//! masquerade/SNAT rules hand out, per (namespace, protocol, translated source IP,
//! destination IP:port), and who is behind them.
//!
//! Each [`ConntrackReading`] enters as `Input::Conntrack` through [`super::Model::feed`]; the book keeps
//! the last reading per namespace, a minute of statistics samples (for drop rates), the last
//! dump, and each pool's in-use history across dumps (for its growth rate). Views read
//! [`super::Model::nat_pools`] and [`super::Model::conntrack`]. Pure: time comes from the
//! readings. Why a conntrack entry holds a port, and until when: docs/nat.md.

mod capacity;
mod pools;
pub mod reading;

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;

pub use capacity::{Capacity, CapacitySource, capacity_for};
pub use pools::{ConntrackStats, NatClient, NatPoolKey, NatPoolStats, NatRates};
pub use reading::{ConntrackReading, CtState, CtStats, NatDump, NatGroup, NatKind, NatRule};

/// Seconds of statistics samples and pool history kept.
pub const NAT_HISTORY_S: u64 = 60;
/// Seconds over which drop and growth rates are averaged.
pub const NAT_RATE_WINDOW_S: u64 = 10;
const NS: u64 = 1_000_000_000;

/// Everything the model keeps from conntrack.
#[derive(Clone, Debug, Default)]
pub(crate) struct NatBook {
    pub ns: BTreeMap<u32, NatNs>,
}

/// One namespace's conntrack.
#[derive(Clone, Debug, Default)]
pub(crate) struct NatNs {
    /// The last reading, without its dump.
    pub last: ConntrackReading,
    /// Statistics at the first reading, to show growth since.
    pub first: CtStats,
    /// (at, stats) of the last [`NAT_HISTORY_S`] seconds.
    pub samples: VecDeque<(u64, CtStats)>,
    /// The last dump and when it was taken.
    pub dump: Option<(u64, NatDump)>,
    /// In-use ports per pool at each dump of the last [`NAT_HISTORY_S`] seconds.
    pub history: FxHashMap<NatPoolKey, VecDeque<(u64, u32)>>,
}

impl NatBook {
    pub fn feed(&mut self, r: &ConntrackReading) {
        let at = r.taken_at_ns;
        let ns = self.ns.entry(r.netns).or_insert_with(|| NatNs {
            first: r.stats,
            ..Default::default()
        });
        ns.samples.push_back((at, r.stats));
        while ns
            .samples
            .front()
            .is_some_and(|(t, _)| t + NAT_HISTORY_S * NS < at)
        {
            ns.samples.pop_front();
        }
        let mut last = r.clone();
        if let Some(dump) = last.dump.take() {
            for (key, in_use) in pools::in_use_by_pool(r.netns, &dump) {
                let h = ns.history.entry(key).or_default();
                h.push_back((at, in_use));
            }
            for h in ns.history.values_mut() {
                while h.front().is_some_and(|(t, _)| t + NAT_HISTORY_S * NS < at) {
                    h.pop_front();
                }
            }
            ns.history.retain(|_, h| !h.is_empty());
            ns.dump = Some((at, dump));
        }
        ns.last = last;
    }
}

impl NatNs {
    /// Statistics growth over the rate window ending at the last sample, and its length in
    /// seconds (0 with fewer than two samples).
    pub fn recent(&self) -> (CtStats, f64) {
        let Some(&(t1, s1)) = self.samples.back() else {
            return (CtStats::default(), 0.0);
        };
        let from = t1.saturating_sub(NAT_RATE_WINDOW_S * NS);
        let (t0, s0) = self
            .samples
            .iter()
            .find(|(t, _)| *t >= from)
            .copied()
            .unwrap_or((t1, s1));
        (s1.since(&s0), (t1 - t0) as f64 / 1e9)
    }
}

#[cfg(test)]
pub(crate) mod tests;
