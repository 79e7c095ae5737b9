//! The NAT pools of the last dumps, with capacity, rates, time to exhaustion and the
//! clients behind them: each original source IP is matched to the model's own pools (the
//! namespace whose sockets have that source IP toward that original destination), which
//! name the processes.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{
    NAT_RATE_WINDOW_S, NS,
    capacity::{Capacity, capacity_for},
    reading::{ConntrackReading, CtState, CtStats, NatDump, NatRule},
};
use crate::model::{Model, PoolKey, PoolOwner, addr::Tuple};

/// A NAT pool's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NatPoolKey {
    /// The namespace that does the NAT.
    pub netns: u32,
    pub proto: u8,
    pub nat_ip: IpAddr,
    pub dst: SocketAddr,
}

/// Rates over the last [`NAT_RATE_WINDOW_S`] seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct NatRates {
    /// Growth of in-use ports per second between dumps (negative when draining).
    pub growth_per_s: f64,
    /// The namespace's conntrack insert failures and drops per second.
    pub insert_failed_per_s: f64,
    pub drop_per_s: f64,
    /// Seconds averaged (0: not enough readings yet).
    pub window_s: f64,
}

/// The clients behind a pool: one original source IP toward one original destination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatClient {
    pub orig_src_ip: IpAddr,
    /// The destination the client connected to (a service address, before any DNAT).
    pub orig_dst: SocketAddr,
    /// The namespace whose sockets have that source IP toward that destination (null when
    /// no traced namespace does).
    pub netns: Option<u32>,
    /// NAT entries by conntrack state.
    pub states: BTreeMap<&'static str, u32>,
    pub total: u32,
    /// The processes holding those sockets, most sockets first.
    pub owners: Vec<PoolOwner>,
    /// The client's own sockets toward the destination stuck in SYN_SENT (connects whose
    /// SYN got no answer — at this NAT, when it is full).
    pub syn_sent: u32,
}

/// One NAT pool, as of the last dump.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NatPoolStats {
    pub netns: u32,
    /// `tcp`, `udp`, or the protocol number.
    pub proto: String,
    pub nat_ip: IpAddr,
    pub dst: SocketAddr,
    /// Entries (= translated ports) by conntrack state.
    pub states: BTreeMap<&'static str, u32>,
    pub in_use: u32,
    /// Entries in TIME_WAIT or CLOSE, which a new TCP connection may evict when its port
    /// search is nearly out of attempts (docs/nat.md).
    pub evictable: u32,
    /// In use minus evictable.
    pub blocking: u32,
    pub capacity: Capacity,
    pub utilisation: f64,
    pub effective_utilisation: f64,
    pub rates: NatRates,
    /// Seconds until no port is left at the current growth; 0 when none is left now.
    pub time_to_exhaustion_s: Option<f64>,
    /// The namespace's conntrack insert failures and drops since the first reading.
    pub insert_failed: u64,
    pub drop: u64,
    pub port_min: u16,
    pub port_max: u16,
    /// Most entries first.
    pub clients: Vec<NatClient>,
    /// CLOCK_MONOTONIC ns of the dump these come from.
    pub dumped_at_ns: u64,
}

/// One namespace's conntrack, for the views.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConntrackStats {
    pub netns: u32,
    pub taken_at_ns: u64,
    /// This namespace's entries, and `nf_conntrack_max` (host-wide).
    pub count: u32,
    pub max: u32,
    /// Cumulative, as the kernel counts them.
    pub stats: CtStats,
    /// Growth since portwatch's first reading.
    pub since_start: CtStats,
    /// Growth over the last rate window, and its length in seconds.
    pub recent: CtStats,
    pub recent_window_s: f64,
    pub rules: Vec<NatRule>,
    /// The last dump: SNAT'd entries, how long it took, whether the kernel filtered it.
    pub dump_entries: Option<u64>,
    pub dump_took_us: Option<u64>,
    pub dump_kernel_filtered: Option<bool>,
    pub dumped_at_ns: Option<u64>,
}

