//! bind() rules: bind-before-connect and bind conflicts (naming the holder).

use super::{assert_sound, causes, helps, one, sim::Sim};
use crate::{
    event::CallKind,
    explain::{Cause, Severity, explain},
    model::testutil::*,
};

const SRC: &str = "10.0.0.5";

fn dsts() -> Vec<String> {
    (1..=30).map(|i| format!("10.2.0.{i}:443")).collect()
}

#[test]
fn bind_before_connect_across_destinations() {
    let mut sim = Sim::range(40000, 44999, 2);
    let d = dsts();
    let d: Vec<&str> = d.iter().map(String::as_str).collect();
    // 3,000 sockets, 100 per destination: no pool is full, yet 60 % of every pool is gone.
    sim.bind_connect(task(4242, "fetcher"), SRC, &d, 3000, false);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert_eq!(
        causes(&fs),
        vec![(Cause::BindBeforeConnect, Severity::Warning)]
    );
    let f = one(&fs, Cause::BindBeforeConnect);
    assert_eq!((f.pid, f.comm.as_deref()), (Some(4242), Some("fetcher")));
    assert_eq!((f.in_use, f.capacity), (Some(3000), Some(5000)));
    assert_eq!(f.states["ESTABLISHED"], 3000);
    assert!(
        f.evidence
            .contains("30 destinations (at most 100 to any one)"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "ip_bind_address_no_port"), Some(true));
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
    // bind(0) runs out: EADDRINUSE → critical.
    sim.bind_connect(task(4242, "fetcher"), SRC, &d, 2100, false);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::BindBeforeConnect);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.errors["EADDRINUSE"], 100);
    assert!(f.title.contains("no free port"), "{}", f.title);
}

#[test]
fn ip_bind_address_no_port_is_not_bind_before_connect() {
    let mut sim = Sim::range(40000, 44999, 2);
    let d = dsts();
    let d: Vec<&str> = d.iter().map(String::as_str).collect();
    sim.bind_connect(task(4242, "fetcher"), SRC, &d, 3000, true);
    let fs = explain(&sim.m, sim.now());
    assert!(fs.is_empty(), "{fs:#?}");
}

#[test]
fn bind_conflict_names_the_listener() {
    let mut sim = Sim::default_range();
    sim.s
        .bind_ok(task(812, "nginx"), 0x10, "0.0.0.0:8080", 8080)
        .listen(task(812, "nginx"), 0x10, "0.0.0.0:8080")
        .call_err(
            task(990, "node"),
            CallKind::Bind,
            Some(0x20),
            "0.0.0.0:8080",
            libc::EADDRINUSE,
        )
        .call_err(
            task(990, "node"),
            CallKind::Bind,
            Some(0x21),
            "0.0.0.0:8080",
            libc::EADDRINUSE,
        )
        .run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::BindConflict);
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!((f.pid, f.comm.as_deref()), (Some(990), Some("node")));
    assert_eq!(
        f.dst.map(|d| d.to_string()).as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(f.errors["EADDRINUSE"], 2);
    assert_eq!(f.states["LISTEN"], 1);
    assert!(
        f.evidence
            .contains("nginx (pid 812) listens on 0.0.0.0:8080"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "stop_port_holder"), Some(true));
    assert_eq!(helps(f, "reserve_port"), None, "8080 is outside the range");
    // Ten minutes later, nothing new: no longer critical.
    sim.advance(700.0);
    let fs = explain(&sim.m, sim.now());
    assert_eq!(one(&fs, Cause::BindConflict).severity, Severity::Info);
}

#[test]
fn bind_conflict_with_a_client_using_the_port() {
    // A client connection took 45000 as its source port; a service then wants 45000.
    let mut sim = Sim::default_range();
    sim.s
        .connect(task(7, "curl"), 0x30, SRC, 45000, "10.3.0.1:443")
        .call_err(
            task(55, "metrics"),
            CallKind::Bind,
            Some(0x31),
            "0.0.0.0:45000",
            libc::EADDRINUSE,
        )
        .run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = one(&fs, Cause::BindConflict);
    assert!(
        f.evidence
            .contains("curl (pid 7) uses it as the source port"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "reserve_port"), Some(true));
    assert_eq!(helps(f, "stop_port_holder"), None);
}

#[test]
fn bind_conflict_with_nothing_left_suggests_so_reuseaddr() {
    let mut sim = Sim::default_range();
    sim.s
        .call_err(
            task(55, "srv"),
            CallKind::Bind,
            Some(0x31),
            "10.0.0.5:443",
            libc::EADDRINUSE,
        )
        .run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    let f = one(&fs, Cause::BindConflict);
    assert!(
        f.evidence.contains("nothing portwatch sees holds it"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "so_reuseaddr"), Some(true));
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(false));
}

/// What Linux 6.18 did (tests/causes.rs): one process binds 127.0.0.1:0 and connects, 50
/// times, to one destination in a 50-port range, keeping the connections, until bind(0)
/// fails with EADDRINUSE. Every port is held by bind(): the pool toward 127.0.0.1:8080 has
/// capacity 0 and none of its sockets takes one of its ports, so its pressure is
/// bind-before-connect's alone — not "too many concurrent connections", whose remedies
/// (more destinations, more source IPs) would give pools that bind() has emptied too.
#[test]
fn a_pool_emptied_by_bind_before_connect_is_not_concurrency() {
    let mut sim = Sim::range(40000, 40049, 2);
    let fetcher = task(4242, "fetcher");
    sim.bind_connect(fetcher, "127.0.0.1", &["127.0.0.1:8080"], 50, false);
    sim.s.advance(SEC);
    sim.bind_connect(fetcher, "127.0.0.1", &["127.0.0.1:8080"], 3, false);
    sim.s.advance(SEC);
    sim.s.run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let pool = &sim.m.pools(sim.now(), 1)[0];
    assert_eq!(
        (pool.capacity, pool.in_use, pool.time_to_exhaustion_s),
        (0, 0, Some(0.0))
    );
    assert_eq!(
        causes(&fs),
        vec![(Cause::BindBeforeConnect, Severity::Critical)],
        "{fs:#?}"
    );
    let f = one(&fs, Cause::BindBeforeConnect);
    assert_eq!(
        f.dst.map(|d| d.to_string()).as_deref(),
        Some("127.0.0.1:8080")
    );
    assert_eq!(f.errors["EADDRINUSE"], 3);
}
