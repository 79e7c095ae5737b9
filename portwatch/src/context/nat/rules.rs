//! The source-NAT rules of a namespace, read from nftables over netlink (`NFT_MSG_GETRULE`,
//! every table of every family): native `masq` and `nat` (type snat) expressions, with the
//! `immediate` values they take their addresses and ports from, and the xtables
//! `MASQUERADE`/`SNAT` targets that iptables-nft puts in nftables rules, with their range
//! structures.
//!
//! Netlink rather than `nft -j list ruleset`: no `nft` binary needed on the node, and `nft`
//! prints an iptables-nft target without its port range. Rules of iptables-legacy live
//! outside nftables and are not seen (the pools still are: capacity is then assumed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::NLM_F_DUMP;
use rustc_hash::FxHashMap;

use super::nfnl::{self, NfSocket, SUBSYS_NFTABLES, be32, be64, find, string};
use crate::{
    context::ContextError,
    model::nat::{NatKind, NatRule},
};

const NFT_MSG_NEWRULE: u8 = 6;
const NFT_MSG_GETRULE: u8 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_MASQ_FLAGS: u16 = 1;
const NFTA_MASQ_REG_PROTO_MIN: u16 = 2;
const NFTA_MASQ_REG_PROTO_MAX: u16 = 3;
const NFTA_NAT_TYPE: u16 = 1;
const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
const NFTA_NAT_REG_ADDR_MAX: u16 = 4;
const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
const NFTA_NAT_REG_PROTO_MAX: u16 = 6;
const NFTA_NAT_FLAGS: u16 = 7;
const NFT_NAT_SNAT: u32 = 0;
const NFTA_TARGET_NAME: u16 = 1;
const NFTA_TARGET_REV: u16 = 2;
const NFTA_TARGET_INFO: u16 = 3;

/// `NF_NAT_RANGE_*` (include/uapi/linux/netfilter/nf_nat.h).
const RANGE_MAP_IPS: u32 = 1;
const RANGE_PROTO_SPECIFIED: u32 = 2;
const RANGE_PROTO_RANDOM: u32 = 4;
const RANGE_PERSISTENT: u32 = 8;
const RANGE_PROTO_RANDOM_FULLY: u32 = 16;

