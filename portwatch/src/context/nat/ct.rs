//! ctnetlink: the conntrack statistics of a namespace and a dump of its source-NAT'd entries,
//! grouped by NAT pool and original flow as they arrive (nothing per entry is kept).
//!
//! - `IPCTNL_MSG_CT_GET_STATS_CPU` (dump): one message per possible CPU, `ip_conntrack_stat`
//!   of the socket's namespace (`ctnetlink_ct_stat_cpu_dump`).
//! - `IPCTNL_MSG_CT_GET_STATS`: `CTA_STATS_GLOBAL_ENTRIES` (this namespace's count) and
//!   `CTA_STATS_GLOBAL_MAX_ENTRIES` (`nf_conntrack_max`).
//! - `IPCTNL_MSG_CT_GET` (dump) with `CTA_STATUS = IPS_SRC_NAT`: since Linux 5.15 the kernel
//!   returns only entries with that bit (the mask defaults to the status given); older
//!   kernels ignore the attribute and return every entry, so the bit is checked here too.
//!   The kernel still walks the whole conntrack hash, which every namespace shares: the
//!   cost grows with the host's entries, not with this namespace's.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Instant,
};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};

use super::nfnl::{self, NfSocket, SUBSYS_CTNETLINK, be16, be32, find};
use crate::{
    context::ContextError,
    model::nat::{CtState, CtStats, NatDump, NatGroup},
};

const MSG_GET: u8 = 1;
const MSG_GET_STATS_CPU: u8 = 4;
const MSG_GET_STATS: u8 = 5;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const CTA_STATS_GLOBAL_ENTRIES: u16 = 1;
const CTA_STATS_GLOBAL_MAX_ENTRIES: u16 = 2;
/// `IPS_SRC_NAT` (include/uapi/linux/netfilter/nf_conntrack_common.h).
pub const IPS_SRC_NAT: u32 = 1 << 4;
const IPPROTO_TCP: u8 = 6;

/// The namespace's statistics, summed over CPUs.
pub fn stats(sock: &mut NfSocket) -> Result<CtStats, ContextError> {
    let mut total = CtStats::default();
    sock.request(
        SUBSYS_CTNETLINK,
        MSG_GET_STATS_CPU,
        0,
        NLM_F_DUMP,
        &[],
        |r| add_cpu(&mut total, r.attrs),
    )?;
    Ok(total)
}

fn add_cpu(total: &mut CtStats, attrs: &[u8]) {
    for (kind, v) in nfnl::attrs(attrs) {
        let Some(n) = be32(v).map(u64::from) else {
            continue;
        };
        // enum ctattr_stats_cpu (include/uapi/linux/netfilter/nfnetlink_conntrack.h).
        match kind {
            2 => total.found += n,
            4 => total.invalid += n,
            8 => total.insert += n,
            9 => total.insert_failed += n,
            10 => total.drop += n,
            11 => total.early_drop += n,
            12 => total.error += n,
            13 => total.search_restart += n,
            14 => total.clash_resolve += n,
            15 => total.chain_toolong += n,
            _ => {}
        }
    }
}

/// (entries of this namespace, `nf_conntrack_max`).
pub fn fill(sock: &mut NfSocket) -> Result<(u32, u32), ContextError> {
    let (mut count, mut max) = (0, 0);
    sock.request(SUBSYS_CTNETLINK, MSG_GET_STATS, 0, NLM_F_ACK, &[], |r| {
        count = find(r.attrs, CTA_STATS_GLOBAL_ENTRIES)
            .and_then(be32)
            .unwrap_or(count);
        max = find(r.attrs, CTA_STATS_GLOBAL_MAX_ENTRIES)
            .and_then(be32)
            .unwrap_or(max);
    })?;
    Ok((count, max))
}

/// One side of a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    pub proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// One SNAT'd entry, decoded in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub orig: Tuple,
    pub reply: Tuple,
    pub state: CtState,
}

