//! Answering a drill-down request from the model: what the session calls when
//! [`super::App::drill_request`] returns a target. Pure; the same for live and replay.

use super::data::{Drill, DrillTarget};
use crate::model::{Model, PoolKey, SocketInfo};

/// Sockets listed in a drill-down.
pub const SOCKET_LIMIT: usize = 500;
/// Destinations of a process whose sockets are listed (each one scans the socket table).
const PROCESS_POOLS: usize = 4;

/// Sockets, current stats and history of `target` at `now_ns`. Scans the socket table once
/// per pool: call it when the target changes and at most about once a second after.
pub fn collect(model: &Model, target: &DrillTarget, now_ns: u64) -> Drill {
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
                history: model.pool_history(key).unwrap_or_default(),
                history_pool: Some(*key),
            }
        }
        DrillTarget::Process { pid } => {
            let process = model
                .processes(usize::MAX)
                .into_iter()
                .find(|p| p.process.pid == *pid);
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
                history: history_pool
                    .and_then(|k| model.pool_history(&k))
                    .unwrap_or_default(),
                history_pool,
                process,
                sockets,
                truncated,
            }
        }
    }
}
