//! What reading conntrack costs with many SNAT'd entries: makes N entries (default 100,000)
//! in a private namespace through ctnetlink (`IPCTNL_MSG_CT_NEW` with `CTA_NAT_SRC`, as
//! `conntrack -I --src-nat` does, without a process per entry), then times portwatch's
//! readings of that namespace: statistics alone, and statistics with the filtered dump.
//!
//! Root: `cargo run --release -p portwatch-tests --example nat_dump_cost -- [N]`.

use std::{process::Command, time::Instant};

use portwatch::{
    collect::monotonic_now_ns,
    context::nat::{
        DumpPolicy, NatSource,
        nfnl::{NLA_F_NESTED, NfSocket, SUBSYS_CTNETLINK, put},
    },
};
use portwatch_tests::{Netns, sh};

const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_EXCL: u16 = 0x200;

fn nest(kind: u16, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, kind | NLA_F_NESTED, inner);
    out
}

fn tuple(kind: u16, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut ip = Vec::new();
    put(&mut ip, 1, &src); // CTA_IP_V4_SRC
    put(&mut ip, 2, &dst); // CTA_IP_V4_DST
    let mut proto = Vec::new();
    put(&mut proto, 1, &[6]); // CTA_PROTO_NUM: TCP
    put(&mut proto, 2, &sport.to_be_bytes());
    put(&mut proto, 3, &dport.to_be_bytes());
    let mut t = nest(1, &ip); // CTA_TUPLE_IP
    t.extend(nest(2, &proto)); // CTA_TUPLE_PROTO
    nest(kind, &t)
}

/// One ESTABLISHED TCP entry src:sport → dst:80, source-NAT'd to 198.18.200.1.
fn entry(src: [u8; 4], sport: u16, dst: [u8; 4]) -> Vec<u8> {
    let mut a = tuple(1, src, sport, dst, 80); // CTA_TUPLE_ORIG
    a.extend(tuple(2, dst, 80, src, sport)); // CTA_TUPLE_REPLY (the NAT rewrites it)
    put(&mut a, 7, &600u32.to_be_bytes()); // CTA_TIMEOUT
    let mut tcp = Vec::new();
    put(&mut tcp, 1, &[3]); // CTA_PROTOINFO_TCP_STATE: ESTABLISHED
    a.extend(nest(4, &nest(1, &tcp))); // CTA_PROTOINFO / _TCP
    let mut nat = Vec::new();
    put(&mut nat, 1, &[198, 18, 200, 1]); // CTA_NAT_V4_MINIP
    put(&mut nat, 2, &[198, 18, 200, 1]); // CTA_NAT_V4_MAXIP
    a.extend(nest(6, &nat)); // CTA_NAT_SRC
    a
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().expect("N"));
    let ns = Netns::new("ctcost");
    // A masquerade rule: the namespace does NAT (and NAT is set up for it).
    for cmd in [
        "add table ip nat",
        "add chain ip nat post { type nat hook postrouting priority 100 ; }",
        "add rule ip nat post masquerade",
    ] {
        let mut args = vec!["netns", "exec", &ns.name, "nft"];
        args.extend(cmd.split(' '));
        sh(Command::new("ip").args(&args));
    }
    let inode = ns.inode;
    let made = Instant::now();
    let failed = ns.run(move || {
        let mut sock = NfSocket::open(inode).expect("netfilter socket");
        let mut failed = 0u32;
        for i in 0..n {
            // 60,000 source ports per client address, 50,000 entries per destination (a
            // destination has 64,512 NAT ports).
            let src = [198, 18, 1 + (i / 60_000) as u8, 2];
            let dst = [198, 18, 2 + (i / 50_000) as u8, 2];
            let sport = 1024 + (i % 60_000) as u16;
            let msg = entry(src, sport, dst);
            let flags = NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
            if sock
                .request(SUBSYS_CTNETLINK, 0, 2, flags, &msg, |_| {})
                .is_err()
            {
                failed += 1;
            }
        }
        failed
    });
    let count = ns.cat("/proc/sys/net/netfilter/nf_conntrack_count");
    println!(
        "made {} entries ({failed} failed) in {:.1} s; nf_conntrack_count in the namespace: {}",
        n - failed,
        made.elapsed().as_secs_f64(),
        count.trim()
    );

    let (mut source, _) =
        NatSource::discover(Some(vec![inode]), DumpPolicy::default()).expect("discover");
    assert_eq!(source.namespaces(), vec![inode], "the namespace does NAT");
    let mut stats_us = Vec::new();
    let mut dump_us = Vec::new();
    let mut entries = 0;
    for _ in 0..7 {
        let t = Instant::now();
        let r = source.read(monotonic_now_ns(), false);
        stats_us.push(t.elapsed().as_micros());
        assert!(r[0].is_ok());
        let t = Instant::now();
        let r = source.read(monotonic_now_ns(), true);
        let wall = t.elapsed().as_micros();
        let r = r.into_iter().next().unwrap().expect("reading");
        let d = r.dump.expect("a dump");
        entries = d.entries;
        dump_us.push(wall);
        println!(
            "  dump: {} SNAT'd entries in {} groups, {:.1} ms (reading with it {:.1} ms), kernel-filtered {}",
            d.entries,
            d.groups.len(),
            d.took_us as f64 / 1000.0,
            wall as f64 / 1000.0,
            d.kernel_filtered
        );
    }
    stats_us.sort();
    dump_us.sort();
    println!(
        "median of 7: statistics + count {:.2} ms; with the dump of {entries} entries {:.1} ms \
         ({:.2} µs per entry)",
        stats_us[3] as f64 / 1000.0,
        dump_us[3] as f64 / 1000.0,
        dump_us[3] as f64 / entries.max(1) as f64
    );
    let t = Instant::now();
    let out = sh(Command::new("ip").args(["netns", "exec", &ns.name, "conntrack", "-L", "-n"]));
    println!(
        "for reference, conntrack -L -n (SNAT'd entries, text): {} lines in {:.1} ms",
        out.lines().count(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}
