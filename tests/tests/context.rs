//! The system context readers against `ss` and `/proc`, each test in a fresh network
//! namespace of its own.

use std::{
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::OwnedFd,
    time::Duration,
};

use portwatch::{
    context::{self, Options, Owner, SnapSocket, Sysctls, sysctl},
    event::TcpState,
};
use portwatch_tests::{netns::NetnsGuard, require_root, sockets, ss};

/// Sockets kept open in a test namespace, and what we know about them.
struct Scene {
    listeners: Vec<TcpListener>,
    streams: Vec<TcpStream>,
    bound: Vec<(OwnedFd, SocketAddr)>,
    time_wait: usize,
}

/// A v4 and a v6 listener with established connections, TIME_WAIT sockets (the client
/// closes first) and a bound-only socket each, all on the namespace's loopback.
fn build_scene(ns: &NetnsGuard, established: usize, time_wait: usize) -> Scene {
    let scene = ns.enter(|| {
        let mut scene = Scene {
            listeners: Vec::new(),
            streams: Vec::new(),
            bound: Vec::new(),
            time_wait: 0,
        };
        for (listen, any) in [("127.0.0.1:5000", "127.0.0.1:0"), ("[::1]:5001", "[::1]:0")] {
            let l = TcpListener::bind(listen).expect("listen");
            for _ in 0..established {
                let c = TcpStream::connect(listen).expect("connect");
                let (a, _) = l.accept().expect("accept");
                scene.streams.extend([c, a]);
            }
            scene.bound.push(sockets::bound_only(any.parse().unwrap()));
            // Last, so that no later connect() to this destination may reuse their ports.
            for _ in 0..time_wait {
                let c = TcpStream::connect(listen).expect("connect");
                let (mut a, _) = l.accept().expect("accept");
                drop(c); // the client closes first: its side goes to TIME_WAIT
                let mut byte = [0u8; 1];
                assert_eq!(a.read(&mut byte).expect("read the FIN"), 0);
                drop(a);
                scene.time_wait += 1;
            }
            scene.listeners.push(l);
        }
        scene
    });
    wait_settled(ns, scene.time_wait);
    scene
}

