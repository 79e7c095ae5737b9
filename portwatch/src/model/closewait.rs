//! CLOSE_WAIT by owner: the peer has closed, the process has not (docs/kernel-facts.md,
//! "CLOSE_WAIT"). No kernel timer ends CLOSE_WAIT, so its sockets live exactly as long as the
//! process keeps them; their ages tell a leak (old, still growing) from a close path that is merely
//! slow. A socket's `since_ns` is when it entered its current state.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{
    Model, NS,
    socket::{Role, flag},
    summary::ProcRef,
};
use crate::event::TcpState;

/// "Recent" for [`CloseWaitStats::entered_last_60s`].
pub const CLOSE_WAIT_RECENT_S: u64 = 60;

/// One process's CLOSE_WAIT sockets in one namespace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloseWaitStats {
    pub netns: u32,
    /// `None`: owner unknown.
    pub owner: Option<ProcRef>,
    pub count: u32,
    /// Made by `connect()`: each also holds a source port in its pool.
    pub outbound: u32,
    /// Accepted from a listener.
    pub inbound: u32,
    /// Time the oldest has spent in CLOSE_WAIT (a lower bound for snapshot sockets).
    pub oldest_s: f64,
    /// How many entered CLOSE_WAIT in the last [`CLOSE_WAIT_RECENT_S`] seconds.
    pub entered_last_60s: u32,
    /// Outbound: the (source IP, destination) with the most, and how many.
    pub top_destination: Option<(IpAddr, SocketAddr, u32)>,
    /// Inbound: the local address (the service) with the most, and how many.
    pub top_local: Option<(SocketAddr, u32)>,
}

#[derive(Default)]
struct Acc {
    count: u32,
    outbound: u32,
    inbound: u32,
    oldest_since: u64,
    recent: u32,
    dests: FxHashMap<(IpAddr, SocketAddr), u32>,
    locals: FxHashMap<SocketAddr, u32>,
}

fn top<K: Copy + Ord>(m: &FxHashMap<K, u32>) -> Option<(K, u32)> {
    m.iter()
        .map(|(k, v)| (*k, *v))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
}

impl Model {
    /// CLOSE_WAIT sockets grouped by (namespace, owner), most first (at most `top_n`). Scans
    /// the socket table: for reports and the explain engine, not for every refresh.
    pub fn close_wait(&self, now_ns: u64, top_n: usize) -> Vec<CloseWaitStats> {
        let recent_from = now_ns.saturating_sub(CLOSE_WAIT_RECENT_S * NS);
        let mut m: FxHashMap<(u32, u32), Acc> = FxHashMap::default();
        for (_, s) in self.socks.iter() {
            if !s.has(flag::COUNTED) || s.state != TcpState::CloseWait {
                continue;
            }
            let a = m.entry((s.tuple.netns, s.owner)).or_default();
            if a.count == 0 || s.since_ns < a.oldest_since {
                a.oldest_since = s.since_ns;
            }
            a.count += 1;
            if s.since_ns >= recent_from {
                a.recent += 1;
            }
            match s.role {
                Role::Inbound => {
                    a.inbound += 1;
                    *a.locals.entry(s.tuple.local()).or_default() += 1;
                }
                _ => {
                    a.outbound += 1;
                    *a.dests
                        .entry((s.tuple.lip.get(), s.tuple.remote()))
                        .or_default() += 1;
                }
            }
        }
        let mut v: Vec<CloseWaitStats> = m
            .into_iter()
            .map(|((netns, owner), a)| CloseWaitStats {
                netns,
                owner: self.proc_ref(owner),
                count: a.count,
                outbound: a.outbound,
                inbound: a.inbound,
                oldest_s: now_ns.saturating_sub(a.oldest_since) as f64 / 1e9,
                entered_last_60s: a.recent,
                top_destination: top(&a.dests).map(|((src, dst), n)| (src, dst, n)),
                top_local: top(&a.locals),
            })
            .collect();
        v.sort_by(|a, b| {
            b.count.cmp(&a.count).then(a.netns.cmp(&b.netns)).then(
                a.owner
                    .as_ref()
                    .map(|o| o.pid)
                    .cmp(&b.owner.as_ref().map(|o| o.pid)),
            )
        });
        v.truncate(top_n);
        v
    }
}
