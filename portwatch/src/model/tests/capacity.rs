//! Capacity: the namespace's range (even-sized scan), minus reserved ports, minus ports held
//! by bind() and listeners — and what counts as in use.

use rstest::rstest;

use crate::{
    event::TwOp,
    model::{Model, PoolKey, testutil::*},
};

fn key(dst: &str) -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: "127.0.0.1".parse().unwrap(),
        dst: addr(dst),
    }
}

fn capacity_with(range: (u16, u16), reserved: &[(u16, u16)]) -> u32 {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls(range, reserved, 0));
    let s = &m.sysctls().into_iter().find(|n| n.netns == NETNS).unwrap();
    s.capacity.capacity
}

#[rstest]
#[case::default((32768, 60999), &[], 28232)]
#[case::ten_even((40000, 40009), &[], 10)]
// Same-parity ends: each connect() scans 10 of the 11, skipping one end or the other, so
// over time all 11 are handed out (capacity.rs).
#[case::odd_count_even_ends((40000, 40010), &[], 11)]
#[case::odd_count_odd_ends((40001, 40011), &[], 11)]
#[case::single_port((40000, 40000), &[], 1)]
#[case::reserved_inside((40000, 40009), &[(40002, 40003)], 8)]
#[case::reserved_overlapping_edges((40000, 40009), &[(39000, 40000), (40009, 41000)], 8)]
#[case::reserved_outside((40000, 40009), &[(50000, 50010)], 10)]
#[case::reserved_top_of_odd_range((40000, 40010), &[(40010, 40010)], 10)]
#[case::inverted((40010, 40000), &[], 0)]
fn range_and_reserved(
    #[case] range: (u16, u16),
    #[case] reserved: &[(u16, u16)],
    #[case] want: u32,
) {
    assert_eq!(capacity_with(range, reserved), want);
}

/// What Linux 6.18 did with 40000–40050 (ends of the same parity) and 51 connections held
/// to one destination: it handed out every port, both ends included, and only the 52nd
/// connect() failed (tests/causes.rs reproduces it). Each socket takes a port of the pool.
#[test]
fn a_same_parity_range_hands_out_both_ends() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40050), &[], 0));
    let mut s = Seq::new();
    for (k, port) in (40000..=40050u16).enumerate() {
        s.connect(
            task(1, "a"),
            0x1000 + 0x40 * k as u64,
            "127.0.0.1",
            port,
            "127.0.0.1:80",
        );
    }
    s.run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!(
        (
            p.in_use,
            p.capacity,
            p.outside_capacity,
            p.time_to_exhaustion_s
        ),
        (51, 51, 0, Some(0.0))
    );
    assert_consistent(&m);
}

#[test]
fn unknown_sysctls_are_flagged_as_assumed() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert!(p.sysctls_assumed);
    assert_eq!(p.capacity, 28232);
    assert!(m.sysctls_for(NETNS).unwrap().1);
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert!(!p.sysctls_assumed);
    assert_eq!(p.capacity, 10);
}

#[test]
fn bound_and_listening_ports_leave_every_pool() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    s.bind_ok(task(1, "a"), 0x10, "127.0.0.1:0", 40001)
        .listen(task(2, "b"), 0x11, "0.0.0.0:40003")
        // another listener on the same port (SO_REUSEPORT) holds nothing more
        .listen(task(3, "b"), 0x12, "0.0.0.0:40003")
        // bound outside the range: no effect on capacity
        .bind_ok(task(1, "a"), 0x13, "127.0.0.1:0", 50000)
        // IP_BIND_ADDRESS_NO_PORT: no port yet
        .bind_ok(task(1, "a"), 0x14, "127.0.0.1:0", 0)
        .connect(task(4, "c"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!(p.capacity, 8);
    assert_eq!(p.in_use, 1);
    assert_eq!(m.totals().all.get(BoundInactive), 3);
    // A port stays held until its last listener closes.
    s.state(swapper(), 0x12, "0.0.0.0:40003", "0.0.0.0:0", Listen, Close)
        .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().capacity, 8);
    s.state(swapper(), 0x11, "0.0.0.0:40003", "0.0.0.0:0", Listen, Close)
        .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().capacity, 9);
    // Closing an unconnected bound socket emits nothing; when its address starts a new life
    // (connect() with port 0), the stale bind is dropped and its port comes back.
    s.state(
        task(1, "a"),
        0x10,
        "127.0.0.1:0",
        "127.0.0.1:90",
        Close,
        SynSent,
    )
    .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().capacity, 10);
    assert_eq!(m.counters().odd.stale_replaced, 1);
    assert_consistent(&m);
}

