//! Owner rules: taken in process context only, remembered per socket, inherited by accepted
//! sockets and TIME_WAIT entries, filled from the snapshot for pre-existing sockets.

use rstest::rstest;

use crate::{
    event::CallKind,
    model::{Model, PoolKey, testutil::*},
};

fn pool(src: &str, dst: &str) -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: src.parse().unwrap(),
        dst: addr(dst),
    }
}

fn owner_pid(m: &Model, key: &PoolKey, now: u64) -> Vec<Option<u32>> {
    m.pool_sockets(key, now, 100)
        .iter()
        .map(|s| s.owner.as_ref().map(|o| o.pid))
        .collect()
}

#[test]
fn connect_owner_is_not_stolen_by_softirq_or_peer_tasks() {
    let (client, server) = (task(200, "client"), task(100, "server"));
    let mut m = Model::default();
    let mut s = Seq::new();
    // On loopback the peer often runs the softirq: every later transition carries it.
    s.state(
        client,
        0x20,
        "127.0.0.1:0",
        "127.0.0.1:8080",
        Close,
        SynSent,
    )
    .state(
        server,
        0x20,
        "127.0.0.1:45042",
        "127.0.0.1:8080",
        SynSent,
        Established,
    )
    .state(
        server,
        0x20,
        "127.0.0.1:45042",
        "127.0.0.1:8080",
        Established,
        CloseWait,
    )
    .run(&mut m);
    let key = pool("127.0.0.1", "127.0.0.1:8080");
    assert_eq!(owner_pid(&m, &key, s.now()), vec![Some(200)]);
    let procs = m.processes(10);
    assert_eq!(procs.len(), 1, "the server task touched nothing it owns");
    assert_eq!(procs[0].process.pid, 200);
    assert_eq!(procs[0].connects, 1);
    assert_eq!(procs[0].outbound[0].dst, addr("127.0.0.1:8080"));
    assert_eq!(procs[0].outbound[0].states.get(CloseWait), 1);
    assert_consistent(&m);
}

#[test]
fn listen_owner_and_listener_port_holding() {
    let nginx = task(300, "nginx");
    let mut m = Model::default();
    let mut s = Seq::new();
    s.bind_ok(nginx, 0x10, "0.0.0.0:443", 443)
        .listen(nginx, 0x10, "0.0.0.0:443")
        .run(&mut m);
    let l = m.listeners(10, 10);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].owner.as_ref().map(|o| o.pid), Some(300));
    assert_eq!(l[0].listening, 1);
    assert_eq!(m.processes(10)[0].listening, vec![addr("0.0.0.0:443")]);
    assert_eq!(m.port_holders(NETNS, 443, s.now()).len(), 1);
    s.state(swapper(), 0x10, "0.0.0.0:443", "0.0.0.0:0", Listen, Close)
        .run(&mut m);
    assert!(m.listeners(10, 10).is_empty());
    assert_eq!(m.port_holders(NETNS, 443, s.now()).len(), 0);
    assert_consistent(&m);
}

#[rstest]
#[case::exact("10.0.0.5:443", "10.0.0.5:443")]
#[case::v4_wildcard("0.0.0.0:443", "10.0.0.5:443")]
#[case::v6_wildcard_takes_v4("[::]:443", "10.0.0.5:443")]
#[case::v6_wildcard_takes_mapped("[::]:443", "[::ffff:10.0.0.5]:443")]
#[case::v6_wildcard_takes_v6("[::]:443", "[2001:db8::5]:443")]
fn accepted_sockets_inherit_the_listener_owner(#[case] listen_on: &str, #[case] child_local: &str) {
    let nginx = task(300, "nginx");
    let unrelated = task(999, "ksoftirqd/1");
    let remote = if addr(child_local).is_ipv4() || child_local.contains("ffff") {
        "10.0.0.77:50000"
    } else {
        "[2001:db8::77]:50000"
    };
    let mut m = Model::default();
    let mut s = Seq::new();
    s.listen(nginx, 0x10, listen_on)
        .accept(unrelated, 0x30, child_local, remote)
        .run(&mut m);
    let l = &m.listeners(10, 10)[0];
    assert_eq!(l.accepted, 1);
    assert_eq!(l.states.get(Established), 1);
    assert_eq!(l.by_remote[0].ip, addr(remote).ip().to_canonical());
    let p = m.processes(10);
    assert_eq!(p.len(), 1, "the softirq task owns nothing: {p:?}");
    assert_eq!(p[0].process.pid, 300);
    assert_eq!(p[0].sockets, 2);
    assert_eq!(m.counters().odd.accept_without_listener, 0);
    assert_consistent(&m);
}

