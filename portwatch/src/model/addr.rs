//! Compact addresses and 4-tuples: fixed-size, no allocation, cheap to hash.

use std::{
    hash::Hasher,
    net::{IpAddr, Ipv6Addr, SocketAddr},
};

use rustc_hash::FxHasher;

/// An IP address in 16 bytes: IPv6 as is, IPv4 as IPv4-mapped (`::ffff:a.b.c.d`).
///
/// Canonical on purpose: a dual-stack socket talking to an IPv4 peer is reported with
/// v4-mapped addresses, yet it takes its port from the same space as a plain IPv4 socket
/// (`tcp_v6_connect` hands v4-mapped destinations to `tcp_v4_connect`), so both must land in
/// the same pool.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub(crate) struct Ip(pub [u8; 16]);

impl Ip {
    /// `::`, the IPv6 wildcard.
    pub const V6_ANY: Ip = Ip([0; 16]);
    /// `0.0.0.0`, the IPv4 wildcard.
    pub const V4_ANY: Ip = Ip([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]);

    pub fn new(ip: IpAddr) -> Ip {
        match ip.to_canonical() {
            IpAddr::V4(a) => Ip(a.to_ipv6_mapped().octets()),
            IpAddr::V6(a) => Ip(a.octets()),
        }
    }

    pub fn get(self) -> IpAddr {
        Ipv6Addr::from(self.0).to_canonical()
    }

    pub fn is_v4(self) -> bool {
        self.0[..10] == [0; 10] && self.0[10..12] == [0xff, 0xff]
    }

    pub fn is_unspecified(self) -> bool {
        self == Ip::V6_ANY || self == Ip::V4_ANY
    }

    pub fn is_loopback(self) -> bool {
        self.get().is_loopback()
    }

    /// Whether a listener bound to `self` receives connections addressed to `local`: the same
    /// address, or a wildcard (`0.0.0.0` takes IPv4 only; `::` takes both, as with the default
    /// `bindv6only = 0` — a v6-only listener cannot be told apart here).
    pub fn accepts(self, local: Ip) -> bool {
        self == local || self == Ip::V6_ANY || (self == Ip::V4_ANY && local.is_v4())
    }

    fn words(self) -> (u64, u64) {
        let (a, b) = self.0.split_at(8);
        (
            u64::from_ne_bytes(a.try_into().unwrap_or_default()),
            u64::from_ne_bytes(b.try_into().unwrap_or_default()),
        )
    }
}

impl std::fmt::Debug for Ip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// A socket's identity within the system: network namespace + 4-tuple (40 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tuple {
    pub netns: u32,
    pub lport: u16,
    pub rport: u16,
    pub lip: Ip,
    pub rip: Ip,
}

impl Tuple {
    pub fn new(netns: u32, local: SocketAddr, remote: SocketAddr) -> Tuple {
        Tuple {
            netns,
            lport: local.port(),
            rport: remote.port(),
            lip: Ip::new(local.ip()),
            rip: Ip::new(remote.ip()),
        }
    }

    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.lip.get(), self.lport)
    }

    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.rip.get(), self.rport)
    }

    /// The same connection seen from its other end (a local peer's socket, on loopback).
    pub fn reversed(&self) -> Tuple {
        Tuple {
            netns: self.netns,
            lport: self.rport,
            rport: self.lport,
            lip: self.rip,
            rip: self.lip,
        }
    }

    pub fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        let (a, b) = self.lip.words();
        let (c, d) = self.rip.words();
        h.write_u64(
            (u64::from(self.netns) << 32) | (u64::from(self.lport) << 16) | u64::from(self.rport),
        );
        h.write_u64(a);
        h.write_u64(b);
        h.write_u64(c);
        h.write_u64(d);
        h.finish()
    }
}

impl std::fmt::Debug for Tuple {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {} > {}", self.netns, self.local(), self.remote())
    }
}

pub(crate) fn hash_sk(sk: u64) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(sk);
    h.finish()
}