/// Every SNAT/masquerade rule of the socket's namespace.
pub fn read(sock: &mut NfSocket) -> Result<Vec<NatRule>, ContextError> {
    let mut rules = Vec::new();
    let result = sock.request(SUBSYS_NFTABLES, NFT_MSG_GETRULE, 0, NLM_F_DUMP, &[], |r| {
        if r.msg_type & 0xff == u16::from(NFT_MSG_NEWRULE) {
            // The xtables layouts differ by family only for IPv4 rev 0, told by its length.
            rules.extend(rule(r.attrs));
        }
    });
    match result {
        Ok(()) => Ok(rules),
        // No nf_tables in this kernel or namespace: no rules.
        Err(ContextError::Netfilter { source, .. })
            if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// The NAT rules one nftables rule holds (usually none, at most one).
pub fn rule(attrs: &[u8]) -> Option<NatRule> {
    let table = find(attrs, NFTA_RULE_TABLE).map(string).unwrap_or_default();
    let chain = find(attrs, NFTA_RULE_CHAIN).map(string).unwrap_or_default();
    let handle = find(attrs, NFTA_RULE_HANDLE).and_then(be64).unwrap_or(0);
    let exprs = find(attrs, NFTA_RULE_EXPRESSIONS)?;
    // Register (as a 32-bit register index) → the bytes an immediate put there.
    let mut regs: FxHashMap<u32, Vec<u8>> = FxHashMap::default();
    let mut out = None;
    for (_, elem) in nfnl::attrs(exprs) {
        let name = find(elem, NFTA_EXPR_NAME).map(string).unwrap_or_default();
        let data = find(elem, NFTA_EXPR_DATA).unwrap_or(&[]);
        let base = |kind| NatRule {
            kind,
            source: "nft".into(),
            table: table.clone(),
            chain: chain.clone(),
            handle,
            addr_min: None,
            addr_max: None,
            port_min: None,
            port_max: None,
            random: false,
            random_fully: false,
            persistent: false,
            partial: false,
        };
        match name.as_str() {
            "immediate" => {
                if let (Some(reg), Some(value)) = (
                    find(data, NFTA_IMMEDIATE_DREG).and_then(be32),
                    find(data, NFTA_IMMEDIATE_DATA).and_then(|d| find(d, NFTA_DATA_VALUE)),
                ) {
                    regs.insert(reg32(reg), value.to_vec());
                }
            }
            "masq" => {
                let mut r = base(NatKind::Masquerade);
                let flags = find(data, NFTA_MASQ_FLAGS).and_then(be32).unwrap_or(0);
                ports_from(
                    &mut r,
                    &regs,
                    data,
                    NFTA_MASQ_REG_PROTO_MIN,
                    NFTA_MASQ_REG_PROTO_MAX,
                );
                set_flags(&mut r, flags);
                out = Some(r);
            }
            "nat" if find(data, NFTA_NAT_TYPE).and_then(be32) == Some(NFT_NAT_SNAT) => {
                let mut r = base(NatKind::Snat);
                let flags = find(data, NFTA_NAT_FLAGS).and_then(be32).unwrap_or(0);
                let addr = |kind| {
                    let reg = find(data, kind).and_then(be32)?;
                    Some(regs.get(&reg32(reg)).and_then(|v| ip_of(v)))
                };
                match (addr(NFTA_NAT_REG_ADDR_MIN), addr(NFTA_NAT_REG_ADDR_MAX)) {
                    (Some(Some(min)), max) => {
                        r.addr_min = Some(min);
                        r.addr_max = Some(max.flatten().unwrap_or(min));
                    }
                    (Some(None), _) => r.partial = true,
                    (None, _) => {}
                }
                ports_from(
                    &mut r,
                    &regs,
                    data,
                    NFTA_NAT_REG_PROTO_MIN,
                    NFTA_NAT_REG_PROTO_MAX,
                );
                set_flags(&mut r, flags);
                out = Some(r);
            }
            "target" => {
                let target = find(data, NFTA_TARGET_NAME).map(string).unwrap_or_default();
                let kind = match target.as_str() {
                    "MASQUERADE" => NatKind::Masquerade,
                    "SNAT" => NatKind::Snat,
                    _ => continue,
                };
                let mut r = base(kind);
                r.source = "iptables-nft".into();
                let rev = find(data, NFTA_TARGET_REV).and_then(be32).unwrap_or(0);
                let info = find(data, NFTA_TARGET_INFO).unwrap_or(&[]);
                xt_range(&mut r, rev, info);
                out = Some(r);
            }
            _ => {}
        }
    }
    out
}

/// `NFT_REG_1..4` (16 bytes each) as the first of their 32-bit registers (`NFT_REG32_00` = 8).
fn reg32(reg: u32) -> u32 {
    if (1..=4).contains(&reg) {
        8 + (reg - 1) * 4
    } else {
        reg
    }
}

fn ports_from(
    r: &mut NatRule,
    regs: &FxHashMap<u32, Vec<u8>>,
    data: &[u8],
    min_attr: u16,
    max_attr: u16,
) {
    let port = |attr| {
        let reg = find(data, attr).and_then(be32)?;
        Some(regs.get(&reg32(reg)).and_then(|v| nfnl::be16(v)))
    };
    match (port(min_attr), port(max_attr)) {
        (Some(Some(min)), max) => {
            r.port_min = Some(min);
            r.port_max = Some(max.flatten().unwrap_or(min));
        }
        (Some(None), _) => r.partial = true,
        (None, _) => {}
    }
}

fn set_flags(r: &mut NatRule, flags: u32) {
    r.random = flags & RANGE_PROTO_RANDOM != 0;
    r.random_fully = flags & RANGE_PROTO_RANDOM_FULLY != 0;
    r.persistent = flags & RANGE_PERSISTENT != 0;
}

fn ip_of(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).ok()?))),
        _ => None,
    }
}

