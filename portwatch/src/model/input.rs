//! Everything that enters the model, as one type: [`Input`]. Live sessions emit inputs (the
//! collector: events, clock ticks, loss counters; the context worker: start-up and
//! reconciliation snapshots, warnings; the conntrack reader: NAT readings; the latency reader: the kernel's `connect()` latency aggregate), a recording is exactly the sequence of inputs, and
//! replay decodes the same inputs: the model takes them all through [`super::Model::feed`].
//! Also the types those inputs carry from the system (the sock_diag + /proc snapshot and each
//! namespace's sysctls). Another module fills them; the model never reads the system itself
//! (docs/design.md, "One stream, one model, one snapshot, many views": the model is pure).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{
    collect::Counters,
    event::{Event, TcpState},
};

/// One thing the model takes in, in the order it happened. Every variant but `Event` carries
/// the model time (CLOCK_MONOTONIC ns, the events' clock) it is applied at.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A decoded kernel event.
    Event(Event),
    /// The start-up snapshot (sockets with owners, sysctls), merged without removing anything.
    Startup(Stamped<SystemSnapshot>),
    /// A periodic snapshot the model is reconciled against.
    Reconcile(Stamped<SystemSnapshot>),
    /// The collector's loss counters, cumulative since it started (boxed, as every rare
    /// input larger than an event: an `Input` is as large as its largest variant, and the
    /// events travel by the million).
    Loss(Box<Stamped<Counters>>),
    /// Something a source could not do (a hook not attached, a namespace not read, a failed
    /// reconciliation, a damaged recording), for every view to show.
    Warning(Stamped<String>),
    /// The workloads (unit, container, pod) of cgroup ids the model asked about.
    Workloads(Stamped<Vec<super::CgroupWorkload>>),
    /// What processes the model asked about execute.
    Executables(Stamped<Vec<super::ProcessExe>>),
    /// One conntrack reading of a namespace that does source NAT (statistics, fill, rules,
    /// and perhaps a dump of the SNAT'd entries), at the time it was taken.
    Conntrack(Box<super::nat::ConntrackReading>),
    /// One reading of the kernel's `connect()` latency aggregate (cumulative per destination).
    Latency(super::LatencyReading),
    /// The clock moved on without an event.
    Tick(u64),
}

// An input is an event and its tag: nothing rare makes every event's slot larger.
const _: () = assert!(size_of::<Input>() <= size_of::<Event>() + 8);

/// A value with the model time it enters at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped<T> {
    pub at_ns: u64,
    pub value: T,
}

impl<T> Stamped<T> {
    pub fn new(at_ns: u64, value: T) -> Stamped<T> {
        Stamped { at_ns, value }
    }
}

impl Input {
    /// When the input happened (CLOCK_MONOTONIC ns).
    pub fn at_ns(&self) -> u64 {
        match self {
            Input::Event(e) => e.ts_ns,
            Input::Startup(s) | Input::Reconcile(s) => s.at_ns,
            Input::Loss(s) => s.at_ns,
            Input::Warning(s) => s.at_ns,
            Input::Workloads(s) => s.at_ns,
            Input::Executables(s) => s.at_ns,
            Input::Conntrack(r) => r.taken_at_ns,
            Input::Latency(r) => r.taken_at_ns,
            Input::Tick(t) => *t,
        }
    }

    /// The input's name, as a recording stores it.
    pub fn kind(&self) -> &'static str {
        match self {
            Input::Event(_) => "event",
            Input::Startup(_) => "startup",
            Input::Reconcile(_) => "reconcile",
            Input::Loss(_) => "loss",
            Input::Warning(_) => "warning",
            Input::Workloads(_) => "workloads",
            Input::Executables(_) => "executables",
            Input::Conntrack(_) => "conntrack",
            Input::Latency(_) => "latency",
            Input::Tick(_) => "tick",
        }
    }

    pub fn warning(at_ns: u64, text: impl Into<String>) -> Input {
        Input::Warning(Stamped::new(at_ns, text.into()))
    }
}

