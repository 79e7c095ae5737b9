//! The model's own health counters.

use serde::Serialize;

use super::StateCounts;

/// Events the model could not place as expected. None is fatal; all are visible.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OddEvents {
    /// A transition of a socket never seen (it predates portwatch, or was evicted): tracked
    /// from here on, owner unknown.
    pub unknown_socket: u64,
    /// A socket the model did not know went to CLOSE.
    pub unknown_close: u64,
    /// The event's old state differs from the model's (a lost event).
    pub state_mismatch: u64,
    /// A known `sk` started a new life before its old one was seen to end.
    pub stale_replaced: u64,
    /// An accepted socket with no listener known on its port.
    pub accept_without_listener: u64,
    /// Timewait cancel/expire for a timewait socket never seen.
    pub tw_unknown: u64,
    /// TW_START with no live socket for that 4-tuple (owner unknown).
    pub tw_without_socket: u64,
    /// Successful `bind()` without a resolvable socket (cannot be tracked).
    pub bind_without_sk: u64,
    /// Sockets left without pool or owner because those tables were full.
    pub untracked: u64,
    /// Namespaces beyond the model's limit (65535), folded into namespace 0.
    pub netns_overflow: u64,
}

impl OddEvents {
    pub fn total(&self) -> u64 {
        self.unknown_socket
            + self.unknown_close
            + self.state_mismatch
            + self.stale_replaced
            + self.accept_without_listener
            + self.tw_unknown
            + self.tw_without_socket
            + self.bind_without_sk
            + self.untracked
            + self.netns_overflow
    }
}

/// The model's own health: what it holds, dropped, could not match, and corrected.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelCounters {
    pub events: u64,
    pub sockets_tracked: u64,
    pub pools_tracked: u64,
    pub processes_tracked: u64,
    pub listeners_tracked: u64,
    pub sockets_evicted: u64,
    /// Evicted sockets by the state they were in.
    pub sockets_evicted_by_state: StateCounts,
    pub pools_evicted: u64,
    pub processes_evicted: u64,
    pub failure_keys_evicted: u64,
    /// Exhaustion episodes opened since start (`Model::episodes`).
    pub episodes_opened: u64,
    /// Episodes not kept (the oldest ended ones beyond the caps, or a new one when every
    /// kept episode was still open).
    pub episodes_dropped: u64,
    pub odd: OddEvents,
    pub tw_started: u64,
    pub tw_expired: u64,
    pub tw_ended_early: u64,
    pub tw_reused: u64,
    pub tw_rearmed: u64,
    /// Timewait sockets moved from the FIN_WAIT2 substate to TIME_WAIT because their local
    /// peer sent its FIN (the kernel's re-arm is usually untraced).
    pub tw_fin_wait2_ended_by_peer: u64,
    /// Timewait sockets that began in the FIN_WAIT2 substate (the peer had not closed yet).
    pub tw_fin_wait2_started: u64,
    pub snapshot_sockets_loaded: u64,
    /// Snapshot sockets later matched to their kernel address by an event.
    pub snapshot_sockets_adopted: u64,
    pub reconciliations: u64,
    /// Count corrections made by reconciliation (see [`super::Correction`]).
    pub corrections: u64,
    pub reconcile_added: u64,
    pub reconcile_removed: u64,
    pub reconcile_state_fixed: u64,
    /// Heap bytes of the socket table (records + indexes).
    pub socket_table_bytes: u64,
}
