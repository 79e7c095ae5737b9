//! Each path through the TCP lifecycle, as the kernel emits it.

use rstest::rstest;

use crate::{
    event::{CallKind, TwOp},
    model::{Closer, Model, PoolKey, Role, testutil::*},
};

const CLIENT: &str = "127.0.0.1:45042";
const SERVER: &str = "127.0.0.1:8080";

fn pool(src: &str, dst: &str) -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: src.parse().unwrap(),
        dst: addr(dst),
    }
}

/// The sequence from the issue: a client connects to a local server and closes first.
#[test]
fn active_close_gives_time_wait_to_the_client_and_frees_it_after_60s() {
    let (server, client) = (task(100, "server"), task(200, "client"));
    let mut m = Model::default();
    let mut s = Seq::new();
    s.bind_ok(server, 0x10, SERVER, 8080)
        .listen(server, 0x10, SERVER)
        .state(client, 0x20, "127.0.0.1:0", SERVER, Close, SynSent)
        .state(swapper(), 0x20, CLIENT, SERVER, SynSent, Established)
        .state(client, 0x30, SERVER, CLIENT, Listen, SynRecv)
        .state(swapper(), 0x30, SERVER, CLIENT, SynRecv, Established)
        .run(&mut m);
    let p = m.pool(&pool("127.0.0.1", SERVER), s.now()).unwrap();
    assert_eq!(p.states.get(Established), 1);
    assert_eq!(p.in_use, 1);
    assert_eq!(m.totals().all.get(Established), 2);
    assert_eq!(m.totals().all.get(Listen), 1);

    s.state(client, 0x20, CLIENT, SERVER, Established, FinWait1)
        .state(server, 0x30, SERVER, CLIENT, Established, CloseWait)
        .state(swapper(), 0x20, CLIENT, SERVER, FinWait1, FinWait2)
        .tw(0x99, CLIENT, SERVER, TwOp::Start, FinWait2, 15000)
        .state(swapper(), 0x20, CLIENT, SERVER, FinWait2, Close)
        .state(server, 0x30, SERVER, CLIENT, CloseWait, LastAck)
        .state(swapper(), 0x30, SERVER, CLIENT, LastAck, Close)
        // the peer's FIN turns the FIN_WAIT2 substate into TIME_WAIT: a re-arm
        .tw(0x99, CLIENT, SERVER, TwOp::Cancel, FinWait2, 14000)
        .tw(0x99, CLIENT, SERVER, TwOp::Start, TimeWait, 15000)
        .run(&mut m);
    let p = m.pool(&pool("127.0.0.1", SERVER), s.now()).unwrap();
    assert_eq!(p.states.get(TimeWait), 1, "{:?}", p.states);
    assert_eq!(p.states.total(), 1, "the full socket is no longer counted");
    assert_eq!(p.in_use, 1, "TIME_WAIT holds the port");
    assert_eq!(p.closes.local_first, 1);
    assert_eq!(p.closes.tw_started, 1);
    assert_eq!(m.counters().tw_rearmed, 1);
    let socks = m.pool_sockets(&pool("127.0.0.1", SERVER), s.now(), 10);
    assert_eq!(socks.len(), 1);
    assert!(socks[0].timewait);
    assert_eq!(socks[0].closer, Closer::Local);
    assert_eq!(socks[0].owner.as_ref().unwrap().pid, 200);
    let l = &m.listeners(10, 10)[0];
    assert_eq!(l.closes.remote_first, 1);
    assert_eq!(l.states.total(), 0, "server child is gone after LAST_ACK");

    s.advance(60 * SEC)
        .tw_expire(0x99, CLIENT, SERVER)
        .run(&mut m);
    let p = m.pool(&pool("127.0.0.1", SERVER), s.now()).unwrap();
    assert_eq!(p.in_use, 0);
    assert_eq!(p.closes.tw_expired, 1);
    assert_eq!(m.counters().tw_expired, 1);
    assert_eq!(m.counters().odd.total(), 0, "{:?}", m.counters().odd);
    assert_consistent(&m);
}

#[test]
fn passive_close_leaves_no_time_wait_here() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "app"), 0x20, "10.0.0.1", 40000, "10.0.0.9:80")
        .passive_close(task(1, "app"), 0x20, "10.0.0.1:40000", "10.0.0.9:80")
        .run(&mut m);
    let p = m.pool(&pool("10.0.0.1", "10.0.0.9:80"), s.now()).unwrap();
    assert_eq!(p.in_use, 0);
    assert_eq!(p.closes.remote_first, 1);
    assert_eq!(p.closes.tw_started, 0);
    assert_eq!(p.rates.window_s, 0);
    assert_eq!(m.totals().all.total(), 0);
    assert_consistent(&m);
}

