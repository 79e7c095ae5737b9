//! The kernel pipeline end to end: real programs, real sockets in a fresh network namespace
//! per test, exact events. Root only; these fail without it.

use std::{
    io::{Read, Write},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    thread,
    time::Duration,
};

use portwatch::{
    collect::Options,
    event::{CallKind, Errno, EventKind, SockCall, TcpState::*, TwOp},
};
use portwatch_tests::*;
use socket2::{Domain, Socket, Type};

const WAIT: Duration = Duration::from_secs(10);

fn only(netns: u32) -> Options {
    Options {
        netns: Some(netns),
        ..Options::default()
    }
}

fn calls(events: &[portwatch::event::Event]) -> Vec<(&portwatch::event::Event, &SockCall)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Call(c) => Some((e, c)),
            _ => None,
        })
        .collect()
}

/// A client connects, sends, closes first; the server reads EOF, waits, closes.
fn lifecycle(ip: &str) {
    let ns = Netns::new("pw-life");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let tracer = Tracer::start(only(ns.inode));
    let server_addr = SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 8080);
    let (tid, client_local) = ns.run(move || {
        let listener = TcpListener::bind(server_addr).unwrap();
        let mut client = TcpStream::connect(server_addr).unwrap();
        let client_local = client.local_addr().unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        server.read_exact(&mut buf).unwrap();
        drop(client); // the client closes first
        assert_eq!(
            server.read(&mut buf).unwrap(),
            0,
            "EOF after the client's FIN"
        );
        thread::sleep(Duration::from_millis(200)); // the client's FIN is ACKed first
        drop(server);
        drop(listener);
        (gettid(), client_local)
    });
    assert!(
        tracer.wait_for(WAIT, |ev| {
            states(ev).any(|(_, s)| (s.old, s.new) == (LastAck, Close))
                && states(ev).any(|(_, s)| (s.old, s.new) == (Listen, Close))
                && timewaits(ev).count() >= 1
        }),
        "the connection's last transitions never arrived: {:#?}",
        tracer.events()
    );
    let (events, counters) = tracer.stop();
    assert!(
        events.iter().all(|e| e.netns == ns.inode),
        "the kernel filter lets only our namespace through"
    );
    let me = std::process::id();

    // The listener: bound by us, then LISTEN, then closed.
    let bind = calls(&events)
        .into_iter()
        .find(|(_, c)| c.call == CallKind::Bind)
        .expect("bind event");
    assert_eq!(bind.1.error, None);
    assert_eq!(bind.1.addr, server_addr);
    assert_eq!(bind.1.bound_port, Some(8080));
    assert_eq!((bind.0.task.pid, bind.0.task.tid), (me, tid));
    let listener = sk_with(&events, Close, Listen, Some(server_addr), None).expect("CLOSE->LISTEN");
    assert_eq!(
        bind.1.sk,
        Some(listener),
        "the bind names the listener's socket"
    );
    assert_eq!(
        transitions_of(&events, listener),
        vec![(Close, Listen), (Listen, Close)]
    );

    // The client: our pid in connect(), source port 0 before the port is chosen.
    let client = sk_with(
        &events,
        SynSent,
        Established,
        Some(client_local),
        Some(server_addr),
    )
    .expect("client ESTABLISHED");
    assert_eq!(
        transitions_of(&events, client),
        vec![
            (Close, SynSent),
            (SynSent, Established),
            (Established, FinWait1),
            (FinWait1, FinWait2),
            (FinWait2, Close)
        ]
    );
    let (syn_ev, syn) = states(&events).find(|(_, s)| s.sk == client).unwrap();
    assert_eq!(
        (syn_ev.task.pid, syn_ev.task.tid),
        (me, tid),
        "connect() runs in the owner's context"
    );
    assert_eq!(
        syn.local,
        SocketAddr::new(server_addr.ip(), 0),
        "sport is 0 until connect() picks one"
    );
    assert_eq!(syn.remote, server_addr);
    let (_, close) = states(&events)
        .filter(|(_, s)| s.sk == client)
        .last()
        .unwrap();
    assert_eq!(
        (close.local, close.remote),
        (client_local, server_addr),
        "the port is still shown at CLOSE"
    );

    // The accepted socket.
    let child = sk_with(
        &events,
        Listen,
        SynRecv,
        Some(server_addr),
        Some(client_local),
    )
    .expect("child SYN_RECV");
    assert_eq!(
        transitions_of(&events, child),
        vec![
            (Listen, SynRecv),
            (SynRecv, Established),
            (Established, CloseWait),
            (CloseWait, LastAck),
            (LastAck, Close)
        ]
    );
    let sockets: std::collections::BTreeSet<u64> = states(&events).map(|(_, s)| s.sk).collect();
    assert_eq!(
        sockets.len(),
        3,
        "listener, client, child and nothing else: {events:#?}"
    );

    // TIME_WAIT: the client closed first, so its 4-tuple goes to a timewait socket, which
    // starts in the FIN_WAIT2 substate (the server's FIN has not come yet).
    assert_one_timewait(&events, client_local, server_addr, FinWait2);
    assert_eq!(
        timewaits(&events)
            .filter(|(_, t)| t.local != client_local)
            .count(),
        0
    );

    assert_nothing_lost(&counters);
    assert_eq!(
        counters.state.received + counters.state.duplicates,
        counters.state.seen
    );
    assert_eq!(counters.state.seen, 12, "{counters:?}");
}