/// Clients shown per pool.
const CLIENTS: usize = 8;

pub(super) fn in_use_by_pool(netns: u32, dump: &NatDump) -> FxHashMap<NatPoolKey, u32> {
    let mut m: FxHashMap<NatPoolKey, u32> = FxHashMap::default();
    for g in &dump.groups {
        let key = NatPoolKey {
            netns,
            proto: g.proto,
            nat_ip: g.nat_ip,
            dst: g.dst,
        };
        *m.entry(key).or_default() += g.total();
    }
    m
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn state_map(states: &[u32; 11]) -> BTreeMap<&'static str, u32> {
    CtState::ALL
        .iter()
        .zip(states)
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| (s.name(), *n))
        .collect()
}

impl Model {
    /// Takes one conntrack reading (statistics, rules, and perhaps a dump) of a namespace.
    pub(in crate::model) fn set_conntrack(&mut self, r: &ConntrackReading) {
        self.clock(r.taken_at_ns);
        self.nat.feed(r);
    }

    /// Each namespace's conntrack, by namespace.
    pub fn conntrack(&self) -> Vec<ConntrackStats> {
        self.nat
            .ns
            .iter()
            .map(|(&netns, n)| {
                let (recent, window) = n.recent();
                let d = n.dump.as_ref();
                ConntrackStats {
                    netns,
                    taken_at_ns: n.last.taken_at_ns,
                    count: n.last.count,
                    max: n.last.max,
                    stats: n.last.stats,
                    since_start: n.last.stats.since(&n.first),
                    recent,
                    recent_window_s: window,
                    rules: n.last.rules.clone(),
                    dump_entries: d.map(|(_, d)| d.entries),
                    dump_took_us: d.map(|(_, d)| d.took_us),
                    dump_kernel_filtered: d.map(|(_, d)| d.kernel_filtered),
                    dumped_at_ns: d.map(|(t, _)| *t),
                }
            })
            .collect()
    }

    /// Every NAT pool of the last dumps, fullest first.
    pub fn nat_pools(&self, now_ns: u64) -> Vec<NatPoolStats> {
        let mut out = Vec::new();
        for (&netns, n) in &self.nat.ns {
            let Some((at, dump)) = &n.dump else { continue };
            let (recent, window) = n.recent();
            let per_s = |x: u64| if window > 0.0 { x as f64 / window } else { 0.0 };
            let since = n.last.stats.since(&n.first);
            let mut pools: BTreeMap<NatPoolKey, (Vec<usize>, [u32; 11], u16, u16)> =
                BTreeMap::new();
            for (i, g) in dump.groups.iter().enumerate() {
                let key = NatPoolKey {
                    netns,
                    proto: g.proto,
                    nat_ip: g.nat_ip,
                    dst: g.dst,
                };
                let e = pools
                    .entry(key)
                    .or_insert((Vec::new(), [0; 11], g.port_min, g.port_max));
                e.0.push(i);
                for (a, b) in e.1.iter_mut().zip(g.states) {
                    *a += b;
                }
                e.2 = e.2.min(g.port_min);
                e.3 = e.3.max(g.port_max);
            }
            for (key, (groups, states, pmin, pmax)) in pools {
                let in_use: u32 = states.iter().sum();
                let evictable: u32 = if key.proto == 6 {
                    CtState::ALL
                        .iter()
                        .zip(states)
                        .filter(|(s, _)| s.evictable())
                        .map(|(_, n)| n)
                        .sum()
                } else {
                    0
                };
                let blocking = in_use - evictable;
                let capacity = capacity_for(&n.last.rules, key.nat_ip, pmin, pmax);
                let cap = f64::from(capacity.ports.max(1));
                let growth = growth(n.history.get(&key), *at);
                let free = f64::from(capacity.ports.saturating_sub(blocking));
                let eta = if blocking >= capacity.ports {
                    Some(0.0)
                } else if growth > 0.0 {
                    Some(free / growth)
                } else {
                    None
                };
                let mut clients: Vec<NatClient> = groups
                    .iter()
                    .map(|&i| self.nat_client(&dump.groups[i], now_ns))
                    .collect();
                clients.sort_by(|a, b| {
                    b.total
                        .cmp(&a.total)
                        .then(a.orig_src_ip.cmp(&b.orig_src_ip))
                });
                clients.truncate(CLIENTS);
                out.push(NatPoolStats {
                    netns,
                    proto: proto_name(key.proto),
                    nat_ip: key.nat_ip,
                    dst: key.dst,
                    states: state_map(&states),
                    in_use,
                    evictable,
                    blocking,
                    utilisation: f64::from(in_use) / cap,
                    effective_utilisation: f64::from(blocking) / cap,
                    capacity,
                    rates: NatRates {
                        growth_per_s: growth,
                        insert_failed_per_s: per_s(recent.insert_failed),
                        drop_per_s: per_s(recent.drop),
                        window_s: window,
                    },
                    time_to_exhaustion_s: eta,
                    insert_failed: since.insert_failed,
                    drop: since.drop,
                    port_min: pmin,
                    port_max: pmax,
                    clients,
                    dumped_at_ns: *at,
                });
            }
        }
        out.sort_by(|a, b| {
            b.effective_utilisation
                .total_cmp(&a.effective_utilisation)
                .then(b.in_use.cmp(&a.in_use))
        });
        out
    }

