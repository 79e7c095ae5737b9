//! What one refresh costs (not a timed test: `--ignored` prints figures). The model is fed the
//! benchmark's synthetic churn (`record::churn`, 10k connections/s) up to its 300,000th
//! connection (every socket of the last 60 s still tracked), then refreshed as `report`/`serve` do
//! (`Report::build`, the report's limits) and as the TUI does (50 rows of each table).
//!
//! `cargo test --release -p portwatch --lib refresh_cost -- --ignored --nocapture`

use std::{hint::black_box, time::Instant};

use crate::{
    model::Model,
    record::churn::{Churn, Config},
    report::{Context, Limits, LostEvents, Report, Source},
};

fn fed(clients: u32) -> (Model, u64) {
    let cfg = Config {
        rate: 10_000,
        clients,
        ..Config::new(300_000)
    };
    // Up to the last connection: every socket of the last 60 s still holds its port.
    let end = cfg.start_ns + cfg.connections as u64 * 1_000_000_000 / cfg.rate;
    let mut m = Model::default();
    let (mut next_tick, mut last) = (0, 0);
    for e in Churn::new(cfg).take_while(|e| e.ts_ns <= end) {
        m.apply(&e);
        last = e.ts_ns;
        if e.ts_ns >= next_tick {
            m.tick(e.ts_ns);
            next_tick = e.ts_ns + 250_000_000;
        }
    }
    m.tick(last);
    (m, last)
}

/// The fastest run of `f` in milliseconds, over `runs` (on a busy machine the fastest is the
/// closest to what it costs).
fn ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[0]
}

#[test]
#[ignore = "prints figures; run with --release --ignored --nocapture"]
fn refresh_cost() {
    for clients in [4, 400] {
        let (m, now) = fed(clients);
        let ctx = Context {
            host: "bench".into(),
            kernel: "6.18.0".into(),
            source: Source::Live,
            recording: None,
            window_start_ns: 0,
            window_end_ns: now,
            generated_at: None,
        };
        let report = ms(51, || {
            black_box(Report::build(
                &m,
                ctx.clone(),
                LostEvents::default(),
                Limits::default(),
            ));
        });
        let tui = ms(51, || {
            black_box(crate::snapshot::Snapshot::build(
                &m,
                now,
                &Limits::screen(50),
                LostEvents::default(),
                Vec::new(),
            ));
        });
        let c = m.counters();
        eprintln!(
            "refresh_cost clients={clients}: {} sockets, {} pools, {} processes: \
             report refresh {report:.2} ms, TUI refresh {tui:.2} ms (fastest of 51)",
            c.sockets_tracked,
            c.pools_tracked,
            m.processes(usize::MAX).len(),
        );
    }
}
