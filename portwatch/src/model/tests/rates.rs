//! Rates over the 10 s window, time to exhaustion, per-second history.

use crate::model::{HISTORY_S, Model, PoolKey, RATE_WINDOW_S, testutil::*};

const DST: &str = "127.0.0.1:80";

fn key() -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: "127.0.0.1".parse().unwrap(),
        dst: addr(DST),
    }
}

/// `per_sec` connections per second for `secs` seconds, each closed actively right away
/// (TIME_WAIT), starting at a whole second.
fn churn(m: &mut Model, s: &mut Seq, secs: u64, per_sec: u16, next_port: &mut u16) {
    for _ in 0..secs {
        let start = s.now() / SEC * SEC;
        for _ in 0..per_sec {
            let p = *next_port;
            *next_port += 1;
            let l = format!("127.0.0.1:{p}");
            let sk = 0x1000 + u64::from(p);
            s.connect(task(1, "a"), sk, "127.0.0.1", p, DST)
                .active_close(task(1, "a"), sk, sk + 0x100000, &l, DST);
        }
        s.t = start + SEC;
        s.run(m);
    }
}

#[test]
fn new_and_release_rates_and_time_to_exhaustion() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40999), &[], 0));
    let mut s = Seq::new();
    let mut port = 40000;
    churn(&mut m, &mut s, 20, 10, &mut port);
    m.tick(s.now());
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.rates.window_s, RATE_WINDOW_S);
    assert_eq!(p.rates.new_per_s, 10.0);
    assert_eq!(
        p.rates.released_per_s, 0.0,
        "TIME_WAIT holds every port for 60 s"
    );
    assert_eq!(p.in_use, 200);
    // 800 ports left at a net 10/s.
    assert_eq!(p.time_to_exhaustion_s, Some(80.0));
    assert!(
        p.urgency > p.effective_utilisation,
        "close to exhaustion raises urgency"
    );

    // 60 s after they started, the first TIME_WAITs expire as fast as new ones are made.
    s.t = 1060 * SEC;
    let mut oldest = 40000u16;
    for _ in 0..10 {
        for _ in 0..10 {
            let l = format!("127.0.0.1:{oldest}");
            s.tw_expire(0x1000 + u64::from(oldest) + 0x100000, &l, DST);
            oldest += 1;
        }
        churn(&mut m, &mut s, 1, 10, &mut port);
    }
    m.tick(s.now());
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.rates.released_per_s, 10.0);
    assert_eq!(p.rates.new_per_s, 10.0);
    assert_eq!(p.in_use, 200);
    assert_eq!(p.time_to_exhaustion_s, None, "not growing");
    assert_consistent(&m);
}

#[test]
fn short_runs_use_a_shorter_window() {
    let mut m = Model::default();
    let mut s = Seq::new();
    let mut port = 40000;
    churn(&mut m, &mut s, 2, 3, &mut port);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!(p.rates.window_s, 2);
    assert_eq!(p.rates.new_per_s, 3.0);
    assert_eq!(p.rates.attempts_per_s, 3.0);
}

#[test]
fn history_records_in_use_per_second() {
    let mut m = Model::default();
    let mut s = Seq::new();
    let mut port = 40000;
    churn(&mut m, &mut s, 3, 2, &mut port);
    s.advance(2 * SEC);
    m.tick(s.now());
    let h = m.pool_history(&key()).unwrap();
    assert_eq!(h, vec![2, 4, 6, 6, 6]);
    s.advance(200 * SEC);
    m.tick(s.now());
    let h = m.pool_history(&key()).unwrap();
    assert_eq!(h.len(), HISTORY_S);
    assert!(h.iter().all(|&v| v == 6));
}
