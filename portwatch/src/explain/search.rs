//! `connect()`'s port search as an early warning: when most new connections of a pool get a
//! port of the parity the kernel scans second, the first parity is full toward the
//! destination and each search walks past all of it; when `connect()` also takes several
//! times longer than the destination's own baseline, the walk is what it pays for. Either
//! raises the pool's severity to at least warning, before any EADDRNOTAVAIL, and the finding
//! says what was measured. Thresholds in `thresholds.rs`; docs/early-warning.md.

use super::{
    thresholds::*,
    words::{micros, n, pct},
};
use crate::model::{ConnectLatency, PoolStats};

/// What the port search of a pool shows, when it is straining.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Strain {
    /// The first parity is full for most new connections.
    pub parity: bool,
    /// `connect()` takes several times its baseline.
    pub slower: bool,
}

/// The decision: `None` when the search looks healthy.
pub(super) fn strain(s: &PoolStats) -> Option<Strain> {
    let ps = &s.port_search;
    let share = ps
        .second_parity_share
        .filter(|_| ps.chosen >= crate::model::PARITY_SAMPLE)
        .unwrap_or(0.0);
    // The pool must show it too: a second parity with the pool nearly empty by the model's
    // count means ports the model does not see (or a socket's own IP_LOCAL_PORT_RANGE,
    // which scans both parities at once).
    let parity = share >= SEARCH_SECOND_PARITY_SHARE && s.effective_utilisation >= SEARCH_MIN_UTIL;
    // A slower connect() alone may be the network (a blocking connect waits for the
    // handshake): it counts when the ports say the pool is filling too.
    let slower = ps.latency.as_ref().is_some_and(slow)
        && (share >= SEARCH_SECOND_PARITY_SOME || s.effective_utilisation >= INFO_UTIL);
    (parity || slower).then_some(Strain { parity, slower })
}

fn slow(l: &ConnectLatency) -> bool {
    let (Some(rise), Some(base)) = (l.rise, l.baseline_p50_us) else {
        return false;
    };
    rise >= LATENCY_RISE && l.p50_us - base >= LATENCY_RISE_MIN_US
}

/// The evidence, as a clause the finding's sentence ends with.
pub(super) fn words(st: &Strain, s: &PoolStats) -> String {
    let ps = &s.port_search;
    let mut parts = Vec::new();
    if ps.chosen > 0 {
        let first = match ps.second_parity {
            crate::model::Parity::Odd => "even",
            crate::model::Parity::Even => "odd",
        };
        let full = if st.parity {
            format!(
                ": the kernel tries {first} ports first, so the {first} half toward {} is full",
                s.dst
            )
        } else {
            String::new()
        };
        parts.push(format!(
            "{} of the {} newest connections (last {} s) got an {} port{full}",
            pct(ps.second_parity_share.unwrap_or(0.0)),
            n(ps.chosen),
            ps.window_s.max(1),
            ps.second_parity.words(),
        ));
    }
    if let Some(l) = &ps.latency {
        let base = l
            .baseline_p50_us
            .map(|b| {
                format!(
                    ", {:.1}× its {} baseline",
                    l.p50_us / b.max(f64::MIN_POSITIVE),
                    micros(b)
                )
            })
            .unwrap_or_default();
        let what = if st.slower {
            "the port search walks further"
        } else {
            "measured"
        };
        parts.push(format!(
            "connect() takes {} (median of {}{base}; {what})",
            micros(l.p50_us),
            super::words::count(l.calls),
        ));
    }
    format!("port search: {}", parts.join("; "))
}