/// Every SNAT'd entry, grouped by (pool, original flow).
pub fn dump_snat(sock: &mut NfSocket) -> Result<NatDump, ContextError> {
    let start = Instant::now();
    let mut attrs = Vec::new();
    nfnl::put(&mut attrs, CTA_STATUS, &IPS_SRC_NAT.to_be_bytes());
    let mut dump = NatDump::default();
    let mut groups: HashMap<GroupKey, NatGroup> = HashMap::new();
    let mut filtered = true;
    sock.request(SUBSYS_CTNETLINK, MSG_GET, 0, NLM_F_DUMP, &attrs, |r| {
        if r.msg_type & 0xff != 0 {
            return; // IPCTNL_MSG_CT_NEW is how entries come back
        }
        let status = find(r.attrs, CTA_STATUS).and_then(be32).unwrap_or(0);
        if status & IPS_SRC_NAT == 0 {
            filtered = false;
            return;
        }
        match entry(r.attrs) {
            Some(e) => {
                dump.entries += 1;
                group(&mut groups, &e);
            }
            None => dump.skipped += 1,
        }
    })?;
    dump.kernel_filtered = filtered;
    dump.groups = groups.into_values().collect();
    dump.groups.sort_by(|a, b| {
        (a.proto, a.nat_ip, a.dst, a.orig_src_ip, a.orig_dst).cmp(&(
            b.proto,
            b.nat_ip,
            b.dst,
            b.orig_src_ip,
            b.orig_dst,
        ))
    });
    dump.took_us = start.elapsed().as_micros() as u64;
    Ok(dump)
}

type GroupKey = (u8, IpAddr, SocketAddr, IpAddr, SocketAddr);

fn group(groups: &mut HashMap<GroupKey, NatGroup>, e: &Entry) {
    // The reply tuple is what the far end sees: from the real destination to the
    // translated source.
    let key = (
        e.orig.proto,
        e.reply.dst.ip(),
        e.reply.src,
        e.orig.src.ip(),
        e.orig.dst,
    );
    let port = e.reply.dst.port();
    let g = groups.entry(key).or_insert_with(|| NatGroup {
        proto: key.0,
        nat_ip: key.1,
        dst: key.2,
        orig_src_ip: key.3,
        orig_dst: key.4,
        states: [0; 11],
        port_min: port,
        port_max: port,
        orig_ports: Vec::new(),
    });
    if g.orig_ports.len() < NatGroup::SAMPLE {
        g.orig_ports.push(e.orig.src.port());
    }
    let i = CtState::ALL
        .iter()
        .position(|s| *s == e.state)
        .unwrap_or(10);
    g.states[i] += 1;
    g.port_min = g.port_min.min(port);
    g.port_max = g.port_max.max(port);
}

/// Decodes one `IPCTNL_MSG_CT_NEW` message's attributes.
pub fn entry(attrs: &[u8]) -> Option<Entry> {
    let orig = tuple(find(attrs, CTA_TUPLE_ORIG)?)?;
    let reply = tuple(find(attrs, CTA_TUPLE_REPLY)?)?;
    let state = if orig.proto == IPPROTO_TCP {
        find(attrs, CTA_PROTOINFO)
            .and_then(|p| find(p, CTA_PROTOINFO_TCP))
            .and_then(|t| find(t, CTA_PROTOINFO_TCP_STATE))
            .and_then(|v| v.first().copied())
            .and_then(CtState::from_tcp)
            .unwrap_or(CtState::None)
    } else {
        CtState::Other
    };
    Some(Entry { orig, reply, state })
}