/// Waits (bounded) until only stable states remain: no FIN_WAIT/LAST_ACK/… in flight.
fn wait_settled(ns: &NetnsGuard, time_wait: usize) {
    use TcpState::*;
    for _ in 0..500 {
        let now = ss::parse(&ns.exec(&["ss", "-tanH"]));
        let tw = now.iter().filter(|s| s.0 == TimeWait).count();
        if tw == time_wait
            && now
                .iter()
                .all(|s| matches!(s.0, Listen | Established | TimeWait))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("sockets in {} did not settle in 5 s", ns.name);
}

fn set_port_sysctls(ns: &NetnsGuard) {
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40009");
    ns.set_sysctl("net/ipv4/ip_local_reserved_ports", "40001-40002");
    ns.set_sysctl("net/ipv4/tcp_tw_reuse", "1");
    ns.set_sysctl("net/ipv4/tcp_fin_timeout", "17");
    ns.set_sysctl("net/ipv4/tcp_max_tw_buckets", "1000");
}

/// The sysctls as a process inside the namespace reads them.
fn sysctls_via_exec(ns: &NetnsGuard) -> Sysctls {
    let get = |k: &str| ns.cat(&format!("/proc/sys/net/ipv4/{k}"));
    Sysctls {
        port_range: sysctl::parse_port_range(&get("ip_local_port_range")).unwrap(),
        reserved_ports: sysctl::parse_reserved_ports(&get("ip_local_reserved_ports")).unwrap(),
        tw_reuse: sysctl::parse_number(&get("tcp_tw_reuse")).unwrap(),
        max_tw_buckets: sysctl::parse_number(&get("tcp_max_tw_buckets")).unwrap(),
        fin_timeout_s: sysctl::parse_number(&get("tcp_fin_timeout")).unwrap(),
        timestamps: sysctl::parse_number(&get("tcp_timestamps")).unwrap(),
        tw_overflow: sysctl::netstat_value(
            &ns.cat("/proc/net/netstat"),
            "TcpExt",
            "TCPTimeWaitOverflow",
        )
        .unwrap(),
    }
}

fn key(s: &SnapSocket) -> ss::SsSocket {
    (s.state, s.local, s.remote)
}

#[test]
fn snapshot_matches_ss_with_owners_and_namespace_sysctls() {
    require_root();
    let ns = NetnsGuard::new("pw-ctx");
    set_port_sysctls(&ns);
    let scene = build_scene(&ns, 2, 2);

    // The whole system, as the tool takes it.
    let report = context::take(&Options::default()).expect("snapshot");
    let ss_now = ss::parse(&ns.exec(&["ss", "-tanH"]));
    assert!(
        !report.skipped.iter().any(|s| s.netns == ns.inode),
        "{:?}",
        report.skipped
    );
    let snap = report
        .snapshot
        .netns(ns.inode)
        .expect("the test namespace is in the snapshot");
    assert!(snap.sockets.iter().all(|s| s.netns == ns.inode));

    // Exactly what ss sees (ss 6.1 does not show bound-inactive sockets).
    let mut ours: Vec<_> = snap
        .sockets
        .iter()
        .filter(|s| s.state != TcpState::BoundInactive)
        .map(key)
        .collect();
    let mut theirs = ss_now.clone();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let count = |st| ours.iter().filter(|s| s.0 == st).count();
    assert_eq!(count(TcpState::Listen), 2);
    assert_eq!(count(TcpState::Established), 8);
    assert_eq!(count(TcpState::TimeWait), scene.time_wait);

    // Bound-only sockets, with their inodes.
    let mut bound: Vec<(SocketAddr, u64)> = snap
        .sockets
        .iter()
        .filter(|s| s.state == TcpState::BoundInactive)
        .map(|s| (s.local, s.inode))
        .collect();
    let mut want: Vec<(SocketAddr, u64)> = scene
        .bound
        .iter()
        .map(|(fd, addr)| (*addr, sockets::inode(fd)))
        .collect();
    bound.sort();
    want.sort();
    assert_eq!(bound, want);

    // Owners: us, for every socket with a file; none for TIME_WAIT.
    let me = Owner {
        pid: std::process::id(),
        comm: std::fs::read_to_string("/proc/self/comm")
            .unwrap()
            .trim_end()
            .to_string(),
        cgroup: portwatch::context::cgroups::unified_root()
            .and_then(|r| portwatch::context::cgroups::of_pid(&r, std::process::id()))
            .map_or(0, |(_, id)| id),
    };
    for s in &snap.sockets {
        if s.state == TcpState::TimeWait {
            assert_eq!((s.inode, &s.owner), (0, &None), "{s:?}");
        } else {
            assert_ne!(s.inode, 0, "{s:?}");
            assert_eq!(s.owner.as_ref(), Some(&me), "{s:?}");
        }
    }
    for l in &scene.listeners {
        let inode = sockets::inode(l);
        let found = snap.sockets.iter().find(|s| s.inode == inode).unwrap();
        assert_eq!(
            (found.state, found.local),
            (TcpState::Listen, l.local_addr().unwrap())
        );
    }
    for st in &scene.streams {
        let inode = sockets::inode(st);
        let found = snap.sockets.iter().find(|s| s.inode == inode).unwrap();
        assert_eq!(found.local, st.local_addr().unwrap());
        assert_eq!(found.remote, st.peer_addr().unwrap());
    }

    // This namespace's sysctls, not the host's.
    let sysctls = snap.sysctls.clone().expect("sysctls read");
    assert_eq!(sysctls.port_range, (40000, 40009));
    assert_eq!(sysctls.reserved_ports, vec![(40001, 40002)]);
    assert_eq!((sysctls.tw_reuse, sysctls.fin_timeout_s), (1, 17));
    assert_eq!(sysctls.max_tw_buckets, 1000);
    assert_eq!(sysctls, sysctls_via_exec(&ns));
    assert_eq!(context::sysctls_of(ns.inode).unwrap(), sysctls);
    // The kernel honoured them: every client port in range, none reserved.
    for s in &snap.sockets {
        if matches!(s.remote.port(), 5000 | 5001) || s.state == TcpState::BoundInactive {
            let p = s.local.port();
            assert!(
                (40000..=40009).contains(&p) && !(40001..=40002).contains(&p),
                "{s:?}"
            );
        }
    }
    let host_inode = context::netns::current_inode().unwrap();
    let host = report
        .snapshot
        .netns(host_inode)
        .expect("our own namespace");
    let host_range = sysctl::parse_port_range(
        &std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap(),
    )
    .unwrap();
    assert_eq!(host.sysctls.as_ref().unwrap().port_range, host_range);
    assert_ne!(
        host_range, sysctls.port_range,
        "the host has the test's range?"
    );
    drop(scene);
}

#[test]
fn time_wait_overflow_is_counted_per_namespace() {
    require_root();
    let ns = NetnsGuard::new("pw-ctx");
    ns.set_sysctl("net/ipv4/tcp_max_tw_buckets", "1");
    // 3 client-first closes, room for 1 timewait socket: 2 overflows.
    let scene = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:5000").unwrap();
        for _ in 0..3 {
            let c = TcpStream::connect("127.0.0.1:5000").unwrap();
            let (mut a, _) = l.accept().unwrap();
            drop(c);
            assert_eq!(a.read(&mut [0u8; 1]).unwrap(), 0);
        }
        l
    });
    wait_settled(&ns, 1);
    let opts = Options {
        only_netns: Some(vec![ns.inode]),
        ..Options::default()
    };
    let snap = context::snapshot(&opts).unwrap();
    assert_eq!(snap.namespaces.len(), 1);
    let sysctls = snap.namespaces[0].sysctls.clone().unwrap();
    assert_eq!(sysctls.max_tw_buckets, 1);
    assert_eq!(sysctls.tw_overflow, 2);
    assert_eq!(sysctls, sysctls_via_exec(&ns));
    drop(scene);
}

