//! The kernel's `connect()` latency aggregate (`CONNECT_LATENCY`, filled by the
//! `sys_enter_connect`/`sys_exit_connect` programs): read whole, summed over CPUs, as one
//! [`LatencyReading`] of cumulative counts per (namespace, destination). The session reads it
//! once a second and feeds it to the model as an input (docs/early-warning.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use aya::maps::{MapData, PerCpuHashMap};
use portwatch_common::{AF_INET, AF_INET6, LatencyHist, LatencyKey, latency::BUCKETS};

use crate::model::{LatencyCounts, LatencyReading};

/// The map, opened.
pub struct LatencyMap {
    map: PerCpuHashMap<MapData, LatencyKey, LatencyHist>,
    /// Whether the last reading had anything: an empty reading is sent once after it.
    last_had: bool,
}

impl LatencyMap {
    pub fn new(map: PerCpuHashMap<MapData, LatencyKey, LatencyHist>) -> LatencyMap {
        LatencyMap {
            map,
            last_had: false,
        }
    }

    /// Every destination's counts now, stamped `at_ns`; `None` when there is nothing new to
    /// say (empty, and the last reading was empty too). Entries that vanish while being read
    /// (LRU eviction) are skipped.
    pub fn read(&mut self, at_ns: u64) -> Option<LatencyReading> {
        let mut dests = Vec::new();
        for item in self.map.iter() {
            let Ok((key, per_cpu)) = item else {
                continue;
            };
            let Some(dst) = destination(&key) else {
                continue;
            };
            let mut c = LatencyCounts {
                netns: key.netns,
                dst,
                calls: 0,
                sum_ns: 0,
                buckets: vec![0; BUCKETS],
            };
            for h in per_cpu.iter() {
                c.calls += h.calls;
                c.sum_ns += h.sum_ns;
                for (a, b) in c.buckets.iter_mut().zip(h.buckets.iter()) {
                    *a += u64::from(*b);
                }
            }
            dests.push(c);
        }
        dests.sort_by_key(|c| (c.netns, c.dst));
        let had = !dests.is_empty();
        if !had && !self.last_had {
            return None;
        }
        self.last_had = had;
        Some(LatencyReading {
            taken_at_ns: at_ns,
            dests,
        })
    }
}

fn destination(k: &LatencyKey) -> Option<SocketAddr> {
    let ip = match k.family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(k.addr[0], k.addr[1], k.addr[2], k.addr[3])),
        // A v4-mapped destination is the IPv4 pool (model/addr.rs).
        AF_INET6 => {
            let a = Ipv6Addr::from(k.addr);
            a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, k.port))
}