fn tuple(t: &[u8]) -> Option<Tuple> {
    let ip = find(t, CTA_TUPLE_IP)?;
    let (src, dst) = match (find(ip, CTA_IP_V4_SRC), find(ip, CTA_IP_V4_DST)) {
        (Some(s), Some(d)) => (v4(s)?, v4(d)?),
        _ => (v6(find(ip, CTA_IP_V6_SRC)?)?, v6(find(ip, CTA_IP_V6_DST)?)?),
    };
    let p = find(t, CTA_TUPLE_PROTO)?;
    let proto = *find(p, CTA_PROTO_NUM)?.first()?;
    let sport = find(p, CTA_PROTO_SRC_PORT).and_then(be16)?;
    let dport = find(p, CTA_PROTO_DST_PORT).and_then(be16)?;
    Some(Tuple {
        proto,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
    })
}

fn v4(v: &[u8]) -> Option<IpAddr> {
    let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

fn v6(v: &[u8]) -> Option<IpAddr> {
    let b: [u8; 16] = v.get(..16)?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::nat::nfnl::{NLA_F_NESTED, put};

    fn nest(kind: u16, inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put(&mut out, kind | NLA_F_NESTED, inner);
        out
    }

    fn tuple_attr(kind: u16, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut ip = Vec::new();
        put(&mut ip, CTA_IP_V4_SRC, &src);
        put(&mut ip, CTA_IP_V4_DST, &dst);
        let mut proto = Vec::new();
        put(&mut proto, CTA_PROTO_NUM, &[6]);
        put(&mut proto, CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
        put(&mut proto, CTA_PROTO_DST_PORT, &dport.to_be_bytes());
        let mut t = nest(CTA_TUPLE_IP, &ip);
        t.extend(nest(CTA_TUPLE_PROTO, &proto));
        nest(kind, &t)
    }

    /// The attributes the kernel sends for 10.0.1.2:51000 → 10.0.2.2:80 masqueraded to
    /// 10.0.2.1:40003, ESTABLISHED.
    fn sample() -> Vec<u8> {
        let mut a = tuple_attr(CTA_TUPLE_ORIG, [10, 0, 1, 2], 51000, [10, 0, 2, 2], 80);
        a.extend(tuple_attr(
            CTA_TUPLE_REPLY,
            [10, 0, 2, 2],
            80,
            [10, 0, 2, 1],
            40003,
        ));
        put(&mut a, CTA_STATUS, &(IPS_SRC_NAT | 0x8).to_be_bytes());
        let mut st = Vec::new();
        put(&mut st, CTA_PROTOINFO_TCP_STATE, &[3]);
        a.extend(nest(CTA_PROTOINFO, &nest(CTA_PROTOINFO_TCP, &st)));
        a
    }

    #[test]
    fn decodes_a_masqueraded_entry() {
        let e = entry(&sample()).unwrap();
        assert_eq!(e.orig.src, "10.0.1.2:51000".parse().unwrap());
        assert_eq!(e.orig.dst, "10.0.2.2:80".parse().unwrap());
        assert_eq!(e.reply.dst, "10.0.2.1:40003".parse().unwrap());
        assert_eq!(e.state, CtState::Established);
        let mut groups = HashMap::new();
        group(&mut groups, &e);
        let g = groups.values().next().unwrap();
        assert_eq!(g.nat_ip, "10.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(g.dst, "10.0.2.2:80".parse().unwrap());
        assert_eq!((g.port_min, g.port_max, g.total()), (40003, 40003, 1));
    }

    #[test]
    fn an_entry_without_its_reply_tuple_is_skipped() {
        let a = tuple_attr(CTA_TUPLE_ORIG, [10, 0, 1, 2], 1, [10, 0, 2, 2], 80);
        assert_eq!(entry(&a), None);
    }

    #[test]
    fn per_cpu_statistics_add_up() {
        let mut total = CtStats::default();
        for cpu_failed in [3u32, 2] {
            let mut a = Vec::new();
            put(&mut a, 9, &cpu_failed.to_be_bytes());
            put(&mut a, 10, &1u32.to_be_bytes());
            put(&mut a, 14, &7u32.to_be_bytes());
            add_cpu(&mut total, &a);
        }
        assert_eq!(
            (total.insert_failed, total.drop, total.clash_resolve),
            (5, 2, 14)
        );
    }
}