#[test]
fn counts_agree_with_the_snapshot() {
    require_root();
    let ns = NetnsGuard::new("pw-ctx");
    let scene = build_scene(&ns, 3, 2);
    let opts = Options {
        only_netns: Some(vec![ns.inode]),
        ..Options::default()
    };
    let (counts, skipped) = context::take_counts(&opts).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(counts.len(), 1);
    let c = &counts[0];
    assert_eq!(c.netns, ns.inode);

    let snap = context::snapshot(&opts).unwrap();
    for state in TcpState::ALL {
        let n = snap.namespaces[0]
            .sockets
            .iter()
            .filter(|s| s.state == state)
            .count();
        assert_eq!(c.states.get(state) as usize, n, "{state}");
    }
    assert_eq!(c.states.get(TcpState::BoundInactive), 2);
    // Server sides are accepted, not pools; each destination is one pool.
    assert_eq!(c.accepted.get(TcpState::Established), 6);
    assert_eq!(c.accepted.total(), 6);
    let pools: Vec<(String, u16, u32, u32)> = c
        .pools
        .iter()
        .map(|p| {
            assert_eq!(p.pool.src, p.pool.dst);
            (
                p.pool.dst.to_string(),
                p.pool.dst_port,
                p.states.get(TcpState::Established),
                p.states.get(TcpState::TimeWait),
            )
        })
        .collect();
    assert_eq!(
        pools,
        vec![("127.0.0.1".into(), 5000, 3, 2), ("::1".into(), 5001, 3, 2)]
    );
    drop(scene);
}

#[test]
fn an_unknown_namespace_is_reported_not_fatal() {
    require_root();
    let opts = Options {
        only_netns: Some(vec![1]),
        ..Options::default()
    };
    let report = context::take(&opts).unwrap();
    assert!(report.snapshot.namespaces.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].netns, 1);
    assert!(context::sysctls_of(1).is_err());
}