#[rstest]
#[case::from_established(Established)]
#[case::from_syn_recv(SynRecv)]
fn reset_closes_without_time_wait(#[case] from: crate::event::TcpState) {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "proxy"), 0x20, "10.0.0.1", 40000, "10.0.0.9:80");
    if from == SynRecv {
        s.state(
            swapper(),
            0x20,
            "10.0.0.1:40000",
            "10.0.0.9:80",
            Established,
            SynRecv,
        );
    }
    s.state(
        swapper(),
        0x20,
        "10.0.0.1:40000",
        "10.0.0.9:80",
        from,
        Close,
    )
    .run(&mut m);
    let p = m.pool(&pool("10.0.0.1", "10.0.0.9:80"), s.now()).unwrap();
    assert_eq!(p.in_use, 0);
    assert_eq!(p.closes.reset, 1);
    assert_eq!(m.counters().tw_started, 0);
    assert_eq!(m.totals().all.get(TimeWait), 0);
    assert_consistent(&m);
}

#[test]
fn active_close_without_timewait_is_counted() {
    // tcp_max_tw_buckets overflow: FIN_WAIT2 → CLOSE with no TW_START.
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "app"), 0x20, "10.0.0.1", 40000, "10.0.0.9:80")
        .state(
            task(1, "app"),
            0x20,
            "10.0.0.1:40000",
            "10.0.0.9:80",
            Established,
            FinWait1,
        )
        .state(
            swapper(),
            0x20,
            "10.0.0.1:40000",
            "10.0.0.9:80",
            FinWait1,
            FinWait2,
        )
        .state(
            swapper(),
            0x20,
            "10.0.0.1:40000",
            "10.0.0.9:80",
            FinWait2,
            Close,
        )
        .run(&mut m);
    let p = m.pool(&pool("10.0.0.1", "10.0.0.9:80"), s.now()).unwrap();
    assert_eq!(p.closes.active_close_without_tw, 1);
    assert_eq!(p.in_use, 0);
    assert_consistent(&m);
}

#[test]
fn refused_connect_is_a_failure_with_its_pool() {
    let app = task(7, "curl");
    let mut m = Model::default();
    let mut s = Seq::new();
    s.state(app, 0x20, "10.0.0.1:0", "10.0.0.9:81", Close, SynSent)
        .state(
            swapper(),
            0x20,
            "10.0.0.1:40002",
            "10.0.0.9:81",
            SynSent,
            Close,
        )
        .call_err(
            app,
            CallKind::Connect,
            Some(0x20),
            "10.0.0.9:81",
            libc::ECONNREFUSED,
        )
        .run(&mut m);
    let p = m.pool(&pool("10.0.0.1", "10.0.0.9:81"), s.now());
    assert_eq!(p.map(|p| p.closes.connect_aborted), Some(1));
    let f = m.failures(10);
    assert_eq!(f.total, 1);
    assert_eq!(f.by_errno[0].errno.name(), "ECONNREFUSED");
    assert_eq!(f.by_process[0].comm, app.comm);
    assert_eq!(f.by_destination[0].addr, addr("10.0.0.9:81"));
    assert_eq!(m.processes(10)[0].failures, 1);
    assert_consistent(&m);
}

#[test]
fn exhaustion_is_attributed_to_caller_and_pool() {
    let app = task(7, "client");
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(app, 0x20, "127.0.0.1", 40000, "127.0.0.1:8080")
        .exhausted(app, 0x21, "127.0.0.1", "127.0.0.1:8080")
        .run(&mut m);
    let key = pool("127.0.0.1", "127.0.0.1:8080");
    let p = m.pool(&key, s.now()).unwrap();
    assert_eq!(p.eaddrnotavail, 1);
    assert_eq!(p.in_use, 1, "the failed socket never held a port");
    assert!(p.last_failure_ns.is_some());
    let f = m.failures(10);
    assert_eq!(f.recent.len(), 1);
    let r = &f.recent[0];
    assert_eq!((r.pid, r.errno.name().as_str()), (7, "EADDRNOTAVAIL"));
    assert_eq!(r.pool, Some(key));
    assert_eq!(r.src, Some("127.0.0.1".parse().unwrap()));
    // The failed port search is in the pool's rates one second later.
    s.advance(SEC);
    let p = m.pool(&key, s.now()).unwrap();
    assert_eq!(p.rates.failed_per_s, 1.0);
    assert_eq!(p.rates.attempts_per_s, 2.0);
    assert_eq!(p.rates.new_per_s, 1.0);
    assert_consistent(&m);
}

