//! How many source ports a NAT pool has: the port range of the rule that made it, or the
//! kernel's own range when the rule gives none (`nf_nat_l4proto_unique_tuple`: 1–511 for
//! original ports below 512, 600–1023 below 1024, else 1024–65535). docs/nat.md.

use std::net::IpAddr;

use serde::Serialize;

use super::reading::{NatKind, NatRule};

/// Where a pool's capacity comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacitySource {
    /// The rule's port range.
    Rule,
    /// The rule gives no port range: the kernel's range for the original port.
    KernelDefault,
    /// No rule of this namespace matches (iptables-legacy, or a rule since removed): the
    /// kernel's range is assumed.
    Assumed,
}

/// A pool's capacity and the rule it was taken from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capacity {
    pub ports: u32,
    pub source: CapacitySource,
    /// The rule that applies, when one does.
    pub rule: Option<NatRule>,
}

/// The capacity of the pool whose entries were translated to `nat_ip` with ports between
/// `port_min` and `port_max`, under `rules`. A rule applies when its address range (if any)
/// holds `nat_ip` and its port range (if any) holds the ports seen; of several, the
/// narrowest port range wins (the limit that bites first).
pub fn capacity_for(rules: &[NatRule], nat_ip: IpAddr, port_min: u16, port_max: u16) -> Capacity {
    let applies = |r: &&NatRule| {
        let addr_ok = match (r.addr_min, r.addr_max) {
            (Some(lo), Some(hi)) => lo <= nat_ip && nat_ip <= hi,
            _ => r.kind == NatKind::Masquerade || r.addr_min.is_none(),
        };
        let ports_ok = match (r.port_min, r.port_max) {
            (Some(lo), Some(hi)) => lo.min(hi) <= port_min && port_max <= lo.max(hi),
            _ => true,
        };
        addr_ok && ports_ok
    };
    let ranged = rules
        .iter()
        .filter(applies)
        .filter_map(|r| Some((r, r.port_min?, r.port_max?)))
        .min_by_key(|(_, lo, hi)| lo.abs_diff(*hi));
    if let Some((r, lo, hi)) = ranged {
        return Capacity {
            ports: u32::from(lo.abs_diff(hi)) + 1,
            source: CapacitySource::Rule,
            rule: Some(r.clone()),
        };
    }
    let default = if port_min < 512 {
        511
    } else if port_min < 1024 {
        1023 - 600 + 1
    } else {
        65535 - 1024 + 1
    };
    match rules.iter().find(applies) {
        Some(r) => Capacity {
            ports: default,
            source: CapacitySource::KernelDefault,
            rule: Some(r.clone()),
        },
        None => Capacity {
            ports: default,
            source: CapacitySource::Assumed,
            rule: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masq(ports: Option<(u16, u16)>) -> NatRule {
        NatRule {
            kind: NatKind::Masquerade,
            source: "nft".into(),
            table: "nat".into(),
            chain: "post".into(),
            handle: 3,
            addr_min: None,
            addr_max: None,
            port_min: ports.map(|p| p.0),
            port_max: ports.map(|p| p.1),
            random: false,
            random_fully: false,
            persistent: false,
            partial: false,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_port_range_is_the_capacity() {
        let c = capacity_for(&[masq(Some((40000, 40009)))], ip("10.0.2.1"), 40000, 40009);
        assert_eq!((c.ports, c.source), (10, CapacitySource::Rule));
    }

    #[test]
    fn without_a_range_the_kernel_range_applies() {
        let c = capacity_for(&[masq(None)], ip("10.0.2.1"), 33000, 60000);
        assert_eq!((c.ports, c.source), (64512, CapacitySource::KernelDefault));
        let c = capacity_for(&[], ip("10.0.2.1"), 700, 800);
        assert_eq!((c.ports, c.source), (424, CapacitySource::Assumed));
    }

    #[test]
    fn an_snat_rule_for_another_address_does_not_apply() {
        let mut r = masq(Some((1000, 1001)));
        r.kind = NatKind::Snat;
        r.addr_min = Some(ip("192.0.2.1"));
        r.addr_max = Some(ip("192.0.2.1"));
        let c = capacity_for(&[r.clone()], ip("192.0.2.9"), 1000, 1001);
        assert_eq!(c.source, CapacitySource::Assumed);
        let c = capacity_for(&[r], ip("192.0.2.1"), 1000, 1001);
        assert_eq!(c.ports, 2);
    }
}