#[test]
fn bind_before_connect_is_held_for_all_and_not_counted_in_the_pool() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    s.bind_ok(task(1, "a"), 0x10, "127.0.0.1:0", 40001)
        .state(
            task(1, "a"),
            0x10,
            "127.0.0.1:40001",
            "127.0.0.1:80",
            Close,
            SynSent,
        )
        .state(
            swapper(),
            0x10,
            "127.0.0.1:40001",
            "127.0.0.1:80",
            SynSent,
            Established,
        )
        .run(&mut m);
    let p80 = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!((p80.capacity, p80.in_use, p80.outside_capacity), (9, 0, 1));
    assert_eq!(p80.states.get(Established), 1);
    // Its TIME_WAIT keeps the bind bucket, so the port stays out of every pool.
    s.active_close(task(1, "a"), 0x10, 0x99, "127.0.0.1:40001", "127.0.0.1:80")
        .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:81"), s.now()), None);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().capacity, 9);
    s.advance(60 * SEC)
        .tw_expire(0x99, "127.0.0.1:40001", "127.0.0.1:80")
        .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().capacity, 10);
    assert_consistent(&m);
}

#[test]
fn ports_are_per_destination() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40001), &[], 0));
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .connect(task(1, "a"), 0x21, "127.0.0.1", 40001, "127.0.0.1:80")
        .connect(task(1, "a"), 0x22, "127.0.0.1", 40000, "127.0.0.1:81")
        .run(&mut m);
    let full = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!((full.in_use, full.capacity, full.utilisation), (2, 2, 1.0));
    assert_eq!(full.time_to_exhaustion_s, Some(0.0));
    let other = m.pool(&key("127.0.0.1:81"), s.now()).unwrap();
    assert_eq!((other.in_use, other.utilisation), (1, 0.5));
    assert_eq!(
        m.pools(s.now(), 10)[0].dst,
        addr("127.0.0.1:80"),
        "fullest first"
    );
    assert_consistent(&m);
}

#[test]
fn range_change_recomputes_what_consumes() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .connect(task(1, "a"), 0x21, "127.0.0.1", 40005, "127.0.0.1:80")
        .run(&mut m);
    assert_eq!(m.pool(&key("127.0.0.1:80"), s.now()).unwrap().in_use, 2);
    m.set_sysctls(NETNS, sysctls((40004, 40009), &[], 0));
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!((p.in_use, p.outside_capacity, p.capacity), (1, 1, 6));
    assert_consistent(&m);
}

#[rstest]
#[case::reuse_off(0, "127.0.0.1", false)]
#[case::reuse_on(1, "10.0.0.1", true)]
#[case::loopback_only_on_loopback(2, "127.0.0.1", true)]
#[case::loopback_only_elsewhere(2, "10.0.0.1", false)]
fn tw_reuse_decides_whether_time_wait_blocks(
    #[case] reuse: u8,
    #[case] ip: &str,
    #[case] reusable: bool,
) {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], reuse));
    let dst = format!("{ip}:80");
    let l = format!("{ip}:40000");
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, ip, 40000, &dst)
        .state(task(1, "a"), 0x20, &l, &dst, Established, FinWait1)
        .tw(0x99, &l, &dst, TwOp::Start, TimeWait, 15000)
        .state(swapper(), 0x20, &l, &dst, FinWait1, Close)
        .connect(task(1, "a"), 0x21, ip, 40001, &dst)
        .run(&mut m);
    let k = PoolKey {
        netns: NETNS,
        src: ip.parse().unwrap(),
        dst: addr(&dst),
    };
    let p = m.pool(&k, s.now()).unwrap();
    assert_eq!(p.tw_reusable, reusable);
    assert_eq!(p.in_use, 2);
    assert_eq!(p.blocking, if reusable { 1 } else { 2 });
    assert_consistent(&m);
}

