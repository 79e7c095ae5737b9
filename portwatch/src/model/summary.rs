//! What views and the explain engine read: owned, `Serialize` structs with stable names (the
//! JSON report shows them as they are: `pools`, `processes`, `sysctls`, …), and [`Tables`],
//! all of them at one moment.

use std::net::{IpAddr, SocketAddr};

use serde::{Serialize, Serializer};

use super::{
    CapacityBreakdown, CloseStats, CloseWaitStats, Correction, FailCount, FailureRecord,
    ModelCounters, PoolKey, RateStats, StateCounts, Sysctls,
    socket::{Closer, Role},
};
use crate::event::{CallKind, Comm, Errno, TcpState};

/// A process as views name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcRef {
    pub pid: u32,
    /// 0 when unknown (snapshot owners).
    pub ppid: u32,
    pub comm: Comm,
    /// The file name of what it executes (`python3.11`, `envoy`), when learned: the program,
    /// whatever the thread that made the socket calls itself.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "shared_str")]
    pub exe: Option<std::sync::Arc<str>>,
    /// Where it lives (`cgroup`, `unit`, `slice`, `container {runtime, id, name}`,
    /// `pod {namespace, name, uid}`, flattened into the process), when known.
    #[serde(flatten)]
    pub workload: Option<super::WorkloadRef>,
}

fn shared_str<S: Serializer>(v: &Option<std::sync::Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(x) => s.serialize_str(x),
        None => s.serialize_none(),
    }
}

/// One pool: the sockets competing for source ports toward one destination.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolStats {
    pub netns: u32,
    pub src: IpAddr,
    pub dst: SocketAddr,
    /// Every socket of the pool by state.
    pub states: StateCounts,
    /// Those whose port comes out of the pool's capacity (`states` minus
    /// `outside_capacity`), by state: what fills the pool.
    pub states_in_capacity: StateCounts,
    /// Ports taken out of the pool's capacity (every state that holds a port).
    pub in_use: u32,
    /// `in_use` minus TIME_WAIT entries that `tcp_tw_reuse` lets `connect()` take over.
    pub blocking: u32,
    /// Sockets whose port does not come out of the capacity: held by `bind()` (already
    /// subtracted from every pool) or outside the port range.
    pub outside_capacity: u32,
    /// Sockets (TIME_WAIT included) whose port came from `bind()` to port 0 before
    /// `connect()` without `IP_BIND_ADDRESS_NO_PORT`: each holds its port for every pool of
    /// the namespace (part of `outside_capacity`).
    pub bind_before_connect: u32,
    /// Ports `connect()` can choose from for this pool (see `CapacityBreakdown`).
    pub capacity: u32,
    /// `in_use / capacity`.
    pub utilisation: f64,
    /// `blocking / capacity`: what actually stands between `connect()` and EADDRNOTAVAIL.
    pub effective_utilisation: f64,
    /// Whether `tcp_tw_reuse` (+ timestamps) applies to this pool (2 = loopback only).
    pub tw_reusable: bool,
    pub rates: RateStats,
    /// How hard `connect()` works to find a port here (second-parity share, latency).
    pub port_search: super::PortSearch,
    /// Seconds until no port is left at the current net rate (new − released), if growing.
    pub time_to_exhaustion_s: Option<f64>,
    /// `connect()` calls that failed with EADDRNOTAVAIL here (cumulative).
    pub eaddrnotavail: u64,
    pub last_failure_ns: Option<u64>,
    pub closes: CloseStats,
    /// Owners with sockets here, most sockets first (at most 5).
    pub owners: Vec<PoolOwner>,
    /// The namespace's sysctls were not read: kernel defaults assumed.
    pub sysctls_assumed: bool,
    /// Sort key: effective utilisation, +1 when EADDRNOTAVAIL was seen in the last 60 s,
    /// + up to 0.5 as time to exhaustion drops under 5 minutes.
    pub urgency: f64,
}

impl PoolStats {
    pub fn key(&self) -> PoolKey {
        PoolKey {
            netns: self.netns,
            src: self.src,
            dst: self.dst,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolOwner {
    /// `None`: owner unknown (socket predates portwatch and no snapshot named it).
    pub owner: Option<ProcRef>,
    pub states: StateCounts,
    pub total: u32,
    /// Of `total`, bind-before-connect sockets (see [`PoolStats::bind_before_connect`]).
    pub bind_before_connect: u32,
}

/// One socket, for drill-downs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SocketInfo {
    #[serde(serialize_with = "hex_opt")]
    pub sk: Option<u64>,
    pub netns: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    pub role: Role,
    pub owner: Option<ProcRef>,
    pub since_ns: u64,
    pub age_s: f64,
    /// The age is a lower bound (socket came from the start-up snapshot).
    pub age_is_lower_bound: bool,
    pub closer: Closer,
    /// A timewait socket (TIME_WAIT, or its FIN_WAIT2 substate).
    pub timewait: bool,
    /// Its port is held by `bind()`/`listen()`.
    pub bind_held: bool,
}

fn hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_str(&format!("{v:#x}")),
        None => s.serialize_none(),
    }
}

