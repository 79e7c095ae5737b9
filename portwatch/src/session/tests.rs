//! Replay equals live by construction: the inputs a live session feeds its model, written by
//! the recorder sink and read back by replay, rebuild a model whose report is the same, field
//! for field (warnings, loss and reconciliation included).

use super::{Recorder, Replay, Sink};
use crate::{
    collect::Counters,
    model::{Input, Model, ModelConfig, Stamped, testutil::*},
    record::{Host, Options, Writer},
    report::{Context, LostEvents, Report, Source},
};

/// What a live session would feed: warnings first, the start-up snapshot, then churn toward
/// one destination until its 10 ports run out, with ticks, loss counters, a reconciliation
/// and a failed one in between.
fn inputs(start: u64) -> Vec<Input> {
    let gw = task(300, "gateway");
    let mut out = vec![
        Input::warning(start, "sock/inet_sock_set_state not attached (test)"),
        Input::Startup(Stamped::new(
            start,
            snapshot(
                start,
                Some(sysctls((40000, 40009), &[], 0)),
                vec![snap_sock(
                    "10.0.0.1:40009",
                    "10.0.0.5:443",
                    Established,
                    Some((300, "gateway")),
                )],
            ),
        )),
    ];
    let mut s = Seq::new();
    s.advance(start - s.now());
    let mut loss = Counters::default();
    let mut sk = 0x1000;
    for i in 0..40u64 {
        s.advance(200 * MS);
        sk += 0x40;
        if i < 9 {
            let local = ip_port("10.0.0.1", 40000 + i as u16);
            s.connect(gw, sk, "10.0.0.1", 40000 + i as u16, "10.0.0.5:443")
                .active_close(gw, sk, sk + 1, &local, "10.0.0.5:443");
        } else {
            s.exhausted(gw, sk, "10.0.0.1", "10.0.0.5:443");
        }
        out.extend(s.events.drain(..).map(Input::Event));
        loss.state.seen += 5;
        loss.state.received += 5;
        out.push(Input::Tick(s.now()));
        if i % 5 == 4 {
            out.push(Input::Loss(Box::new(Stamped::new(s.now(), loss))));
            // The kernel's connect() latency aggregate, read with the loss counters.
            let calls = i + 1;
            let mut buckets = vec![0; portwatch_common::latency::BUCKETS];
            buckets[portwatch_common::latency::bucket(30_000)] = calls;
            out.push(Input::Latency(crate::model::LatencyReading {
                taken_at_ns: s.now(),
                dests: vec![crate::model::LatencyCounts {
                    netns: NETNS,
                    dst: addr("10.0.0.5:443"),
                    calls,
                    sum_ns: calls * 30_000,
                    buckets,
                }],
            }));
        }
        if i == 20 {
            out.push(Input::Reconcile(Stamped::new(
                s.now(),
                snapshot(s.now(), Some(sysctls((40000, 40009), &[], 0)), Vec::new()),
            )));
        }
        if i == 30 {
            out.push(Input::warning(s.now(), "reconciliation failed: test"));
        }
    }
    loss.state.lost = 3;
    out.push(Input::Loss(Box::new(Stamped::new(s.now(), loss))));
    out.push(Input::Tick(s.now() + MS));
    out
}

fn report(model: &Model, host: &Host, end: u64) -> Report {
    let ctx = Context {
        host: host.hostname.clone(),
        kernel: host.kernel_release.clone(),
        source: Source::Live,
        recording: None,
        window_start_ns: host.start_mono_ns,
        window_end_ns: end,
        generated_at: None,
    };
    Report::build(
        model,
        ctx,
        LostEvents::from(model.loss()),
        Default::default(),
    )
}

#[test]
fn the_recorded_inputs_replay_into_the_live_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.pwr");
    let start = 1_000 * SEC;
    let host = Host {
        start_mono_ns: start,
        ..Host::current()
    };
    let mut live = Model::default();
    let mut rec = Recorder::new(Writer::create(&path, &host, Options::default()).unwrap());
    for input in inputs(start) {
        live.feed(&input);
        rec.feed(&input, &live).unwrap();
    }
    rec.finish().unwrap();
    let live_report = report(&live, &host, live.now_ns());

    let mut replay = Replay::open(&path, ModelConfig::default()).unwrap();
    replay.run_to_end().unwrap();
    assert_eq!(replay.position_ns, live.now_ns());
    let replayed = report(&replay.model, &replay.host, replay.position_ns);

    assert!(!live_report.findings.is_empty(), "{live_report:#?}");
    assert_eq!(live_report.warnings.len(), 2, "{:?}", live_report.warnings);
    assert_eq!(live_report.lost_events.total, 3);
    assert_eq!(live_report.model.reconciliations, 1);
    let live_json = serde_json::to_value(&live_report).unwrap();
    assert!(
        live_json["pools"][0]["port_search"]["latency"]["calls"].as_u64() > Some(0),
        "{:#}",
        live_json["pools"]
    );
    assert_eq!(
        serde_json::to_value(&replayed).unwrap(),
        serde_json::to_value(&live_report).unwrap()
    );
}
