//! Bounded memory: caps, eviction preferences, visible counts; and robustness under arbitrary
//! event soup (nothing panics, every aggregate stays consistent).

use crate::{
    event::{CallKind, TwOp},
    model::{Model, ModelConfig, testutil::*},
};

fn capped(max_sockets: usize) -> Model {
    Model::new(ModelConfig {
        max_sockets,
        ..ModelConfig::default()
    })
}

#[test]
fn socket_cap_evicts_time_wait_first_and_counts_it() {
    // 41: a TIME_WAIT entry briefly coexists with the socket it replaces.
    let mut m = capped(41);
    let mut s = Seq::new();
    for i in 0..20u16 {
        s.connect(
            task(1, "a"),
            0x100 + u64::from(i),
            "10.0.0.1",
            40000 + i,
            "10.0.0.9:80",
        );
    }
    for i in 20..40u16 {
        let l = format!("10.0.0.1:{}", 40000 + i);
        let sk = 0x100 + u64::from(i);
        s.connect(task(1, "a"), sk, "10.0.0.1", 40000 + i, "10.0.0.9:80")
            .active_close(task(1, "a"), sk, sk + 0x1000, &l, "10.0.0.9:80");
    }
    s.run(&mut m);
    assert_eq!(m.counters().sockets_tracked, 40);
    assert_eq!(m.counters().sockets_evicted, 0);
    for i in 40..51u16 {
        s.connect(
            task(1, "a"),
            0x100 + u64::from(i),
            "10.0.0.1",
            40000 + i,
            "10.0.0.9:80",
        );
    }
    s.run(&mut m);
    let c = m.counters();
    assert_eq!(c.sockets_tracked, 41);
    assert_eq!(c.sockets_evicted, 10);
    assert_eq!(
        c.sockets_evicted_by_state.get(FinWait2),
        10,
        "timewait entries go first"
    );
    assert_eq!(m.totals().all.get(Established), 31);
    assert_consistent(&m);
}

#[test]
fn process_and_pool_caps_degrade_to_unknown() {
    let mut m = Model::new(ModelConfig {
        max_pools: 2,
        max_processes: 2,
        ..ModelConfig::default()
    });
    let mut s = Seq::new();
    for i in 0..4u16 {
        let dst = format!("10.0.0.9:{}", 80 + i);
        s.connect(
            task(10 + u32::from(i), "a"),
            0x100 + u64::from(i),
            "10.0.0.1",
            40000,
            &dst,
        );
    }
    s.run(&mut m);
    let c = m.counters();
    assert_eq!(c.pools_tracked, 2);
    assert_eq!(c.processes_tracked, 2);
    assert!(c.odd.untracked >= 2, "{:?}", c.odd);
    assert_eq!(
        m.totals().all.get(Established),
        4,
        "still counted in totals"
    );
    // Once their sockets are gone, idle pools and processes make room (and are counted).
    s.reset(0x100, "10.0.0.1:40000", "10.0.0.9:80")
        .reset(0x101, "10.0.0.1:40000", "10.0.0.9:81")
        .connect(task(20, "b"), 0x200, "10.0.0.1", 40000, "10.0.0.9:99")
        .run(&mut m);
    let c = m.counters();
    assert!(c.pools_evicted >= 1 && c.processes_evicted >= 1, "{c:?}");
    assert_eq!(
        m.processes(10)
            .iter()
            .filter(|p| p.process.pid == 20)
            .count(),
        1
    );
    assert_consistent(&m);
}

/// Deterministic pseudo-random event soup over a small space of sockets and tuples, so that
/// every kind of collision happens: nothing panics and the books always balance.
#[test]
fn arbitrary_event_soup_keeps_books_balanced() {
    let mut m = Model::new(ModelConfig {
        max_sockets: 64,
        max_pools: 6,
        max_processes: 5,
        max_failure_keys: 8,
        failure_log_len: 4,
        correction_log_len: 4,
    });
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let states = crate::event::TcpState::ALL;
    let mut s = Seq::new();
    for round in 0..40 {
        for _ in 0..500 {
            let sk = 0x100 + next(96);
            let local = format!(
                "10.0.0.{}:{}",
                1 + next(2),
                [0, 40000, 40001, 40002, 8080][next(5) as usize]
            );
            let remote = format!("10.0.0.{}:{}", 8 + next(2), [0, 80, 8080][next(3) as usize]);
            let t = task(1 + next(9) as u32, ["a", "b", "c"][next(3) as usize]);
            match next(8) {
                0..=3 => {
                    let (o, n) = (states[next(13) as usize], states[next(13) as usize]);
                    s.state(t, sk, &local, &remote, o, n);
                }
                4 => {
                    let op = [TwOp::Start, TwOp::Cancel, TwOp::Expire][next(3) as usize];
                    let rem = next(3) as i32 - 1;
                    s.tw(
                        0x900 + next(32),
                        &local,
                        &remote,
                        op,
                        [TimeWait, FinWait2][next(2) as usize],
                        rem,
                    );
                }
                5 => {
                    s.bind_ok(t, sk, &local, [0, 40001, 8080][next(3) as usize]);
                }
                6 => {
                    let call = [CallKind::Connect, CallKind::Bind][next(2) as usize];
                    s.call_err(
                        t,
                        call,
                        Some(sk),
                        &remote,
                        [libc::EADDRNOTAVAIL, libc::EADDRINUSE, libc::ECONNREFUSED]
                            [next(3) as usize],
                    );
                }
                _ => {
                    s.advance(next(2) * 50 * MS);
                }
            }
        }
        s.run(&mut m);
        m.tick(s.now());
        if round % 10 == 9 {
            m.set_sysctls(
                NETNS,
                sysctls(
                    (40000, 40000 + next(4) as u16),
                    &[(40001, 40001)],
                    next(3) as u8,
                ),
            );
            let snap = snapshot(
                s.now(),
                None,
                vec![
                    snap_sock("10.0.0.1:40000", "10.0.0.8:80", Established, Some((3, "a"))),
                    snap_sock("0.0.0.0:8080", "0.0.0.0:0", Listen, None),
                    snap_sock("10.0.0.2:40002", "10.0.0.9:8080", TimeWait, None),
                ],
            );
            m.reconcile(&snap, s.now());
        }
        assert_consistent(&m);
        let t = m.tables(s.now());
        assert!(t.counters.sockets_tracked <= 64);
        assert!(t.failures.recent.len() <= 4);
        assert!(t.failures.groups.len() <= 8);
    }
    let c = m.counters();
    assert!(
        c.sockets_evicted > 0 && c.odd.total() > 0,
        "the soup exercised the limits: {c:?}"
    );
}

#[test]
fn a_tracked_socket_costs_under_160_bytes() {
    let mut m = Model::default();
    let mut s = Seq::new();
    let n = 100_000u64;
    for i in 0..n {
        let port = 32768 + (i % 28000) as u16;
        let dst = format!("10.1.{}.{}:443", (i / 28000) / 250, (i / 28000) % 250 + 1);
        s.connect(task(1, "a"), 0x1_0000 + i * 64, "10.0.0.1", port, &dst);
        if i % 10_000 == 0 {
            s.run(&mut m);
        }
    }
    s.run(&mut m);
    let c = m.counters();
    assert_eq!(c.sockets_tracked, n);
    let per = c.socket_table_bytes as f64 / n as f64;
    assert!(per < 160.0, "{per:.1} bytes per socket");
}
