//! What the system context readers hand to the model: the sockets, owners and sysctls of
//! every network namespace at one instant. Plain data, no I/O; the same values come from a
//! live system or a recording.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::event::TcpState;

/// The process holding a socket's file descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    /// Process id (thread group id).
    pub pid: u32,
    /// The process's `comm` (`/proc/PID/comm`), empty if it exited before it could be read.
    pub comm: String,
}

/// One TCP socket as `sock_diag` reported it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SnapSocket {
    /// Inode of the socket's network namespace (as in `ls -l /proc/PID/ns/net`).
    pub netns: u32,
    pub local: SocketAddr,
    /// `0.0.0.0:0` / `[::]:0` for listening and bound-only sockets.
    pub remote: SocketAddr,
    /// The kernel's state; `BoundInactive` for a socket that is bound but neither listening
    /// nor connecting (the kernel reports those as CLOSE when asked for bound-inactive ones).
    #[serde(with = "state_by_name")]
    pub state: TcpState,
    /// The socket inode (`socket:[INODE]` in `/proc/PID/fd`); 0 for sockets without a file:
    /// TIME_WAIT and request (SYN_RECV) sockets.
    pub inode: u64,
    /// The process holding it, when one does (none for TIME_WAIT, or an orphan). When several
    /// processes share the socket (fork), the lowest pid.
    pub owner: Option<Owner>,
}

/// Everything known about one network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsSnapshot {
    pub netns: u32,
    /// `None` when they could not be read (reported, not fatal).
    pub sysctls: Option<Sysctls>,
    pub sockets: Vec<SnapSocket>,
}

/// The TCP sockets of every network namespace with processes (or named in `/run/netns`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSnapshot {
    /// CLOCK_MONOTONIC nanoseconds, the events' time base, taken just before the first dump.
    pub taken_at_ns: u64,
    /// Sorted by netns inode.
    pub namespaces: Vec<NetnsSnapshot>,
}

/// The per-namespace settings that bound ephemeral ports and TIME_WAIT.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sysctls {
    /// `net.ipv4.ip_local_port_range`, inclusive.
    pub port_range: (u16, u16),
    /// `net.ipv4.ip_local_reserved_ports`, inclusive ranges in the kernel's order.
    pub reserved_ports: Vec<(u16, u16)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only.
    pub tw_reuse: u8,
    /// `net.ipv4.tcp_max_tw_buckets`.
    pub max_tw_buckets: u32,
    /// `net.ipv4.tcp_fin_timeout` (orphaned FIN_WAIT2 only; not the TIME_WAIT length).
    pub fin_timeout_s: u32,
    /// `net.ipv4.tcp_timestamps`.
    pub timestamps: u8,
    /// `TcpExt: TCPTimeWaitOverflow` from the namespace's `/proc/net/netstat`.
    pub tw_overflow: u64,
}

impl SystemSnapshot {
    pub fn netns(&self, netns: u32) -> Option<&NetnsSnapshot> {
        self.namespaces.iter().find(|n| n.netns == netns)
    }
}

/// `TcpState` by the name the kernel and `ss` use (`"TIME_WAIT"`), both ways: the same text
/// `TcpState`'s own `Serialize` writes.
pub mod state_by_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::event::TcpState;

    pub fn serialize<S: Serializer>(state: &TcpState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TcpState, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        TcpState::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown TCP state {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(state: TcpState) -> SnapSocket {
        SnapSocket {
            netns: 4026531840,
            local: "127.0.0.1:40000".parse().unwrap(),
            remote: "[::1]:80".parse().unwrap(),
            state,
            inode: 77,
            owner: Some(Owner {
                pid: 42,
                comm: "curl".into(),
            }),
        }
    }

    #[test]
    fn snapshot_round_trips_through_json() {
        let snap = SystemSnapshot {
            taken_at_ns: 123,
            namespaces: vec![NetnsSnapshot {
                netns: 4026531840,
                sysctls: Some(Sysctls {
                    port_range: (32768, 60999),
                    reserved_ports: vec![(1, 1), (2, 5)],
                    tw_reuse: 2,
                    max_tw_buckets: 262144,
                    fin_timeout_s: 60,
                    timestamps: 1,
                    tw_overflow: 0,
                }),
                sockets: TcpState::ALL.into_iter().map(socket).collect(),
            }],
        };
        let json = serde_json::to_string(&snap).unwrap();
        let back: SystemSnapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn states_are_written_as_tcp_state_writes_them() {
        for state in TcpState::ALL {
            let ours = serde_json::to_value(socket(state)).unwrap()["state"].clone();
            assert_eq!(ours, serde_json::to_value(state).unwrap());
        }
        let bad = serde_json::to_string(&socket(TcpState::Listen))
            .unwrap()
            .replace("LISTEN", "LISTENING");
        assert!(serde_json::from_str::<SnapSocket>(&bad).is_err());
    }
}
