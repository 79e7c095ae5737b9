//! Pools: the sockets that compete for source ports toward one destination.
//!
//! A 4-tuple must be unique, so `connect()` can reuse a local port for a different
//! destination or from a different source address (docs/kernel-facts.md "Port selection"): ports
//! run out per (network namespace, source IP, destination IP, destination port). Each pool is
//! interned into a small id; sockets reach it through their owner×pool link.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{
    addr::Ip,
    counts::StateCounts,
    rates::{History, Rates},
    slots::Slots,
};
use crate::event::TcpState;

/// Internal pool key (fixed size).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct PoolKeyInt {
    pub netns: u32,
    pub dport: u16,
    pub src: Ip,
    pub dst: Ip,
}

impl PoolKeyInt {
    pub fn public(&self) -> PoolKey {
        PoolKey {
            netns: self.netns,
            src: self.src.get(),
            dst: SocketAddr::new(self.dst.get(), self.dport),
        }
    }

    pub fn from_public(k: &PoolKey) -> PoolKeyInt {
        PoolKeyInt {
            netns: k.netns,
            dport: k.dst.port(),
            src: Ip::new(k.src),
            dst: Ip::new(k.dst.ip()),
        }
    }
}

/// A pool's identity as views see it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct PoolKey {
    pub netns: u32,
    pub src: IpAddr,
    pub dst: SocketAddr,
}

/// How connections in a pool ended (cumulative since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CloseStats {
    /// This side sent the first FIN (ESTABLISHED → FIN_WAIT1): it gets the TIME_WAIT.
    pub local_first: u64,
    /// The peer did (ESTABLISHED → CLOSE_WAIT).
    pub remote_first: u64,
    /// Aborted to CLOSE without FINs (RST / `SO_LINGER` 0): no TIME_WAIT.
    pub reset: u64,
    /// An active close that reached CLOSE with no timewait socket: `tcp_max_tw_buckets`
    /// overflow, or a reset while closing.
    pub active_close_without_tw: u64,
    pub tw_started: u64,
    /// Timewait sockets that ran their 60 s.
    pub tw_expired: u64,
    /// Timewait sockets ended early (reuse by `tcp_tw_reuse`, RST, kill).
    pub tw_ended_early: u64,
    /// … of which were taken over by a new connection with the same 4-tuple.
    pub tw_reused: u64,
    /// SYN_SENT → CLOSE with a port: refused, unreachable or timed out.
    pub connect_aborted: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Pool {
    pub key: PoolKeyInt,
    pub ns: u16,
    /// Every socket of the pool, by state.
    pub counts: StateCounts,
    /// Those that take one of the pool's usable ports.
    pub consuming: StateCounts,
    /// Counted sockets whose port came from bind-before-connect (`flag::BIND_ANY`).
    pub bind_any: u32,
    /// Links (owner × this pool) pointing here.
    pub refs: u32,
    pub rates: Rates,
    pub history: History,
    pub closes: CloseStats,
    /// `connect()` calls that failed with EADDRNOTAVAIL for this pool.
    pub eaddrnotavail: u64,
    pub last_failure_ns: u64,
    pub last_active_ns: u64,
    /// An exhaustion episode of this pool is open (`episodes.rs`).
    pub episode_open: bool,
}

impl Pool {
    /// Ports held in the pool's usable space (every state but CLOSE).
    pub fn in_use(&self) -> u32 {
        self.consuming.total() - self.consuming.get(TcpState::Close)
    }

    /// Rolls history forward to `sec` (call before changing counts).
    #[inline]
    pub fn touch(&mut self, sec: u64, ns: u64) {
        if self.history.behind(sec) {
            let cur = self.in_use();
            self.history.advance(sec, cur);
        }
        self.last_active_ns = self.last_active_ns.max(ns);
    }
}

#[derive(Default)]
pub(crate) struct Pools {
    map: FxHashMap<PoolKeyInt, u32>,
    slots: Slots<Pool>,
    pub evicted: u64,
}

impl Pools {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn find(&self, k: &PoolKeyInt) -> Option<u32> {
        self.map.get(k).copied()
    }

    /// The pool's id, creating it if needed; when `cap` pools exist, unreferenced pools idle
    /// the longest are evicted first (1/8 of the cap at a time). `None` when nothing can go.
    pub fn intern(&mut self, k: PoolKeyInt, ns: u16, now_ns: u64, cap: usize) -> Option<u32> {
        if let Some(&id) = self.map.get(&k) {
            return Some(id);
        }
        if self.map.len() >= cap {
            self.evict((cap / 8).max(1));
            if self.map.len() >= cap {
                return None;
            }
        }
        let sec = now_ns / 1_000_000_000;
        let pool = Pool {
            key: k,
            ns,
            counts: StateCounts::default(),
            consuming: StateCounts::default(),
            bind_any: 0,
            refs: 0,
            rates: Rates::default(),
            history: History::new(sec),
            closes: CloseStats::default(),
            eaddrnotavail: 0,
            last_failure_ns: 0,
            last_active_ns: now_ns,
            episode_open: false,
        };
        let id = self.slots.insert(pool);
        self.map.insert(k, id);
        Some(id)
    }

    fn evict(&mut self, n: usize) {
        let mut idle: Vec<(u64, u32)> = self
            .iter()
            .filter(|(_, p)| p.refs == 0)
            .map(|(id, p)| (p.last_active_ns, id))
            .collect();
        idle.sort_unstable();
        for &(_, id) in idle.iter().take(n) {
            if let Some(p) = self.slots.remove(id) {
                self.map.remove(&p.key);
                self.evicted += 1;
            }
        }
    }

    pub fn get(&self, id: u32) -> &Pool {
        self.slots
            .get(id)
            .expect("pool ids are only held while the pool exists")
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Pool {
        self.slots
            .get_mut(id)
            .expect("pool ids are only held while the pool exists")
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Pool)> {
        self.slots.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Pool> {
        self.slots.iter_mut()
    }
}
