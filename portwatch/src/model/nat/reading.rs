//! What the conntrack source reads from one network namespace that does NAT, as the model
//! takes it in: the conntrack statistics, the table's fill, the source-NAT rules, and (when
//! it was taken) a dump of the source-NAT'd entries grouped by NAT pool and original flow.
//! `context::nat` fills these; the model never reads the system itself. The facts behind
//! every field are in docs/nat.md.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// One reading of one namespace's conntrack, at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConntrackReading {
    pub netns: u32,
    /// CLOCK_MONOTONIC ns when the reading started (the events' clock).
    pub taken_at_ns: u64,
    /// The namespace's conntrack statistics, summed over CPUs, cumulative since boot (or
    /// since the namespace was created).
    pub stats: CtStats,
    /// `nf_conntrack_count` of this namespace.
    pub count: u32,
    /// `nf_conntrack_max` (one limit for the whole host).
    pub max: u32,
    /// The source-NAT rules (nftables, iptables-nft) of the namespace.
    pub rules: Vec<NatRule>,
    /// The SNAT'd entries, when a dump was taken with this reading.
    pub dump: Option<NatDump>,
}

/// `ip_conntrack_stat` of one namespace, summed over CPUs (ctnetlink
/// `IPCTNL_MSG_CT_GET_STATS_CPU`; the same numbers as `conntrack -S`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CtStats {
    pub found: u64,
    pub invalid: u64,
    pub insert: u64,
    /// A new entry could not be inserted: its tuple (for SNAT, the translated reply tuple)
    /// clashed with an existing entry. For TCP the packet is dropped as well.
    pub insert_failed: u64,
    /// Packets dropped by conntrack (an unresolvable clash, or a full table).
    pub drop: u64,
    /// Entries evicted early because the table was full.
    pub early_drop: u64,
    pub error: u64,
    pub search_restart: u64,
    /// Clashes resolved by merging with the existing entry (UDP, not TCP).
    pub clash_resolve: u64,
    pub chain_toolong: u64,
}

impl CtStats {
    /// `self - earlier`, per counter (0 where a counter went back, e.g. a CPU went offline).
    pub fn since(&self, earlier: &CtStats) -> CtStats {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        CtStats {
            found: d(self.found, earlier.found),
            invalid: d(self.invalid, earlier.invalid),
            insert: d(self.insert, earlier.insert),
            insert_failed: d(self.insert_failed, earlier.insert_failed),
            drop: d(self.drop, earlier.drop),
            early_drop: d(self.early_drop, earlier.early_drop),
            error: d(self.error, earlier.error),
            search_restart: d(self.search_restart, earlier.search_restart),
            clash_resolve: d(self.clash_resolve, earlier.clash_resolve),
            chain_toolong: d(self.chain_toolong, earlier.chain_toolong),
        }
    }
}

/// Which kind of source NAT a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatKind {
    /// The outgoing interface's address.
    Masquerade,
    /// An address (range) given in the rule.
    Snat,
}

/// One source-NAT rule as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    pub kind: NatKind,
    /// `nft` for a native nftables rule, `iptables-nft` for an xtables target.
    pub source: String,
    pub table: String,
    pub chain: String,
    pub handle: u64,
    /// Translated source addresses, inclusive (SNAT with an address given).
    pub addr_min: Option<IpAddr>,
    pub addr_max: Option<IpAddr>,
    /// Translated source ports, inclusive, when the rule gives them.
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
    /// `random` (`NF_NAT_RANGE_PROTO_RANDOM`).
    pub random: bool,
    /// `random-fully` (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`).
    pub random_fully: bool,
    /// `persistent` (`NF_NAT_RANGE_PERSISTENT`).
    pub persistent: bool,
    /// Some operand came from a register this reader could not follow (a map lookup): the
    /// ranges above may be incomplete.
    pub partial: bool,
}

/// The conntrack TCP states (`enum tcp_conntrack`, CTA_PROTOINFO_TCP_STATE), and a
/// stand-in for entries of other protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CtState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
    /// Not TCP (UDP, ICMP, …): no state.
    Other,
}

impl CtState {
    pub const ALL: [CtState; 11] = [
        CtState::None,
        CtState::SynSent,
        CtState::SynRecv,
        CtState::Established,
        CtState::FinWait,
        CtState::CloseWait,
        CtState::LastAck,
        CtState::TimeWait,
        CtState::Close,
        CtState::SynSent2,
        CtState::Other,
    ];

    /// From CTA_PROTOINFO_TCP_STATE.
    pub fn from_tcp(v: u8) -> Option<CtState> {
        CtState::ALL
            .get(usize::from(v))
            .copied()
            .filter(|s| *s != CtState::Other)
    }

    /// The name `conntrack -L` prints.
    pub fn name(self) -> &'static str {
        match self {
            CtState::None => "NONE",
            CtState::SynSent => "SYN_SENT",
            CtState::SynRecv => "SYN_RECV",
            CtState::Established => "ESTABLISHED",
            CtState::FinWait => "FIN_WAIT",
            CtState::CloseWait => "CLOSE_WAIT",
            CtState::LastAck => "LAST_ACK",
            CtState::TimeWait => "TIME_WAIT",
            CtState::Close => "CLOSE",
            CtState::SynSent2 => "SYN_SENT2",
            CtState::Other => "OTHER",
        }
    }

    /// An entry a new TCP connection may evict when its port search is nearly out of
    /// attempts (`nf_nat_used_tuple_harder`: TIME_WAIT and later, with the new initial
    /// sequence number past the old entry's; docs/nat.md).
    pub fn evictable(self) -> bool {
        matches!(self, CtState::TimeWait | CtState::Close | CtState::SynSent2)
    }
}

/// The SNAT'd entries of one dump.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NatDump {
    /// Entries received with the SNAT status bit.
    pub entries: u64,
    /// Entries the dump skipped (no tuple, a protocol without ports).
    pub skipped: u64,
    /// How long the dump took, in microseconds.
    pub took_us: u64,
    /// Whether the kernel filtered on the SNAT bit (Linux 5.15+) or every entry came back.
    pub kernel_filtered: bool,
    pub groups: Vec<NatGroup>,
}

/// The entries of one NAT pool that come from one original flow (source IP toward one
/// original destination).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGroup {
    /// IP protocol number (6 TCP, 17 UDP, …).
    pub proto: u8,
    /// The translated source address (the reply tuple's destination).
    pub nat_ip: IpAddr,
    /// Where the packets really go (the reply tuple's source: after any DNAT).
    pub dst: SocketAddr,
    /// The original source IP (the pod, container or namespace behind the NAT).
    pub orig_src_ip: IpAddr,
    /// The destination the client asked for (before any DNAT; a service address).
    pub orig_dst: SocketAddr,
    /// Entries by state, in [`CtState::ALL`] order.
    pub states: [u32; 11],
    /// Smallest and largest translated source port seen.
    pub port_min: u16,
    pub port_max: u16,
    /// A few of the original source ports (at most [`NatGroup::SAMPLE`]): they tell apart
    /// namespaces that use the same addresses.
    #[serde(default)]
    pub orig_ports: Vec<u16>,
}

impl NatGroup {
    /// Original source ports kept per group.
    pub const SAMPLE: usize = 4;

    pub fn total(&self) -> u32 {
        self.states.iter().sum()
    }
}