/// Outbound sockets of one process toward one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DestStats {
    pub netns: u32,
    pub src: IpAddr,
    pub dst: SocketAddr,
    pub states: StateCounts,
    pub total: u32,
    /// Of `total`, bind-before-connect sockets (see [`PoolStats::bind_before_connect`]).
    pub bind_before_connect: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessStats {
    #[serde(flatten)]
    pub process: ProcRef,
    /// Sockets it owns now (every role).
    pub sockets: u32,
    /// `connect()` calls seen.
    pub connects: u64,
    pub failures: u64,
    /// Outbound sockets by state, all destinations.
    pub outbound_states: StateCounts,
    /// … by destination, most sockets first.
    pub outbound: Vec<DestStats>,
    pub listening: Vec<SocketAddr>,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

/// Processes sharing a command and a parent: a loop of short-lived clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessGroupStats {
    pub comm: Comm,
    pub ppid: u32,
    pub processes: u32,
    pub sockets: u32,
    pub connects: u64,
    pub failures: u64,
    pub outbound_states: StateCounts,
}

/// Accepted connections by remote IP (what `ss -tan 'sport = :443' | … | uniq -c` shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoteStats {
    pub ip: IpAddr,
    pub states: StateCounts,
    pub total: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListenerStats {
    pub netns: u32,
    pub local: SocketAddr,
    pub owner: Option<ProcRef>,
    /// Listening sockets on this address now (several with `SO_REUSEPORT`; 0 once closed
    /// while accepted sockets remain).
    pub listening: u32,
    /// When the model first saw it.
    pub since_ns: u64,
    pub accepted: u64,
    /// Accepted sockets by state.
    pub states: StateCounts,
    pub by_remote: Vec<RemoteStats>,
    pub closes: CloseStats,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrnoCount {
    pub errno: Errno,
    #[serde(flatten)]
    pub count: FailCount,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessFailures {
    pub pid: u32,
    pub comm: Comm,
    pub call: CallKind,
    pub errno: Errno,
    #[serde(flatten)]
    pub count: FailCount,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DestFailures {
    pub netns: u32,
    pub addr: SocketAddr,
    pub call: CallKind,
    pub errno: Errno,
    #[serde(flatten)]
    pub count: FailCount,
}

/// Repeats of one failure: one errno from one call of one command toward one address (for
/// `bind()`: the requested local address) in one network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    pub netns: u32,
    pub comm: Comm,
    pub call: CallKind,
    pub errno: Errno,
    pub addr: SocketAddr,
    /// The newest failure's process.
    pub pid: u32,
    pub ppid: u32,
    /// Distinct processes among its failures: exact up to
    /// [`GROUP_PIDS`](super::GROUP_PIDS), a lower bound from there.
    pub pids: u32,
    /// The source address of the newest failure whose socket was seen.
    pub src: Option<IpAddr>,
    /// Its pool (connect, when the socket was seen).
    pub pool: Option<PoolKey>,
    #[serde(flatten)]
    pub count: FailCount,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureStats {
    pub total: u64,
    pub by_errno: Vec<ErrnoCount>,
    pub by_process: Vec<ProcessFailures>,
    pub by_destination: Vec<DestFailures>,
    /// Repeats grouped, the most recently seen first.
    pub groups: Vec<FailureGroup>,
    /// Most recent last.
    pub recent: Vec<FailureRecord>,
}

/// Sockets by state, like `ss -s`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub all: StateCounts,
    pub per_netns: Vec<NetnsTotals>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetnsTotals {
    pub netns: u32,
    pub states: StateCounts,
    /// Timewait sockets (either substate), against `tcp_max_tw_buckets`.
    pub timewait_sockets: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetnsSysctls {
    pub netns: u32,
    #[serde(flatten)]
    pub sysctls: Sysctls,
    /// Never read: these are kernel defaults.
    pub assumed: bool,
    /// Timewait sockets not created because `tcp_max_tw_buckets` was reached, since the first
    /// reading (docs/kernel-facts.md "TIME_WAIT": they are destroyed at once, which looks like a
    /// close without TIME_WAIT).
    pub tw_overflow_since_start: u64,
    /// Timewait sockets tracked now (either substate), against `max_tw_buckets`.
    pub timewait_sockets: u32,
    pub capacity: CapacityBreakdown,
}

/// Every table of the model at one moment, whole and each built once ([`Model::tables`]): what
/// the snapshot (`crate::snapshot`) and the explain engine read.
///
/// [`Model::tables`]: super::Model::tables
#[derive(Clone, Debug, PartialEq)]
pub struct Tables {
    pub at_ns: u64,
    pub counters: ModelCounters,
    pub totals: Totals,
    pub sysctls: Vec<NetnsSysctls>,
    /// Most urgent first.
    pub pools: Vec<PoolStats>,
    /// Most sockets first.
    pub processes: Vec<ProcessStats>,
    pub process_groups: Vec<ProcessGroupStats>,
    /// Every remote IP of each listener.
    pub listeners: Vec<ListenerStats>,
    pub close_wait: Vec<CloseWaitStats>,
    pub failures: FailureStats,
    /// Most recent last.
    pub corrections: Vec<Correction>,
    /// Every NAT pool of the last conntrack dumps, fullest first.
    pub nat_pools: Vec<super::nat::NatPoolStats>,
    /// Each NAT namespace's conntrack.
    pub conntrack: Vec<super::nat::ConntrackStats>,
    /// Exhaustion episodes kept, oldest first.
    pub episodes: Vec<super::Episode>,
}
