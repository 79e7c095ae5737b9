//! connect()'s port search: the share of new ports on the parity the kernel scans second, and
//! the latency figures from the kernel aggregate's readings.

use portwatch_common::latency::{BUCKETS, bucket, lower_ns};

use crate::model::{Input, LatencyCounts, LatencyReading, Model, Parity, PoolKey, testutil::*};

const DST: &str = "127.0.0.1:80";

fn key() -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: "127.0.0.1".parse().unwrap(),
        dst: addr(DST),
    }
}

/// Connections that get `ports`, in one second, then the clock one second on.
fn connects(m: &mut Model, s: &mut Seq, ports: &[u16]) {
    for &p in ports {
        s.connect(task(1, "a"), 0x1000 + u64::from(p), "127.0.0.1", p, DST);
    }
    s.t = s.now() / SEC * SEC + SEC;
    s.run(m);
    m.tick(s.now());
}

#[test]
fn second_parity_share_counts_ports_chosen_by_connect() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40000, 40002, 40004, 40006]);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.port_search.chosen, 4);
    assert_eq!(p.port_search.second_parity, Parity::Odd);
    assert_eq!(p.port_search.second_parity_share, Some(0.0));
    // The even ports are gone: the next ones are odd, one of them from a non-blocking
    // connect whose port only the syscall's EINPROGRESS tells.
    connects(&mut m, &mut s, &[40008, 40001, 40003]);
    s.connect_in_progress(task(1, "a"), 0x9999, "127.0.0.1", 40005, DST);
    s.t = s.now() / SEC * SEC + SEC;
    s.run(&mut m);
    m.tick(s.now());
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.port_search.chosen, 8);
    assert_eq!(p.port_search.on_second_parity, 3);
    assert_eq!(p.port_search.second_parity_share, Some(3.0 / 8.0));
    assert!(p.port_search.latency.is_none(), "nothing measured it");
    assert_consistent(&m);
}

#[test]
fn a_range_starting_odd_is_scanned_odd_first() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40001, 40010), &[], 0));
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40001, 40003, 40004]);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.port_search.second_parity, Parity::Even);
    assert_eq!(p.port_search.on_second_parity, 1);
}

#[test]
fn ports_chosen_before_the_window_do_not_count() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40999), &[], 0));
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40001, 40003]);
    s.t += 20 * SEC;
    m.tick(s.now());
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.port_search.chosen, 0);
    assert_eq!(p.port_search.second_parity_share, None);
}

#[test]
fn buckets_are_half_octaves() {
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(511), 0);
    for i in 1..BUCKETS {
        assert_eq!(
            bucket(lower_ns(i)),
            i,
            "bucket {i} starts at {}",
            lower_ns(i)
        );
        assert_eq!(bucket(lower_ns(i) - 1), i - 1);
    }
    assert_eq!(lower_ns(1), 512);
    assert_eq!(lower_ns(2), 768);
    assert_eq!(lower_ns(3), 1024);
    assert_eq!(bucket(u64::MAX), BUCKETS - 1);
}

/// Cumulative counts toward [`DST`]: `calls` calls of `ns` each on top of `prev`.
fn more(prev: Option<&LatencyCounts>, calls: u64, ns: u64) -> LatencyCounts {
    let mut c = prev.cloned().unwrap_or(LatencyCounts {
        netns: NETNS,
        dst: addr(DST),
        calls: 0,
        sum_ns: 0,
        buckets: vec![0; BUCKETS],
    });
    c.calls += calls;
    c.sum_ns += calls * ns;
    c.buckets[bucket(ns)] += calls;
    c
}

fn reading(at: u64, c: &LatencyCounts) -> Input {
    Input::Latency(LatencyReading {
        taken_at_ns: at,
        dests: vec![c.clone()],
    })
}

#[test]
fn latency_rise_is_measured_against_the_fastest_window() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40999), &[], 0));
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40000]);
    let t0 = s.now();
    let mut c = more(None, 50, 20_000);
    m.feed(&reading(t0, &c));
    for k in 1..5 {
        c = more(Some(&c), 50, 20_000);
        m.feed(&reading(t0 + k * SEC, &c));
    }
    let l = m
        .pool(&key(), t0 + 4 * SEC)
        .unwrap()
        .port_search
        .latency
        .unwrap();
    assert_eq!(l.calls, 250);
    assert!((l.mean_us - 20.0).abs() < 1e-9, "{l:?}");
    // Half-octave buckets: the median lies in 20 µs's bucket, [16.4, 24.6) µs.
    assert!((16.3..24.6).contains(&l.p50_us), "{l:?}");
    let base = l.baseline_p50_us.unwrap();
    assert!((l.rise.unwrap() - 1.0).abs() < 1e-9);

    // The search walks further: 100 µs each, for more than a window.
    for k in 5..17 {
        c = more(Some(&c), 50, 100_000);
        m.feed(&reading(t0 + k * SEC, &c));
    }
    let l = m
        .pool(&key(), t0 + 16 * SEC)
        .unwrap()
        .port_search
        .latency
        .unwrap();
    assert_eq!(l.calls, 500, "ten seconds of readings");
    assert_eq!(
        l.baseline_p50_us,
        Some(base),
        "the baseline is the fastest window"
    );
    let rise = l.rise.unwrap();
    assert!(
        (3.3..6.2).contains(&rise),
        "about 5× slower: {rise} ({l:?})"
    );
}

#[test]
fn latency_survives_an_evicted_kernel_entry_and_needs_enough_calls() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40999), &[], 0));
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40000]);
    let t0 = s.now();
    let c = more(None, 500, 20_000);
    m.feed(&reading(t0, &c));
    // The kernel's LRU map dropped the entry and made it again: counts restart.
    let c = more(None, 5, 40_000);
    m.feed(&reading(t0 + SEC, &c));
    let l = m
        .pool(&key(), t0 + SEC)
        .unwrap()
        .port_search
        .latency
        .unwrap();
    assert_eq!(l.calls, 505);
    // Readings that stop: the window empties, the figure goes.
    m.feed(&Input::Latency(LatencyReading {
        taken_at_ns: t0 + 30 * SEC,
        dests: vec![],
    }));
    assert!(
        m.pool(&key(), t0 + 30 * SEC)
            .unwrap()
            .port_search
            .latency
            .is_none()
    );

    // Too few calls for a rise.
    let mut m = Model::default();
    let mut s = Seq::new();
    connects(&mut m, &mut s, &[40000]);
    m.feed(&reading(t0, &more(None, 5, 20_000)));
    let l = m.pool(&key(), t0).unwrap().port_search.latency.unwrap();
    assert_eq!(l.rise, None);
    assert_eq!(l.baseline_p50_us, None);
}
