//! The port-search early warning: new connections on the parity the kernel scans second, and
//! `connect()` slower than its baseline, raise a filling pool to a warning and say what was
//! measured; neither fires on a pool with room.

use portwatch_common::latency::{BUCKETS, bucket};

use super::{assert_sound, one, sim::Sim};
use crate::{
    explain::{Cause, Severity, explain},
    model::{Input, LatencyCounts, LatencyReading, testutil::*},
};

const SRC: &str = "10.0.0.5";
const API: &str = "10.1.2.3:443";

fn java() -> crate::event::Task {
    task(300, "java")
}

/// 600 connections held, quiet for 12 s, then 30 more in one second, looked at 3 s later
/// (in-use ports no longer growing: no exhaustion time).
fn filling(lo: u16, hi: u16) -> Sim {
    let mut sim = Sim::range(lo, hi, 0);
    sim.open(java(), SRC, API, 600, 6.0)
        .advance(12.0)
        .open(java(), SRC, API, 30, 1.0)
        .advance(3.0);
    sim
}

#[test]
fn odd_ports_warn_before_the_pool_is_seventy_percent_full() {
    let sim = filling(40000, 40999);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::Concurrency);
    assert_eq!(f.eta_s, None, "{f:#?}");
    assert_eq!(f.in_use, Some(630));
    // 63 %: by its fill alone an info finding; the even half being full makes it a warning.
    assert_eq!(f.severity, Severity::Warning, "{f:#?}");
    for part in [
        "port search: 100% of the 30 newest connections (last ",
        " got an odd port: the kernel tries even ports first, so the even half toward \
         10.1.2.3:443 is full",
    ] {
        assert!(f.evidence.contains(part), "{part}: {}", f.evidence);
    }
}

#[test]
fn the_same_traffic_with_room_warns_of_nothing() {
    let sim = filling(32768, 60999);
    let fs = explain(&sim.m, sim.now());
    assert!(fs.is_empty(), "{fs:#?}");
    let p = &sim.m.tables(sim.now()).pools[0];
    assert_eq!(p.port_search.second_parity_share, Some(0.0));
}

/// Readings of `calls` connects per second toward API: `fast` seconds at 10 µs, then `slow`
/// seconds at 40 µs, one reading a second ending at `end`.
fn latency(sim: &mut Sim, fast: u64, slow: u64, calls: u64) {
    let mut c = LatencyCounts {
        netns: NETNS,
        dst: addr(API),
        calls: 0,
        sum_ns: 0,
        buckets: vec![0; BUCKETS],
    };
    let end = sim.now();
    let n = fast + slow;
    for k in 0..n {
        let ns = if k < fast { 10_000 } else { 40_000 };
        c.calls += calls;
        c.sum_ns += calls * ns;
        c.buckets[bucket(ns)] += calls;
        sim.m.feed(&Input::Latency(LatencyReading {
            taken_at_ns: end - (n - 1 - k) * SEC,
            dests: vec![c.clone()],
        }));
    }
}

#[test]
fn a_slower_connect_warns_when_the_pool_fills_too() {
    // 520 held, nothing new for 12 s (no parity figure), connect() 4× slower than before.
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(java(), SRC, API, 520, 6.0).advance(12.0);
    latency(&mut sim, 5, 10, 50);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::Concurrency);
    assert_eq!(f.severity, Severity::Warning, "{f:#?}");
    assert!(
        f.evidence.contains("the port search walks further")
            && f.evidence.contains("connect() takes"),
        "{}",
        f.evidence
    );

    // The same slowdown toward a pool with room is the network's, not the ports': nothing.
    let mut sim = Sim::range(40000, 40999, 0);
    sim.open(java(), SRC, API, 100, 6.0).advance(12.0);
    latency(&mut sim, 5, 10, 50);
    let fs = explain(&sim.m, sim.now());
    assert!(fs.is_empty(), "{fs:#?}");
}