#[test]
fn client_closes_first_ipv4() {
    lifecycle("127.0.0.1");
}

#[test]
fn client_closes_first_ipv6() {
    lifecycle("::1");
}

#[test]
fn exhaustion_fails_with_eaddrnotavail_and_source_port_zero() {
    let ns = Netns::new("pw-exh");
    ns.sysctl("net.ipv4.ip_local_port_range", "40000 40009");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let tracer = Tracer::start(only(ns.inode));
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let (ports, tid, bind_fd) = ns.run(move || {
        let _listener = TcpListener::bind(dst).unwrap();
        let mut held = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..20 {
            match TcpStream::connect(dst) {
                Ok(s) => {
                    ports.push(s.local_addr().unwrap().port());
                    held.push(s);
                }
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e}");
                    break;
                }
            }
        }
        // No port left for bind(port 0) either.
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let err = s
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
        (ports, gettid(), s.as_raw_fd())
    });
    // Ten ports, even ones first (connect() leaves odd ones to bind()).
    let mut sorted = ports.clone();
    sorted.sort();
    assert_eq!(sorted, (40000..=40009).collect::<Vec<u16>>(), "{ports:?}");
    assert!(
        ports[..5].iter().all(|p| p % 2 == 0) && ports[5..].iter().all(|p| p % 2 == 1),
        "{ports:?}"
    );

    let me = std::process::id();
    assert!(
        tracer.wait_for(WAIT, |ev| calls(ev).len() >= 3),
        "{:#?}",
        tracer.events()
    );
    let (events, counters) = tracer.stop();
    let failed: Vec<_> = calls(&events)
        .into_iter()
        .filter(|(_, c)| c.error == Some(Errno(libc::EADDRNOTAVAIL)))
        .collect();
    assert_eq!(failed.len(), 1, "{events:#?}");
    let (ev, c) = failed[0];
    assert_eq!((c.call, c.addr), (CallKind::Connect, dst));
    assert_eq!((ev.task.pid, ev.task.tid), (me, tid));
    let sk = c.sk.expect("the failed connect names its socket");
    let tr: Vec<_> = states(&events).filter(|(_, s)| s.sk == sk).collect();
    assert_eq!(
        tr.iter().map(|(_, s)| (s.old, s.new)).collect::<Vec<_>>(),
        vec![(Close, SynSent), (SynSent, Close)]
    );
    for (e, s) in tr {
        assert_eq!(s.local.port(), 0, "no source port was found: {s:?}");
        assert_eq!(s.remote, dst);
        assert_eq!(e.task.pid, me, "the failure runs in the caller's context");
    }
    let (bev, b) = calls(&events)
        .into_iter()
        .find(|(_, c)| c.call == CallKind::Bind && c.error.is_some())
        .expect("bind failure");
    assert_eq!(b.error, Some(Errno(libc::EADDRINUSE)));
    assert_eq!(b.addr, "127.0.0.1:0".parse().unwrap());
    assert_eq!((bev.task.pid, b.fd), (me, bind_fd));
    assert_nothing_lost(&counters);
}

