//! The model against ground truth: for a namespace, its counts per state and per pool equal
//! `ss -tan` — at start-up (sockets made before portwatch started), and after live churn that
//! overflows a tiny ring buffer, within one reconciliation period. Root only.

use std::{
    collections::BTreeMap,
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use portwatch::{
    collect::{Options, monotonic_now_ns},
    event::TcpState,
    model::ModelConfig,
    netns::Netns,
    session::{Live, LiveOptions},
};
use portwatch_lab::churn::{self, ChurnOpts, Closer, Server};
use portwatch_tests::{require_root, ss};

type States = BTreeMap<TcpState, u32>;
type Pools = BTreeMap<(SocketAddr, SocketAddr), u32>;

/// What `ss -tan` says for the namespace: counts per state, and per pool (source IP, destination
/// ip:port) for the connections whose local port is not a listening one (outbound).
fn ss_counts(ns: &Netns) -> (States, Pools) {
    let out = ns
        .run(|| {
            std::process::Command::new("ss")
                .args(["-tanH"])
                .output()
                .unwrap()
                .stdout
        })
        .unwrap();
    let socks = ss::parse(&String::from_utf8_lossy(&out));
    let listening: Vec<u16> = socks
        .iter()
        .filter(|s| s.0 == TcpState::Listen)
        .map(|s| s.1.port())
        .collect();
    let mut states = States::new();
    let mut pools = Pools::new();
    for (state, local, remote) in socks {
        *states.entry(state).or_default() += 1;
        if state != TcpState::Listen && remote.port() != 0 && !listening.contains(&local.port()) {
            *pools
                .entry((SocketAddr::new(local.ip(), 0), remote))
                .or_default() += 1;
        }
    }
    (states, pools)
}

fn model_counts(live: &Live, netns: u32) -> (States, Pools) {
    let totals = live.model.totals();
    let mut states = States::new();
    if let Some(n) = totals.per_netns.iter().find(|n| n.netns == netns) {
        for (s, c) in n.states.iter() {
            if c > 0 {
                states.insert(s, c);
            }
        }
    }
    let mut pools = Pools::new();
    for p in live.model.pools(monotonic_now_ns(), 10_000) {
        let n = p.states.total();
        if p.netns == netns && n > 0 {
            pools.insert((SocketAddr::new(p.src, 0), p.dst), n);
        }
    }
    (states, pools)
}

/// Drives the live session until its counts equal `ss` or `timeout` passes; returns both.
async fn settle(
    live: &mut Live,
    ns: &Netns,
    timeout: Duration,
) -> ((States, Pools), (States, Pools)) {
    let deadline = Instant::now() + timeout;
    let mut batch = Vec::new();
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(200), live.next_batch(&mut batch)).await;
        batch.clear();
        let (want, got) = (ss_counts(ns), model_counts(live, ns.inode));
        if want == got || Instant::now() > deadline {
            return (want, got);
        }
    }
}

#[test]
fn first_picture_and_after_churn_match_ss() {
    require_root();
    let ns = Netns::create().unwrap();
    ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
    // Before portwatch starts: a listener with established connections, v4 and v6, some
    // TIME_WAIT (client closed first), some CLOSE_WAIT/FIN_WAIT2 (server never closes).
    let held = ns
        .run(|| {
            let l4 = TcpListener::bind("127.0.0.1:7000").unwrap();
            let l6 = TcpListener::bind("[::1]:7001").unwrap();
            let mut keep = Vec::new();
            for i in 0..20 {
                let (l, dst) = if i % 2 == 0 {
                    (&l4, "127.0.0.1:7000")
                } else {
                    (&l6, "[::1]:7001")
                };
                let c = TcpStream::connect(dst).unwrap();
                let (s, _) = l.accept().unwrap();
                if i % 5 == 0 {
                    drop(c); // FIN_WAIT2 on the client, CLOSE_WAIT on the server: never closed
                    keep.push((None, Some(s)));
                } else if i % 5 == 1 {
                    drop(c); // TIME_WAIT once the server closes too
                    let mut s = s;
                    let mut buf = [0u8; 1];
                    let _ = s.read(&mut buf);
                } else {
                    keep.push((Some(c), Some(s)));
                }
            }
            (l4, l6, keep)
        })
        .unwrap();
    let before = ss_counts(&ns);
    assert!(
        before.0.get(&TcpState::TimeWait).copied().unwrap_or(0) >= 4,
        "{before:?}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = LiveOptions {
            trace: Options {
                netns: Some(ns.inode),
                // One page: the churn below overflows it, and reconciliation must repair the
                // model within one period.
                ring_bytes: portwatch::collect::page_size(),
                ..Options::default()
            },
            snapshot: true,
            reconcile_every: Some(Duration::from_secs(2)),
            model: ModelConfig::default(),
            fail_reconciliations: 0,
            conntrack: false,
        };
        let mut live = Live::start(opts).await.unwrap();
        let (want, got) = settle(&mut live, &ns, Duration::from_secs(2)).await;
        assert_eq!(got, want, "the first picture (model, ss)");

        // Live churn, with connections held open toward a second destination meanwhile.
        let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let server = Server::start(&ns, dst, Closer::Client, 2).unwrap();
        let churner = {
            let ns2 = ns.try_clone().unwrap();
            std::thread::spawn(move || {
                churn::churn(
                    &ns2,
                    &ChurnOpts {
                        dst,
                        threads: 2,
                        duration: Duration::from_secs(3),
                        max_connections: Some(5000),
                        closer: Closer::Client,
                        backoff_on_error: Duration::from_millis(5),
                    },
                )
                .unwrap()
            })
        };
        let mut batch = Vec::new();
        while !churner.is_finished() {
            let _ =
                tokio::time::timeout(Duration::from_millis(100), live.next_batch(&mut batch)).await;
            batch.clear();
        }
        let made = churner.join().unwrap();
        server.stop_after(made.connections, Duration::from_secs(5));
        assert!(made.connections > 500, "{made:?}");
        // Loss counters reach the model once a second, behind the events queued before them.
        let deadline = Instant::now() + Duration::from_secs(3);
        while live.counters().lost_total() == 0 && Instant::now() < deadline {
            let _ =
                tokio::time::timeout(Duration::from_millis(100), live.next_batch(&mut batch)).await;
            batch.clear();
        }
        let lost = live.counters().lost_total();
        assert!(
            lost > 0,
            "the one-page ring should have overflowed: {:?}",
            live.counters()
        );

        // Within one reconciliation period (2 s) plus a dump, the model agrees with ss again.
        let (want, got) = settle(&mut live, &ns, Duration::from_secs(5)).await;
        assert_eq!(got, want, "after churn with {lost} lost events (model, ss)");
        assert!(
            live.model.counters().corrections > 0,
            "the lost events were repaired by reconciliation: {:?}",
            live.model.counters()
        );
        live.finish(&mut []).await.unwrap();
    });
    drop(held);
}
