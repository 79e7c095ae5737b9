//! The cheap reconciliation pass: per namespace, how many sockets in each state, overall and
//! per pool (source IP, destination IP, destination port): what the model can compare its
//! own counts with. No owners, no sysctls, nothing kept per socket.
//!
//! Sockets accepted by a local listener are not outgoing connections and belong to no pool:
//! a socket whose local port is a listening port of its namespace is counted in `accepted`.
//! The kernel never picks an ephemeral port that a `bind()` or listener holds
//! (`__inet_hash_connect` skips bind buckets with `fastreuse >= 0`), so the port alone
//! decides. Listening and bound-only sockets have no destination and are only in `states`.
//!
//! Pools use canonical addresses: an IPv6 socket connected to `::ffff:10.0.0.1` is an IPv4
//! connection to the kernel (`tcp_v6_connect` hands it to `tcp_v4_connect`) and competes for
//! the same ports as the IPv4 sockets toward 10.0.0.1.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use serde::{Serialize, Serializer, ser::SerializeMap};

use super::diag::DiagSocket;
use crate::event::TcpState;

/// A count per TCP state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateCounts([u32; TcpState::ALL.len()]);

impl StateCounts {
    pub fn add(&mut self, state: TcpState) {
        self.0[state as usize - 1] += 1;
    }

    pub fn get(&self, state: TcpState) -> u32 {
        self.0[state as usize - 1]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// States with a non-zero count, in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL
            .into_iter()
            .map(|s| (s, self.get(s)))
            .filter(|&(_, n)| n > 0)
    }
}

impl Serialize for StateCounts {
    /// `{"ESTABLISHED": 3, "TIME_WAIT": 7}`: non-zero states only.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (state, n) in self.iter() {
            map.serialize_entry(state.name(), &n)?;
        }
        map.end()
    }
}

/// The connections that compete for source ports toward one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PoolKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dst_port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolCount {
    pub pool: PoolKey,
    pub states: StateCounts,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetnsCounts {
    pub netns: u32,
    /// Every socket of the namespace.
    pub states: StateCounts,
    /// Sockets accepted by a local listener (in `states` too, in no pool).
    pub accepted: StateCounts,
    /// Outgoing connections per pool, sorted by pool.
    pub pools: Vec<PoolCount>,
}

/// Accumulates one namespace's sockets.
pub struct Counter {
    netns: u32,
    states: StateCounts,
    listening: HashSet<u16>,
    /// (pool, local port, state) of every socket with a destination; classified at the end,
    /// when every listener is known.
    connected: Vec<(PoolKey, u16, TcpState)>,
}

impl Counter {
    pub fn new(netns: u32) -> Counter {
        Counter {
            netns,
            states: StateCounts::default(),
            listening: HashSet::new(),
            connected: Vec::new(),
        }
    }

    pub fn add(&mut self, s: &DiagSocket) {
        self.states.add(s.state);
        if s.state == TcpState::Listen {
            self.listening.insert(s.local.port());
        } else if s.remote.port() != 0 {
            let pool = PoolKey {
                src: s.local.ip().to_canonical(),
                dst: s.remote.ip().to_canonical(),
                dst_port: s.remote.port(),
            };
            self.connected.push((pool, s.local.port(), s.state));
        }
    }

    pub fn finish(self) -> NetnsCounts {
        let mut accepted = StateCounts::default();
        let mut pools: HashMap<PoolKey, StateCounts> = HashMap::new();
        for (pool, local_port, state) in self.connected {
            if self.listening.contains(&local_port) {
                accepted.add(state);
            } else {
                pools.entry(pool).or_default().add(state);
            }
        }
        let mut pools: Vec<PoolCount> = pools
            .into_iter()
            .map(|(pool, states)| PoolCount { pool, states })
            .collect();
        pools.sort_unstable_by_key(|p| p.pool);
        NetnsCounts {
            netns: self.netns,
            states: self.states,
            accepted,
            pools,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, remote: &str, state: TcpState) -> DiagSocket {
        DiagSocket {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            inode: 1,
        }
    }

    #[test]
    fn splits_outgoing_from_accepted() {
        use TcpState::*;
        let mut c = Counter::new(7);
        for s in [
            sock("10.0.0.2:40000", "10.0.0.9:80", Established),
            sock("10.0.0.2:40002", "10.0.0.9:80", TimeWait),
            sock("10.0.0.2:40004", "10.0.0.9:80", TimeWait),
            sock("10.0.0.2:40006", "10.0.0.9:443", SynSent),
            // A dual-stack socket toward the same IPv4 destination: the same pool.
            sock(
                "[::ffff:10.0.0.2]:40008",
                "[::ffff:10.0.0.9]:80",
                Established,
            ),
            // Accepted: local port 8080 listens (the listener comes after them).
            sock("10.0.0.2:8080", "10.0.0.5:51000", Established),
            sock("[::1]:8080", "[::1]:51000", TimeWait),
            sock("0.0.0.0:8080", "0.0.0.0:0", Listen),
            sock("127.0.0.1:9000", "0.0.0.0:0", BoundInactive),
        ] {
            c.add(&s);
        }
        let n = c.finish();
        assert_eq!(n.netns, 7);
        assert_eq!(n.states.total(), 9);
        assert_eq!(n.states.get(TimeWait), 3);
        assert_eq!(n.states.get(BoundInactive), 1);
        assert_eq!(n.accepted.get(Established), 1);
        assert_eq!(n.accepted.get(TimeWait), 1);
        let dst: IpAddr = "10.0.0.9".parse().unwrap();
        let pools: Vec<(u16, u64, u32)> = n
            .pools
            .iter()
            .map(|p| {
                assert_eq!(p.pool.dst, dst);
                (p.pool.dst_port, p.states.total(), p.states.get(TimeWait))
            })
            .collect();
        assert_eq!(pools, vec![(80, 4, 2), (443, 1, 0)]);
    }

    #[test]
    fn state_counts_serialize_by_name() {
        let mut s = StateCounts::default();
        s.add(TcpState::TimeWait);
        s.add(TcpState::TimeWait);
        s.add(TcpState::BoundInactive);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"TIME_WAIT":2,"BOUND_INACTIVE":1}"#
        );
    }
}