#[test]
fn namespaces_are_separate() {
    const OTHER: u32 = 4_026_532_999;
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    m.set_sysctls(OTHER, sysctls((50000, 50099), &[], 0));
    let mut s = Seq::new();
    // The same 4-tuple and the same listener port in two namespaces.
    s.listen(task(1, "a"), 0x10, "0.0.0.0:40001")
        .connect(task(1, "a"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .in_netns(OTHER)
        .connect(task(2, "b"), 0x30, "127.0.0.1", 40000, "127.0.0.1:80")
        .state(
            swapper(),
            0x30,
            "127.0.0.1:40000",
            "127.0.0.1:80",
            Established,
            Close,
        )
        .run(&mut m);
    let here = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!((here.in_use, here.capacity), (1, 9));
    let there = PoolKey {
        netns: OTHER,
        ..key("127.0.0.1:80")
    };
    let there = m.pool(&there, s.now()).unwrap();
    assert_eq!(
        (there.in_use, there.capacity, there.closes.reset),
        (0, 100, 1)
    );
    let t = m.totals();
    assert_eq!(t.per_netns.len(), 1, "{t:?}");
    assert_eq!(t.all.get(Established), 1);
    assert_consistent(&m);
}

#[test]
fn accepted_sockets_keep_the_listener_port_held() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    s.listen(task(1, "srv"), 0x10, "0.0.0.0:40002")
        .accept(swapper(), 0x30, "127.0.0.1:40002", "127.0.0.1:50000")
        .connect(task(2, "cli"), 0x20, "127.0.0.1", 40000, "127.0.0.1:80")
        .state(swapper(), 0x10, "0.0.0.0:40002", "0.0.0.0:0", Listen, Close)
        .run(&mut m);
    let cap = |m: &Model| m.pool(&key("127.0.0.1:80"), 0).unwrap().capacity;
    assert_eq!(cap(&m), 9, "the child still holds the bind bucket");
    s.reset(0x30, "127.0.0.1:40002", "127.0.0.1:50000")
        .run(&mut m);
    assert_eq!(cap(&m), 10);
    assert_consistent(&m);
}

/// Bind-before-connect (`bind()` to port 0, then `connect()`) is counted per pool and per
/// owner, TIME_WAIT included; an explicit port or `IP_BIND_ADDRESS_NO_PORT` is not.
#[test]
fn bind_before_connect_sockets_are_counted_per_pool_and_owner() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let a = task(1, "a");
    let connect_bound = |s: &mut Seq, sk: u64, port: u16| {
        let local = ip_port("127.0.0.1", port);
        s.state(a, sk, &local, "127.0.0.1:80", Close, SynSent)
            .state(swapper(), sk, &local, "127.0.0.1:80", SynSent, Established);
    };
    let mut s = Seq::new();
    // bind(0) → the kernel picks 40001: bind-before-connect.
    s.bind_ok(a, 0x10, "127.0.0.1:0", 40001);
    connect_bound(&mut s, 0x10, 40001);
    // bind(40003) explicitly: a chosen port, not counted.
    s.bind_ok(a, 0x11, "127.0.0.1:40003", 40003);
    connect_bound(&mut s, 0x11, 40003);
    // IP_BIND_ADDRESS_NO_PORT: bind leaves the port 0, connect() picks it: not counted.
    s.bind_ok(a, 0x12, "127.0.0.1:0", 0)
        .connect(a, 0x12, "127.0.0.1", 40004, "127.0.0.1:80")
        .run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!(p.bind_before_connect, 1);
    assert_eq!(p.owners[0].bind_before_connect, 1);
    assert_eq!(m.processes(10)[0].outbound[0].bind_before_connect, 1);
    assert_consistent(&m);
    // Its TIME_WAIT still counts (it keeps the bind bucket), until it expires.
    s.active_close(a, 0x10, 0x99, "127.0.0.1:40001", "127.0.0.1:80")
        .run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!((p.bind_before_connect, p.states.get(FinWait2)), (1, 1));
    assert_consistent(&m);
    s.advance(60 * SEC)
        .tw_expire(0x99, "127.0.0.1:40001", "127.0.0.1:80")
        .run(&mut m);
    let p = m.pool(&key("127.0.0.1:80"), s.now()).unwrap();
    assert_eq!(p.bind_before_connect, 0);
    assert_consistent(&m);
}