/// The xtables range structures (native-endian flags, network-order addresses and ports):
/// revision 0 for IPv4 is `nf_nat_ipv4_multi_range_compat` (rangesize, then flags, min_ip,
/// max_ip, min port, max port: 20 bytes); revisions 1 and 2 (and IPv6 MASQUERADE) are
/// `nf_nat_range`/`nf_nat_range2` (flags, min_addr[16], max_addr[16], min port, max port).
fn xt_range(r: &mut NatRule, rev: u32, info: &[u8]) {
    let ne32 = |o: usize| {
        info.get(o..o + 4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
    };
    let port = |o: usize| info.get(o..o + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let (flags, amin, amax, pmin, pmax) = if rev == 0 && info.len() == 20 {
        let ip = |o: usize| info.get(o..o + 4).and_then(ip_of);
        match ne32(4) {
            Some(f) => (f, ip(8), ip(12), port(16), port(18)),
            None => return,
        }
    } else {
        let v4 = |o: usize| info.get(o..o + 4).and_then(ip_of);
        let v6 = |o: usize| info.get(o..o + 16).and_then(ip_of);
        let Some(f) = ne32(0) else { return };
        // An IPv4 address fills the first 4 bytes of the union, the rest zero.
        let is_v4 = info.get(8..20).is_some_and(|b| b.iter().all(|&x| x == 0));
        let (amin, amax) = if is_v4 {
            (v4(4), v4(20))
        } else {
            (v6(4), v6(20))
        };
        (f, amin, amax, port(36), port(38))
    };
    if flags & RANGE_MAP_IPS != 0 {
        r.addr_min = amin;
        r.addr_max = amax;
    }
    if flags & RANGE_PROTO_SPECIFIED != 0 {
        r.port_min = pmin;
        r.port_max = pmax;
    }
    set_flags(r, flags);
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

    fn expr(name: &str, data: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        put(&mut e, NFTA_EXPR_NAME, format!("{name}\0").as_bytes());
        e.extend(nest(NFTA_EXPR_DATA, data));
        nest(1, &e)
    }

    fn immediate(reg: u32, value: &[u8]) -> Vec<u8> {
        let mut d = Vec::new();
        put(&mut d, NFTA_IMMEDIATE_DREG, &reg.to_be_bytes());
        let mut v = Vec::new();
        put(&mut v, NFTA_DATA_VALUE, value);
        d.extend(nest(NFTA_IMMEDIATE_DATA, &v));
        expr("immediate", &d)
    }

    fn rule_attrs(exprs: &[Vec<u8>]) -> Vec<u8> {
        let mut a = Vec::new();
        put(&mut a, NFTA_RULE_TABLE, b"nat\0");
        put(&mut a, NFTA_RULE_CHAIN, b"post\0");
        put(&mut a, NFTA_RULE_HANDLE, &4u64.to_be_bytes());
        a.extend(nest(NFTA_RULE_EXPRESSIONS, &exprs.concat()));
        a
    }

    /// What `nft add rule ip nat post meta l4proto tcp masquerade to :40000-40009` stores.
    #[test]
    fn reads_a_masquerade_port_range() {
        let mut masq = Vec::new();
        put(
            &mut masq,
            NFTA_MASQ_FLAGS,
            &RANGE_PROTO_SPECIFIED.to_be_bytes(),
        );
        put(&mut masq, NFTA_MASQ_REG_PROTO_MIN, &1u32.to_be_bytes());
        put(&mut masq, NFTA_MASQ_REG_PROTO_MAX, &9u32.to_be_bytes());
        let a = rule_attrs(&[
            immediate(1, &40000u16.to_be_bytes()),
            immediate(9, &40009u16.to_be_bytes()),
            expr("masq", &masq),
        ]);
        let r = rule(&a).unwrap();
        assert_eq!(r.kind, NatKind::Masquerade);
        assert_eq!((r.port_min, r.port_max), (Some(40000), Some(40009)));
        assert_eq!(
            (r.table.as_str(), r.chain.as_str(), r.handle),
            ("nat", "post", 4)
        );
        assert!(!r.random_fully && !r.partial);
    }

    #[test]
    fn reads_snat_to_an_address_with_random_fully() {
        let mut nat = Vec::new();
        put(&mut nat, NFTA_NAT_TYPE, &NFT_NAT_SNAT.to_be_bytes());
        put(&mut nat, NFTA_NAT_REG_ADDR_MIN, &8u32.to_be_bytes());
        put(
            &mut nat,
            NFTA_NAT_FLAGS,
            &(RANGE_MAP_IPS | RANGE_PROTO_RANDOM_FULLY).to_be_bytes(),
        );
        let a = rule_attrs(&[immediate(8, &[192, 0, 2, 7]), expr("nat", &nat)]);
        let r = rule(&a).unwrap();
        assert_eq!(r.kind, NatKind::Snat);
        assert_eq!(r.addr_min, Some("192.0.2.7".parse().unwrap()));
        assert_eq!(r.addr_max, r.addr_min);
        assert_eq!(r.port_min, None);
        assert!(r.random_fully);
    }

    #[test]
    fn reads_an_iptables_nft_masquerade_target() {
        let mut info = Vec::new();
        info.extend_from_slice(&1u32.to_ne_bytes()); // rangesize
        info.extend_from_slice(&RANGE_PROTO_SPECIFIED.to_ne_bytes());
        info.extend_from_slice(&[0; 8]);
        info.extend_from_slice(&1024u16.to_be_bytes());
        info.extend_from_slice(&2047u16.to_be_bytes());
        let mut t = Vec::new();
        put(&mut t, NFTA_TARGET_NAME, b"MASQUERADE\0");
        put(&mut t, NFTA_TARGET_REV, &0u32.to_be_bytes());
        put(&mut t, NFTA_TARGET_INFO, &info);
        let r = rule(&rule_attrs(&[expr("target", &t)])).unwrap();
        assert_eq!(
            (r.kind, r.source.as_str()),
            (NatKind::Masquerade, "iptables-nft")
        );
        assert_eq!((r.port_min, r.port_max), (Some(1024), Some(2047)));
    }

    #[test]
    fn a_rule_without_nat_is_none() {
        let a = rule_attrs(&[immediate(1, &[1, 2])]);
        assert_eq!(rule(&a), None);
    }
}