#[test]
fn repeated_failures_group_by_errno_call_command_and_address() {
    let mut m = Model::default();
    let mut s = Seq::new();
    // A shell loop: a new curl pid for each failed connect toward one destination.
    for pid in 10..13 {
        s.advance(SEC);
        s.exhausted(
            task(pid, "curl"),
            0x20 + u64::from(pid),
            "127.0.0.1",
            "127.0.0.1:8080",
        );
    }
    // The same command toward another destination, and another command toward the first.
    s.advance(SEC);
    s.call_err(
        task(10, "curl"),
        CallKind::Connect,
        None,
        "127.0.0.1:9090",
        libc::ECONNREFUSED,
    )
    .call_err(
        task(20, "wget"),
        CallKind::Connect,
        None,
        "127.0.0.1:8080",
        libc::ECONNREFUSED,
    )
    .call_err(
        task(20, "wget"),
        CallKind::Connect,
        None,
        "127.0.0.1:8080",
        libc::ECONNREFUSED,
    )
    .run(&mut m);
    let f = m.failures(10);
    assert_eq!(f.total, 6);
    let g: Vec<_> = f
        .groups
        .iter()
        .map(|g| {
            (
                g.comm.to_string(),
                g.errno.name(),
                g.addr.to_string(),
                g.count.count,
                g.pids,
            )
        })
        .collect();
    // The most recently seen first; at one moment the most repeated first.
    let want = [
        ("wget", "ECONNREFUSED", "127.0.0.1:8080", 2, 1),
        ("curl", "ECONNREFUSED", "127.0.0.1:9090", 1, 1),
        ("curl", "EADDRNOTAVAIL", "127.0.0.1:8080", 3, 3),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|&(c, e, a, n, p)| (c.to_string(), e.to_string(), a.to_string(), n, p))
        .collect();
    assert_eq!(g, want);
    let curl = &f.groups[2];
    // Two seconds apart (and the test sequence's microsecond per event).
    let span = curl.count.last_ns - curl.count.first_ns;
    assert!((2 * SEC..2 * SEC + SEC / 1000).contains(&span), "{span}");
    assert_eq!(curl.pid, 12, "the newest failure's pid");
    assert_eq!(curl.pool, Some(pool("127.0.0.1", "127.0.0.1:8080")));
    assert_consistent(&m);
}

#[test]
fn syn_sent_learns_its_port_on_established() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.state(
        task(1, "app"),
        0x20,
        "10.0.0.1:0",
        "10.0.0.9:80",
        Close,
        SynSent,
    )
    .run(&mut m);
    let key = pool("10.0.0.1", "10.0.0.9:80");
    assert_eq!(m.pool(&key, s.now()).unwrap().states.get(SynSent), 1);
    assert_eq!(
        m.pool(&key, s.now()).unwrap().in_use,
        1,
        "a SYN_SENT socket holds a port"
    );
    s.state(
        swapper(),
        0x20,
        "10.0.0.1:40010",
        "10.0.0.9:80",
        SynSent,
        Established,
    )
    .run(&mut m);
    let socks = m.pool_sockets(&key, s.now(), 10);
    assert_eq!(socks[0].local, addr("10.0.0.1:40010"));
    assert_eq!(socks[0].role, Role::Outbound);
    assert_consistent(&m);
}

#[test]
fn odd_events_are_counted_not_fatal() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.state(
        swapper(),
        0x50,
        "10.0.0.1:40000",
        "10.0.0.9:80",
        Established,
        Close,
    )
    .state(
        swapper(),
        0x51,
        "10.0.0.1:40001",
        "10.0.0.9:80",
        Established,
        FinWait1,
    )
    .state(
        swapper(),
        0x51,
        "10.0.0.1:40001",
        "10.0.0.9:80",
        Established,
        FinWait2,
    )
    .tw(0x77, "10.0.0.1:1", "10.0.0.9:80", TwOp::Expire, TimeWait, 0)
    .tw(0x78, "10.0.0.1:2", "10.0.0.9:80", TwOp::Cancel, TimeWait, 5)
    .run(&mut m);
    let odd = m.counters().odd;
    assert_eq!(odd.unknown_close, 1);
    assert_eq!(odd.unknown_socket, 1);
    assert_eq!(odd.state_mismatch, 1);
    assert_eq!(odd.tw_unknown, 2);
    let socks = m.pool_sockets(&pool("10.0.0.1", "10.0.0.9:80"), s.now(), 10);
    assert_eq!(socks.len(), 1, "the mid-life socket is tracked from here");
    assert_eq!(socks[0].owner, None);
    assert_eq!(socks[0].state, FinWait2);
    assert_consistent(&m);
}

#[test]
fn ipv6_and_v4_mapped_share_the_v4_pool() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "10.0.0.1", 40000, "10.0.0.9:80")
        .connect(
            task(1, "a"),
            0x21,
            "::ffff:10.0.0.1",
            40001,
            "[::ffff:10.0.0.9]:80",
        )
        .connect(task(1, "a"), 0x22, "2001:db8::1", 40000, "[2001:db8::9]:80")
        .run(&mut m);
    assert_eq!(
        m.pool(&pool("10.0.0.1", "10.0.0.9:80"), s.now())
            .unwrap()
            .in_use,
        2
    );
    assert_eq!(
        m.pool(&pool("2001:db8::1", "[2001:db8::9]:80"), s.now())
            .unwrap()
            .in_use,
        1
    );
    assert_consistent(&m);
}