#[test]
fn wildcard_listener_does_not_take_other_ports_or_v4_listener_v6() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.listen(task(1, "a"), 0x10, "0.0.0.0:443")
        .accept(swapper(), 0x30, "[2001:db8::5]:443", "[2001:db8::77]:50000")
        .accept(swapper(), 0x31, "10.0.0.5:444", "10.0.0.77:50000")
        .run(&mut m);
    assert_eq!(m.counters().odd.accept_without_listener, 2);
    let ls = m.listeners(10, 10);
    let real = ls.iter().find(|l| l.local == addr("0.0.0.0:443")).unwrap();
    assert_eq!(real.accepted, 0);
    assert_eq!(
        ls.len(),
        3,
        "unmatched children get an owner-less listener entry"
    );
    assert!(
        ls.iter()
            .filter(|l| l.listening == 0)
            .all(|l| l.owner.is_none())
    );
    assert_consistent(&m);
}

#[test]
fn exact_listener_beats_wildcard() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.listen(task(1, "wild"), 0x10, "0.0.0.0:8080")
        .listen(task(2, "exact"), 0x11, "10.0.0.5:8080")
        .accept(swapper(), 0x30, "10.0.0.5:8080", "10.0.0.77:50000")
        .accept(swapper(), 0x31, "10.0.0.6:8080", "10.0.0.77:50001")
        .run(&mut m);
    let ls = m.listeners(10, 10);
    let by = |a: &str| ls.iter().find(|l| l.local == addr(a)).unwrap().accepted;
    assert_eq!((by("10.0.0.5:8080"), by("0.0.0.0:8080")), (1, 1));
    assert_consistent(&m);
}

#[test]
fn time_wait_keeps_the_connection_owner() {
    let app = task(200, "client");
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(app, 0x20, "10.0.0.1", 40000, "10.0.0.9:80")
        .active_close(
            task(555, "other"),
            0x20,
            0x99,
            "10.0.0.1:40000",
            "10.0.0.9:80",
        )
        .run(&mut m);
    let key = pool("10.0.0.1", "10.0.0.9:80");
    let socks = m.pool_sockets(&key, s.now(), 10);
    assert_eq!(socks.len(), 1);
    assert!(socks[0].timewait);
    assert_eq!(socks[0].owner.as_ref().map(|o| o.pid), Some(200));
    // The server side's TIME_WAIT (server closed first) keeps the listener's owner.
    s.listen(task(100, "srv"), 0x10, "0.0.0.0:8080")
        .accept(swapper(), 0x30, "10.0.0.1:8080", "10.0.0.2:50000")
        .active_close(swapper(), 0x30, 0x98, "10.0.0.1:8080", "10.0.0.2:50000")
        .run(&mut m);
    let l = m.listeners(10, 10);
    assert_eq!(
        l[0].states.get(FinWait2),
        1,
        "FIN_WAIT2 substate timewait: {:?}",
        l[0].states
    );
    let tw = m.port_holders(NETNS, 8080, s.now());
    assert_eq!(tw.len(), 1, "only the listener holds the port by bind");
    let p = m.processes(10);
    let srv = p.iter().find(|p| p.process.pid == 100).unwrap();
    assert_eq!(srv.sockets, 2, "listener + server-side timewait");
    assert_consistent(&m);
}

#[test]
fn failed_connect_names_owner_of_unowned_socket() {
    let mut m = Model::default();
    let mut s = Seq::new();
    // Seen mid-life (no owner), then the owner's own connect() fails on it (EISCONN).
    s.state(
        swapper(),
        0x20,
        "10.0.0.1:40000",
        "10.0.0.9:80",
        SynSent,
        Established,
    )
    .call_err(
        task(9, "app"),
        CallKind::Connect,
        Some(0x20),
        "10.0.0.9:80",
        libc::EISCONN,
    )
    .run(&mut m);
    let key = pool("10.0.0.1", "10.0.0.9:80");
    assert_eq!(owner_pid(&m, &key, s.now()), vec![Some(9)]);
    assert_consistent(&m);
}