    /// The namespace and processes behind one original flow: a model pool with that source
    /// IP toward that destination, in any namespace.
    fn nat_client(&self, g: &super::NatGroup, now_ns: u64) -> NatClient {
        // Every namespace with sockets from that address toward that destination; when
        // several use the same addresses, the one holding the sampled 4-tuples.
        let candidates: Vec<_> = self
            .netns
            .iter()
            .filter_map(|n| {
                self.pool(
                    &PoolKey {
                        netns: n.inode,
                        src: g.orig_src_ip,
                        dst: g.orig_dst,
                    },
                    now_ns,
                )
            })
            .collect();
        let held = |netns: u32| {
            g.orig_ports
                .iter()
                .filter(|&&port| {
                    let local = SocketAddr::new(g.orig_src_ip, port);
                    let t = Tuple::new(netns, local, g.orig_dst);
                    self.socks.find_tuple(&t, |_| true).is_some()
                })
                .count()
        };
        let found = if candidates.len() > 1 {
            candidates.into_iter().max_by_key(|p| held(p.netns))
        } else {
            candidates.into_iter().next()
        };
        let (netns, owners, syn_sent) = match found {
            Some(p) => (
                Some(p.netns),
                p.owners.clone(),
                p.states.get(crate::event::TcpState::SynSent),
            ),
            None => (None, Vec::new(), 0),
        };
        NatClient {
            orig_src_ip: g.orig_src_ip,
            orig_dst: g.orig_dst,
            netns,
            states: state_map(&g.states),
            total: g.total(),
            owners,
            syn_sent,
        }
    }
}

/// In-use growth per second over the rate window, from the dumps' history.
fn growth(h: Option<&std::collections::VecDeque<(u64, u32)>>, at: u64) -> f64 {
    let Some(h) = h else { return 0.0 };
    let from = at.saturating_sub(NAT_RATE_WINDOW_S * NS);
    let (Some(&(t0, v0)), Some(&(t1, v1))) = (h.iter().find(|(t, _)| *t >= from), h.back()) else {
        return 0.0;
    };
    let dt = (t1 - t0) as f64 / 1e9;
    if dt < 1.0 {
        return 0.0;
    }
    (f64::from(v1) - f64::from(v0)) / dt
}
