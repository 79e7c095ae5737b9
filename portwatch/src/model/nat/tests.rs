//! NAT pools from synthetic conntrack readings fed as inputs: what the pools count (in use,
//! evictable, blocking, capacity from the rule), who they name (the client's namespace and
//! process, from the model's own pools), what the explain engine makes of them, and that a
//! reading survives the recording's context record unchanged.

use std::net::IpAddr;

use super::{ConntrackReading, CtStats, NatDump, NatGroup, NatKind, NatRule};
use crate::{
    explain::{Cause, Severity, explain},
    model::{Input, Model, Stamped, testutil::*},
    record::ContextRecord,
};

const ROUTER: u32 = NETNS + 1;
const POD_IP: &str = "198.18.1.2";
const NAT_IP: &str = "198.18.2.1";
const REMOTE: &str = "198.18.2.2:80";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn masquerade_to_ten_ports() -> NatRule {
    NatRule {
        kind: NatKind::Masquerade,
        source: "nft".into(),
        table: "nat".into(),
        chain: "post".into(),
        handle: 2,
        addr_min: None,
        addr_max: None,
        port_min: Some(40000),
        port_max: Some(40009),
        random: false,
        random_fully: false,
        persistent: false,
        partial: false,
    }
}

/// The router's reading: `established` + `time_wait` entries of the pod's flow to REMOTE,
/// and the cumulative `insert_failed` (= `drop`: TCP SYNs that found no port).
pub(crate) fn reading(
    at_ns: u64,
    established: u32,
    time_wait: u32,
    insert_failed: u64,
) -> ConntrackReading {
    let mut states = [0; 11];
    states[3] = established;
    states[7] = time_wait;
    ConntrackReading {
        netns: ROUTER,
        taken_at_ns: at_ns,
        stats: CtStats {
            insert_failed,
            drop: insert_failed,
            ..Default::default()
        },
        count: established + time_wait,
        max: 262_144,
        rules: vec![masquerade_to_ten_ports()],
        dump: Some(NatDump {
            entries: u64::from(established + time_wait),
            kernel_filtered: true,
            groups: vec![NatGroup {
                proto: 6,
                nat_ip: ip(NAT_IP),
                dst: REMOTE.parse().unwrap(),
                orig_src_ip: ip(POD_IP),
                orig_dst: REMOTE.parse().unwrap(),
                states,
                port_min: 40000,
                port_max: 40000 + (established + time_wait) as u16 - 1,
                orig_ports: vec![50000],
            }],
            ..Default::default()
        }),
    }
}

/// The pod (NETNS): python3 (pid 7) with 10 connections established through the NAT and 5
/// waiting in SYN_SENT.
pub(crate) fn pod() -> Model {
    let mut m = Model::default();
    let mut socks: Vec<_> = (0..10)
        .map(|i| {
            let local = format!("{POD_IP}:{}", 50000 + i);
            snap_sock(&local, REMOTE, Established, Some((7, "python3")))
        })
        .collect();
    socks.extend((10..15).map(|i| {
        let local = format!("{POD_IP}:{}", 50000 + i);
        snap_sock(&local, REMOTE, SynSent, Some((7, "python3")))
    }));
    let snap = snapshot(SEC, Some(sysctls((32768, 60999), &[], 2)), socks);
    m.feed(&Input::Startup(Stamped::new(SEC, snap)));
    m
}

#[test]
fn a_full_nat_pool_names_the_client_behind_it() {
    let mut m = pod();
    m.feed(&Input::Conntrack(Box::new(reading(2 * SEC, 10, 0, 0))));
    m.feed(&Input::Conntrack(Box::new(reading(3 * SEC, 10, 0, 5))));
    assert_eq!(m.now_ns(), 3 * SEC, "a reading moves the clock");

    let pools = m.nat_pools(3 * SEC);
    assert_eq!(pools.len(), 1);
    let p = &pools[0];
    let got = (p.netns, p.in_use, p.evictable, p.blocking, p.capacity.ports);
    assert_eq!(got, (ROUTER, 10, 0, 10, 10));
    assert_eq!(
        (p.insert_failed, p.drop),
        (5, 5),
        "growth since the first reading"
    );
    assert_eq!(p.time_to_exhaustion_s, Some(0.0));
    let c = &p.clients[0];
    assert_eq!(
        (c.orig_src_ip, c.netns, c.syn_sent),
        (ip(POD_IP), Some(NETNS), 5)
    );
    assert_eq!(m.conntrack()[0].since_start.insert_failed, 5);

    let findings = explain(&m, 3 * SEC);
    let f = findings
        .iter()
        .find(|f| f.cause == Cause::SnatExhaustion)
        .unwrap_or_else(|| panic!("no snat_exhaustion: {findings:#?}"));
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!((f.netns, f.nat_netns), (NETNS, Some(ROUTER)));
    assert_eq!((f.pid, f.comm.as_deref()), (Some(7), Some("python3")));
    assert_eq!((f.in_use, f.capacity), (Some(10), Some(10)));
    assert!(
        !findings.iter().any(|f| f.cause == Cause::SynSentPileup),
        "the SYN_SENT pile-up is the NAT's: {findings:#?}"
    );
}

#[test]
fn time_wait_entries_do_not_block_a_nat_pool() {
    // 10 entries, 8 of them in TIME_WAIT: new connections take those ports over
    // (nf_nat_used_tuple_harder, docs/nat.md), nothing is dropped.
    let mut m = pod();
    m.feed(&Input::Conntrack(Box::new(reading(2 * SEC, 2, 8, 0))));
    let p = &m.nat_pools(2 * SEC)[0];
    assert_eq!((p.in_use, p.evictable, p.blocking), (10, 8, 2));
    let findings = explain(&m, 2 * SEC);
    assert!(
        !findings.iter().any(|f| f.cause == Cause::SnatExhaustion),
        "{findings:#?}"
    );
}

#[test]
fn a_reading_is_one_context_record_and_comes_back_unchanged() {
    let input = Input::Conntrack(Box::new(reading(2 * SEC, 10, 0, 5)));
    let rec = ContextRecord::Input(input.clone());
    assert_eq!(rec.kind(), "conntrack");
    let json = rec.body_json().unwrap();
    let back = ContextRecord::from_parts("conntrack", &json).unwrap();
    assert_eq!(back, rec);
    assert_eq!(input.at_ns(), 2 * SEC);
}
