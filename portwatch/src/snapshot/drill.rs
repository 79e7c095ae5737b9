//! Drill-downs: one pool's or one process's sockets and current figures, answered from the
//! model on demand (the views ask with a [`DrillTarget`]). Pure; the same for live and replay.
//! The history a drill-down charts is the timeline's (`crate::timeline`), sampled from the
//! snapshots, for the pool [`Drill::history_pool`] names.

use crate::model::{Model, PoolKey, PoolStats, ProcessStats, SocketInfo};

/// Sockets listed in a drill-down.
pub const SOCKET_LIMIT: usize = 500;
/// Destinations of a process whose sockets are listed (each one scans the socket table).
pub const PROCESS_POOLS: usize = 4;

/// What to drill into. A view asks for one; the session answers with a [`Drill`] for the same
/// target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrillTarget {
    Pool(PoolKey),
    Process { pid: u32 },
}

/// Sockets and figures of one pool or process.
#[derive(Clone, Debug, PartialEq)]
pub struct Drill {
    pub target: DrillTarget,
    /// The pool now, even if it fell out of the snapshot's top pools (for a process: the
    /// pool of `history_pool`).
    pub pool: Option<PoolStats>,
    /// The process now (process target).
    pub process: Option<ProcessStats>,
    /// Its sockets, oldest first (at most [`SOCKET_LIMIT`]).
    pub sockets: Vec<SocketInfo>,
    /// `sockets` was cut at the limit.
    pub truncated: bool,
    /// The pool whose history to chart: the pool's own, or for a process the pool where it
    /// has the most sockets.
    pub history_pool: Option<PoolKey>,
}

/// Sockets and current stats of `target` at `now_ns`. Scans the socket table once
/// per pool: call it when the target changes and at most about once a second after.
pub fn drill(model: &Model, target: &DrillTarget, now_ns: u64) -> Drill {
    match target {
        DrillTarget::Pool(key) => {
            let mut sockets = model.pool_sockets(key, now_ns, SOCKET_LIMIT + 1);
            let truncated = sockets.len() > SOCKET_LIMIT;
            sockets.truncate(SOCKET_LIMIT);
            Drill {
                target: target.clone(),
                pool: model.pool(key, now_ns),
                process: None,
                sockets,
                truncated,
                history_pool: Some(*key),
            }
        }
        DrillTarget::Process { pid } => {
            let process = model.process(*pid);
            let keys: Vec<PoolKey> = process.as_ref().map_or_else(Vec::new, |p| {
                p.outbound
                    .iter()
                    .take(PROCESS_POOLS)
                    .map(|d| PoolKey {
                        netns: d.netns,
                        src: d.src,
                        dst: d.dst,
                    })
                    .collect()
            });
            let mut sockets: Vec<SocketInfo> = keys
                .iter()
                .flat_map(|k| model.pool_sockets(k, now_ns, usize::MAX))
                .filter(|s| s.owner.as_ref().is_some_and(|o| o.pid == *pid))
                .collect();
            sockets.sort_by_key(|s| s.since_ns);
            let truncated = sockets.len() > SOCKET_LIMIT
                || process
                    .as_ref()
                    .is_some_and(|p| p.outbound.len() > PROCESS_POOLS);
            sockets.truncate(SOCKET_LIMIT);
            let history_pool = keys.first().copied();
            Drill {
                target: target.clone(),
                pool: history_pool.and_then(|k| model.pool(&k, now_ns)),
                history_pool,
                process,
                sockets,
                truncated,
            }
        }
    }
}