#[test]
fn snapshot_owners_for_pre_existing_sockets() {
    let mut m = Model::default();
    let snap = snapshot(
        500 * SEC,
        None,
        vec![
            snap_sock("10.0.0.1:443", "0.0.0.0:0", Listen, Some((300, "nginx"))),
            snap_sock("10.0.0.1:443", "10.0.0.2:50000", Established, None),
            snap_sock(
                "10.0.0.1:443",
                "10.0.0.3:50000",
                Established,
                Some((301, "nginx")),
            ),
            snap_sock(
                "10.0.0.1:40000",
                "10.0.0.9:5432",
                Established,
                Some((400, "app")),
            ),
            snap_sock("10.0.0.1:40001", "10.0.0.9:5432", TimeWait, None),
        ],
    );
    m.load_snapshot(&snap, 500 * SEC);
    let p = m.processes(10);
    let pid = |pid: u32| p.iter().find(|p| p.process.pid == pid).map(|p| p.sockets);
    assert_eq!(
        pid(300),
        Some(2),
        "listener + accepted socket with no owner of its own"
    );
    assert_eq!(pid(301), Some(1), "the fd holder named by /proc wins");
    assert_eq!(pid(400), Some(1));
    let key = pool("10.0.0.1", "10.0.0.9:5432");
    let socks = m.pool_sockets(&key, 500 * SEC, 10);
    assert!(socks.iter().all(|s| s.age_is_lower_bound));
    // Later events adopt the snapshot socket by 4-tuple and keep its owner.
    let mut s = Seq::new();
    s.state(
        swapper(),
        0x20,
        "10.0.0.1:40000",
        "10.0.0.9:5432",
        Established,
        FinWait1,
    )
    .run(&mut m);
    let socks = m.pool_sockets(&key, s.now(), 10);
    let adopted = socks.iter().find(|s| s.state == FinWait1).unwrap();
    assert_eq!(adopted.owner.as_ref().map(|o| o.pid), Some(400));
    assert_eq!(adopted.sk, Some(0x20));
    assert_eq!(m.counters().snapshot_sockets_adopted, 1);
    assert_eq!(m.counters().snapshot_sockets_loaded, 5);
    assert_eq!(m.counters().odd.unknown_socket, 0);
    assert_consistent(&m);
}

#[test]
fn short_lived_processes_group_by_comm_and_parent() {
    let mut m = Model::default();
    let mut s = Seq::new();
    for i in 0..5u16 {
        let curl = child_task(1000 + u32::from(i), 42, "curl");
        let sk = 0x100 + u64::from(i);
        let local = format!("10.0.0.1:{}", 40000 + i);
        s.connect(curl, sk, "10.0.0.1", 40000 + i, "10.0.0.9:443")
            .active_close(curl, sk, 0x900 + u64::from(i), &local, "10.0.0.9:443");
    }
    s.connect(
        child_task(2000, 43, "curl"),
        0x200,
        "10.0.0.1",
        41000,
        "10.0.0.9:443",
    )
    .run(&mut m);
    let g = m.process_groups(10);
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0].ppid, g[0].processes, g[0].sockets, g[0].connects),
        (42, 5, 5, 5)
    );
    assert_eq!(g[0].outbound_states.get(FinWait2), 5);
    assert_eq!((g[1].ppid, g[1].processes), (43, 1));
    assert_consistent(&m);
}

#[test]
fn exec_starts_a_new_process_entry() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(5, "sh"), 0x20, "10.0.0.1", 40000, "10.0.0.9:80")
        .connect(task(5, "curl"), 0x21, "10.0.0.1", 40001, "10.0.0.9:80")
        .run(&mut m);
    let p = m.processes(10);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|p| p.sockets == 1 && p.process.pid == 5));
    assert_consistent(&m);
}

#[test]
fn port_holders_include_outbound_sockets_using_the_port() {
    let mut m = Model::default();
    let mut s = Seq::new();
    // A client took 8080 as its source port (it is inside the connect range here).
    m.set_sysctls(NETNS, sysctls((8000, 8999), &[], 2));
    s.connect(task(5, "curl"), 0x20, "10.0.0.1", 8080, "10.0.0.9:443")
        .accept(swapper(), 0x30, "10.0.0.1:9090", "10.0.0.2:50000")
        .run(&mut m);
    let h = m.port_holders(NETNS, 8080, s.now());
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].owner.as_ref().map(|o| o.pid), Some(5));
    assert_eq!(h[0].remote, addr("10.0.0.9:443"));
    // Its TIME_WAIT still holds it.
    s.active_close(task(5, "curl"), 0x20, 0x99, "10.0.0.1:8080", "10.0.0.9:443")
        .run(&mut m);
    let h = m.port_holders(NETNS, 8080, s.now());
    assert_eq!((h.len(), h[0].timewait), (1, true));
    // Accepted sockets are not listed (their listener is).
    assert!(m.port_holders(NETNS, 9090, s.now()).is_empty());
    assert_consistent(&m);
}