#[test]
fn bind_conflict_reports_address_port_and_pid() {
    let ns = Netns::new("pw-bind");
    let tracer = Tracer::start(only(ns.inode));
    let addr: SocketAddr = "127.0.0.1:9090".parse().unwrap();
    let (tid, fd) = ns.run(move || {
        let _listener = TcpListener::bind(addr).unwrap();
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let err = s.bind(&addr.into()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
        (gettid(), s.as_raw_fd())
    });
    assert!(tracer.wait_for(WAIT, |ev| calls(ev).iter().any(|(_, c)| c.error.is_some())));
    let (events, _) = tracer.stop();
    let (ev, c) = calls(&events)
        .into_iter()
        .find(|(_, c)| c.error.is_some())
        .unwrap();
    assert_eq!(c.call, CallKind::Bind);
    assert_eq!(c.error, Some(Errno(libc::EADDRINUSE)));
    assert_eq!(c.addr, addr);
    assert_eq!(c.fd, fd);
    assert_eq!(
        (ev.task.pid, ev.task.tid, ev.netns),
        (std::process::id(), tid, ns.inode)
    );
    assert!(c.sk.is_some(), "the socket is resolved from the fd");
}

/// Client bound to 127.0.0.1:40000 connects to 127.0.0.1:8080 and closes first.
fn fixed_tuple_connection(reuse: bool) {
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.set_reuse_address(true).unwrap();
    listener.bind(&dst.into()).unwrap();
    listener.listen(16).unwrap();
    let listener: TcpListener = listener.into();
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_reuse_address(reuse).unwrap();
    s.bind(&src.into()).unwrap();
    s.connect(&dst.into()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    drop(s);
    let mut buf = [0u8; 1];
    assert_eq!(server.read(&mut buf).unwrap(), 0);
    thread::sleep(Duration::from_millis(100));
}

#[test]
fn identical_tuples_in_two_namespaces_are_told_apart() {
    let a = Netns::new("pw-twin");
    let b = Netns::new("pw-twin");
    let tracer = Tracer::start(Options::default());
    a.run(|| fixed_tuple_connection(false));
    b.run(|| fixed_tuple_connection(false));
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let ok = tracer.wait_for(WAIT, |ev| {
        [a.inode, b.inode].iter().all(|&n| {
            let mine = in_netns(ev, n);
            timewaits(&mine).any(|(_, t)| t.local == src)
                && states(&mine).any(|(_, s)| (s.old, s.new, s.local) == (FinWait2, Close, src))
        })
    });
    let (events, counters) = tracer.stop();
    assert!(ok, "timewait in both namespaces: {counters:?} {events:#?}");
    assert_ne!(a.inode, b.inode);
    for ns in [&a, &b] {
        let mine = in_netns(&events, ns.inode);
        // Bound before connect: the source port is known at SYN_SENT already.
        let sk = sk_with(&mine, Close, SynSent, Some(src), Some(dst))
            .expect("SYN_SENT in this namespace");
        assert_eq!(
            transitions_of(&mine, sk),
            vec![
                (Close, SynSent),
                (SynSent, Established),
                (Established, FinWait1),
                (FinWait1, FinWait2),
                (FinWait2, Close)
            ]
        );
        assert_one_timewait(&mine, src, dst, FinWait2);
        assert!(mine.iter().all(|e| e.netns == ns.inode));
    }
}

#[test]
fn timewait_reuse_ends_it_early() {
    let ns = Netns::new("pw-reuse");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "1");
    ns.sysctl("net.ipv4.tcp_timestamps", "1");
    let tracer = Tracer::start(only(ns.inode));
    ns.run(|| fixed_tuple_connection(true));
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    assert!(tracer.wait_for(WAIT, |ev| timewaits(ev).any(|(_, t)| t.local == src)));
    // tcp_tw_reuse takes a timewait socket whose last timestamp is at least a second old.
    thread::sleep(Duration::from_millis(2100));
    ns.run(|| fixed_tuple_connection(true));
    assert!(tracer.wait_for(WAIT, |ev| timewaits(ev).any(|(_, t)| t.op == TwOp::Cancel)));
    let (events, _) = tracer.stop();
    let first = timewaits(&events).next().unwrap().1.tw;
    let ops: Vec<_> = timewaits(&events)
        .filter(|(_, t)| t.tw == first)
        .map(|(_, t)| (t.op, t.remaining_jiffies > 0))
        .collect();
    assert_eq!(ops.first(), Some(&(TwOp::Start, true)), "{ops:?}");
    assert!(
        ops.contains(&(TwOp::Cancel, true)),
        "ended early, with time left: {ops:?}"
    );
    assert!(!ops.iter().any(|(op, _)| *op == TwOp::Expire), "{ops:?}");
    let established: Vec<_> = states(&events)
        .filter(|(_, s)| (s.old, s.new) == (SynSent, Established) && s.local == src)
        .collect();
    assert_eq!(established.len(), 2, "the same 4-tuple connected twice");
}

#[test]
fn timewait_expires_after_sixty_seconds() {
    let ns = Netns::new("pw-expire");
    let tracer = Tracer::start(only(ns.inode));
    ns.run(|| fixed_tuple_connection(false));
    let ok = tracer.wait_for(Duration::from_secs(75), |ev| {
        timewaits(ev).any(|(_, t)| t.op == TwOp::Expire)
    });
    assert!(ok, "no expiry within 75 s: {:#?}", tracer.events());
    let (events, _) = tracer.stop();
    let tws: Vec<_> = timewaits(&events).collect();
    let start = tws.first().unwrap();
    let expire = tws.iter().find(|(_, t)| t.op == TwOp::Expire).unwrap();
    assert_eq!(expire.1.tw, start.1.tw);
    let held_s = (expire.0.ts_ns - start.0.ts_ns) as f64 / 1e9;
    // The timer is armed for TCP_TIMEWAIT_LEN = 60*HZ jiffies, so the first record's time left
    // gives HZ. The timer wheel never fires early but rounds a timer up to its level's
    // granularity (kernel/time/timer.c, calc_index), so it may fire up to one granule late:
    // 2.048 s at HZ=250, 4.096 s at HZ=1000, 5.12 s at HZ=100. Add 1 s for the softirq to run
    // on a loaded machine (seen: 62.12 s at HZ=250 in CI).
    let armed = start.1.remaining_jiffies;
    let hz = (f64::from(armed) / 60.0).round();
    assert!(
        [100.0, 250.0, 300.0, 1000.0].contains(&hz),
        "armed for {armed} jiffies: {start:?}"
    );
    let late_s = wheel_granularity_jiffies(armed as u64) as f64 / hz;
    assert!(
        (59.0..60.0 + late_s + 1.0).contains(&held_s),
        "TIME_WAIT held the port {held_s:.2} s (HZ={hz}, the wheel may add {late_s:.3} s)"
    );
    // As it fires, the timer is detached (a cancel with no time left) and then runs.
    let n = tws.len();
    assert!(n >= 3, "{tws:#?}");
    assert_eq!(tws[n - 2].1.op, TwOp::Cancel);
    assert!(tws[n - 2].1.remaining_jiffies <= 0, "{:?}", tws[n - 2].1);
    assert_eq!(tws[n - 1].1.op, TwOp::Expire);
}

/// The granularity, in jiffies, of the timer wheel level that holds a timer `delta` jiffies
/// away: level n starts at 63 << 3(n-1) jiffies and has granules of 8^n (kernel/time/timer.c,
/// LVL_START and LVL_GRAN with LVL_BITS = 6 and LVL_CLK_SHIFT = 3).
fn wheel_granularity_jiffies(delta: u64) -> u64 {
    let mut level = 0u32;
    while level < 8 && delta >= 63u64 << (3 * level) {
        level += 1;
    }
    8u64.pow(level)
}