/// The process holding a socket's file descriptor, found by matching `/proc/PID/fd` socket
/// inodes against sock_diag's inode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
    /// Its cgroup id (the inode of its unified-hierarchy directory, as the kernel's events
    /// carry it); 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cgroup: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One socket as sock_diag lists it (every TCP state, TIME_WAIT included, v4 and v6).
///
/// A timewait socket is listed with its substate (`TIME_WAIT`, or `FIN_WAIT2` for an orphan
/// still waiting for the peer's FIN). A socket that is bound but neither connected nor listening
/// is `BOUND_INACTIVE` (Linux 6.5+): the model treats it as holding its port for every pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapSocket {
    pub netns: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub inode: u64,
    pub owner: Option<Owner>,
}

/// Everything read from one network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsSnapshot {
    pub netns: u32,
    /// `None` when they could not be read: the model keeps what it had (or kernel defaults,
    /// flagged as assumed).
    pub sysctls: Option<Sysctls>,
    pub sockets: Vec<SnapSocket>,
}

/// Ground truth at one instant, for start-up ([`super::Model::load_snapshot`]) and for
/// [`super::Model::reconcile`]. Only the namespaces listed are touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSnapshot {
    /// CLOCK_MONOTONIC ns when the dump started (same clock as events).
    pub taken_at_ns: u64,
    pub namespaces: Vec<NetnsSnapshot>,
}

/// The per-namespace settings that decide how many ports a pool has and how long they stay
/// held (docs/kernel-facts.md, "Port selection" and "TIME_WAIT").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    /// `net.ipv4.ip_local_port_range`, inclusive (it also governs IPv6).
    pub port_range: (u16, u16),
    /// `net.ipv4.ip_local_reserved_ports` as inclusive ranges.
    pub reserved_ports: Vec<(u16, u16)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 loopback only (default).
    pub tw_reuse: u8,
    /// `net.ipv4.tcp_max_tw_buckets`: above it timewait sockets are not created.
    pub max_tw_buckets: u32,
    /// `net.ipv4.tcp_fin_timeout`: bounds orphaned FIN_WAIT2 only, never TIME_WAIT (60 s fixed).
    pub fin_timeout_s: u32,
    /// `net.ipv4.tcp_timestamps`: tw_reuse needs them.
    pub timestamps: u8,
    /// `TCPTimeWaitOverflow` from /proc/net/netstat (cumulative).
    pub tw_overflow: u64,
}

impl SystemSnapshot {
    pub fn netns(&self, netns: u32) -> Option<&NetnsSnapshot> {
        self.namespaces.iter().find(|n| n.netns == netns)
    }
}

impl Sysctls {
    /// Kernel defaults (Documentation/networking/ip-sysctl.rst). `tcp_max_tw_buckets` really
    /// depends on memory (half the established hash size); 262144 is a typical value.
    pub fn kernel_defaults() -> Sysctls {
        Sysctls {
            port_range: (32768, 60999),
            reserved_ports: Vec::new(),
            tw_reuse: 2,
            max_tw_buckets: 262_144,
            fin_timeout_s: 60,
            timestamps: 1,
            tw_overflow: 0,
        }
    }

    /// Whether `tcp_tw_reuse` lets `connect()` take over a TIME_WAIT 4-tuple toward
    /// a destination (docs/kernel-facts.md "TIME_WAIT": 2 = loopback only; reuse also needs
    /// timestamps).
    pub fn tw_reusable(&self, loopback: bool) -> bool {
        self.timestamps != 0 && (self.tw_reuse == 1 || (self.tw_reuse == 2 && loopback))
    }
}

impl Default for Sysctls {
    fn default() -> Sysctls {
        Sysctls::kernel_defaults()
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
                cgroup: 0x2f51,
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
