//! How hard `connect()` works to find a source port toward one destination: the share of new
//! connections whose port has the parity the kernel scans second, and `connect()` latency from
//! the kernel's per-destination aggregate (`latency.rs`). docs/early-warning.md says what the
//! figures mean and where the kernel facts come from.
//!
//! `__inet_hash_connect` (net/ipv4/inet_hashtables.c) first tries ports of the parity of the
//! range's low end ("In first pass we try ports of @low parity"), stepping by 2, and only then
//! the other parity: while one port of the first parity is free toward the destination, a new
//! connection gets it. New connections on the second parity mean the first half is full, and
//! each of them walked past every port of it.

use serde::Serialize;

/// A port parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Parity {
    Even,
    Odd,
}

impl Parity {
    /// The parity `__inet_hash_connect` scans second for a range starting at `low`.
    pub fn second_for(low: u16) -> Parity {
        if low & 1 == 0 {
            Parity::Odd
        } else {
            Parity::Even
        }
    }

    pub fn of(port: u16) -> Parity {
        if port & 1 == 0 {
            Parity::Even
        } else {
            Parity::Odd
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Parity::Even => "even",
            Parity::Odd => "odd",
        }
    }
}

/// New connections the share is taken over: the newest complete seconds until this many
/// (or the whole rate window).
pub const PARITY_SAMPLE: u32 = 20;

/// `connect()`'s port search in one pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortSearch {
    /// Ports `connect()`'s own search chose in the newest complete seconds, back until
    /// [`PARITY_SAMPLE`] or the rate window (sockets that had no port before:
    /// bind-before-connect sockets are not counted).
    pub chosen: u32,
    /// The seconds those cover.
    pub window_s: u64,
    /// The parity the kernel scans second: the opposite of the range's low end (odd for the
    /// default range, which starts at 32768).
    pub second_parity: Parity,
    /// Of `chosen`, the ports of `second_parity`: when each was chosen, no port of the first
    /// parity was free toward the destination.
    pub on_second_parity: u32,
    /// `on_second_parity / chosen`; `None` when nothing was chosen.
    pub second_parity_share: Option<f64>,
    /// `connect()` latency toward the destination, when the kernel aggregate measured it.
    pub latency: Option<super::ConnectLatency>,
}

impl PortSearch {
    /// From the counts by parity (`[even, odd]`) over `window_s`, and the range's low end.
    pub fn from_counts(chosen: [u32; 2], window_s: u64, low: u16) -> PortSearch {
        let second = Parity::second_for(low);
        let total = chosen[0] + chosen[1];
        let on_second = match second {
            Parity::Even => chosen[0],
            Parity::Odd => chosen[1],
        };
        PortSearch {
            chosen: total,
            window_s,
            second_parity: second,
            on_second_parity: on_second,
            second_parity_share: (total > 0).then(|| f64::from(on_second) / f64::from(total)),
            latency: None,
        }
    }
}
