//! What `explain` produces: ranked findings, each a cause with its evidence and the remedies
//! that help for that cause (and the ones people reach for that would not, with why).
//! These types are the contract between the rules, the reports (text and JSON) and the TUI;
//! the JSON field names are documented in the README and must stay stable.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use serde::Serialize;

use crate::model::PoolKey;

/// Why a pool is (or will be) out of ports, or why connections fail. The JSON identifiers are
/// stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Short connections closed first by this side: TIME_WAIT holds the pool.
    TimeWaitChurn,
    /// Too many concurrent connections toward one destination for the pool.
    Concurrency,
    /// Explicit bind() to port 0 before connect() without IP_BIND_ADDRESS_NO_PORT: each
    /// socket takes a port out of every pool.
    BindBeforeConnect,
    /// bind() failed with EADDRINUSE.
    BindConflict,
    /// The peer closed; the process never does: CLOSE_WAIT piles up.
    CloseWaitLeak,
    /// This side closed, the peer never does: ports held in FIN_WAIT2 (the peer's CLOSE_WAIT
    /// leak, when the peer is on this host, is the root cause).
    FinWait2Hold,
    /// connect()s that do not complete: the destination is slow or unreachable, not a port
    /// problem.
    SynSentPileup,
    /// A source-NAT rule's ports toward one destination are all taken: new connections'
    /// SYNs are dropped at the NAT (conntrack insert_failed), whatever the client's own pool.
    SnatExhaustion,
    /// sysctl problems: same-parity range ends, reserved ports or listeners eating the range,
    /// tcp_tw_reuse=2 with the pressure on non-loopback traffic, TIME_WAIT bucket overflow.
    Config,
}

impl Severity {
    pub fn id(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// One level down (info stays info).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

impl Cause {
    pub fn id(self) -> &'static str {
        match self {
            Cause::TimeWaitChurn => "time_wait_churn",
            Cause::Concurrency => "concurrency",
            Cause::BindBeforeConnect => "bind_before_connect",
            Cause::BindConflict => "bind_conflict",
            Cause::CloseWaitLeak => "close_wait_leak",
            Cause::FinWait2Hold => "fin_wait2_hold",
            Cause::SynSentPileup => "syn_sent_pileup",
            Cause::SnatExhaustion => "snat_exhaustion",
            Cause::Config => "config",
        }
    }

    /// The cause in words, for headlines.
    pub fn words(self) -> &'static str {
        match self {
            Cause::TimeWaitChurn => "TIME_WAIT churn",
            Cause::Concurrency => "too many concurrent connections",
            Cause::BindBeforeConnect => "bind() before connect()",
            Cause::BindConflict => "bind() conflict",
            Cause::CloseWaitLeak => "CLOSE_WAIT leak",
            Cause::FinWait2Hold => "ports held in FIN_WAIT2",
            Cause::SynSentPileup => "connects not completing",
            Cause::SnatExhaustion => "NAT ports exhausted",
            Cause::Config => "configuration",
        }
    }
}

/// Which configuration problem a [`Cause::Config`] finding is about. The JSON identifiers are
/// stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigIssue {
    /// `ip_local_port_range` ends of the same parity: each `connect()` scans one port fewer
    /// than the range holds (skipping one end), so the last free port can be missed.
    RangeParity,
    /// `ip_local_reserved_ports` takes a large part of the range.
    ReservedPorts,
    /// Listeners and bound sockets inside the range take ports out of every pool.
    ListenersInRange,
    /// `tcp_tw_reuse=2` (loopback only) while TIME_WAIT fills a non-loopback pool.
    TwReuseLoopbackOnly,
    /// `tcp_tw_reuse` is on but `tcp_timestamps` is off, so it never applies.
    TwReuseWithoutTimestamps,
    /// `tcp_max_tw_buckets` reached (TIME_WAIT skipped) or nearly so.
    TwBucketOverflow,
    /// The conntrack table is (nearly) full: `nf_conntrack_count` near `nf_conntrack_max`,
    /// or entries evicted early.
    ConntrackTableFull,
}

impl ConfigIssue {
    pub fn id(self) -> &'static str {
        match self {
            ConfigIssue::RangeParity => "range_parity",
            ConfigIssue::ReservedPorts => "reserved_ports",
            ConfigIssue::ListenersInRange => "listeners_in_range",
            ConfigIssue::TwReuseLoopbackOnly => "tw_reuse_loopback_only",
            ConfigIssue::TwReuseWithoutTimestamps => "tw_reuse_without_timestamps",
            ConfigIssue::TwBucketOverflow => "tw_bucket_overflow",
            ConfigIssue::ConntrackTableFull => "conntrack_table_full",
        }
    }
}

/// How bad it is now. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing is failing or about to.
    Info,
    /// Heading for trouble: a pool filling fast, a leak growing.
    Warning,
    /// Failing now (EADDRNOTAVAIL/EADDRINUSE seen) or about to (minutes at most).
    Critical,
}

/// One change an operator could make, and whether it helps for this finding's cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Remedy {
    /// Stable identifier, e.g. `connection_pooling`, `widen_port_range`, `tcp_tw_reuse`,
    /// `more_destination_addresses`, `more_source_addresses`, `ip_bind_address_no_port`,
    /// `fix_close_path`, `check_destination`, `free_reserved_ports`.
    pub id: String,
    /// What to do, concretely (a command or sysctl where there is one).
    pub action: String,
    /// false: a change people expect to help but which would not, for this cause.
    pub helps: bool,
    /// Why it helps (by how much, where it can be said) or why it would not.
    pub why: String,
    /// Where the knob is documented, for a program's own knob (`explain/programs.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One ranked finding. Field names are the JSON schema of `portwatch report --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    pub severity: Severity,
    /// For `config` findings, which problem (null otherwise).
    pub issue: Option<ConfigIssue>,
    /// One line saying what is wrong and where, in words (the headline views show).
    pub title: String,
    /// The process (its pid; for a group of short-lived processes, the most recent one).
    pub pid: Option<u32>,
    pub comm: Option<String>,
    /// The file name of what that process executes, when learned (`/proc/PID/exe`): the
    /// program, whatever the thread that made the sockets calls itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// Parent pid of the process (or of the group of short-lived processes), when known.
    pub ppid: Option<u32>,
    /// How many processes with this command (and parent) the finding covers (1 for one
    /// long-lived process).
    pub process_count: u32,
    /// Where that process lives (`cgroup`, `unit`, `slice`, `container {runtime, id, name}`,
    /// `pod {namespace, name, uid}`, flattened in), when known.
    #[serde(flatten)]
    pub workload: Option<crate::model::WorkloadRef>,
    pub netns: u32,
    /// Source IP of the pool, when the finding is about a pool (a string in JSON).
    pub src_ip: Option<IpAddr>,
    /// Destination (or the address that failed to bind, for bind_conflict; the local service
    /// address, for a close_wait_leak of accepted connections): `"ip:port"` in JSON.
    pub dst: Option<SocketAddr>,
    pub in_use: Option<u32>,
    pub capacity: Option<u32>,
    /// State name (as `ss` prints it) → count.
    pub states: BTreeMap<String, u32>,
    /// errno name → count.
    pub errors: BTreeMap<String, u64>,
    /// New connections per second toward the destination (the rate that matters for the
    /// cause; for close_wait_leak, new CLOSE_WAIT sockets per second).
    pub rate_per_s: Option<f64>,
    /// Seconds until the pool runs out at current rates; 0 when it is out already.
    pub eta_s: Option<f64>,
    /// One sentence, in plain words, of what was observed.
    pub evidence: String,
    pub remedies: Vec<Remedy>,
    /// For `snat_exhaustion` and `conntrack_table_full`: the namespace that does the NAT
    /// (`netns` is the client's, when it is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_netns: Option<u32>,
    /// The exhaustion episode the finding is about: its cause was read from what held the
    /// pool when `connect()` failed (null when the finding is about the pool now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<super::episodes::EpisodeRef>,
    /// Ranking score (higher first): severity first (critical 300–399, warning 200–299,
    /// info 100–199), then urgency (utilisation, time to exhaustion, errors).
    pub score: f64,
}

impl Finding {
    /// A finding with no process, pool, counts or remedies yet (rules fill in the rest).
    pub fn new(
        cause: Cause,
        severity: Severity,
        netns: u32,
        title: String,
        evidence: String,
    ) -> Finding {
        Finding {
            cause,
            severity,
            issue: None,
            title,
            pid: None,
            comm: None,
            exe: None,
            ppid: None,
            process_count: 0,
            workload: None,
            netns,
            src_ip: None,
            dst: None,
            in_use: None,
            capacity: None,
            states: BTreeMap::new(),
            errors: BTreeMap::new(),
            rate_per_s: None,
            eta_s: None,
            evidence,
            remedies: Vec::new(),
            nat_netns: None,
            episode: None,
            score: 0.0,
        }
    }

    /// Who, in words: "nginx (pid 812)", "curl ×312 (parent 4120, latest pid 9876)", or
    /// "unknown process"; then where it lives ("in container web (podman 5c8f8a6b1d2e)",
    /// "in nginx.service") when known.
    pub fn who(&self) -> String {
        super::words::who_in(
            &super::words::who_running(
                self.comm.as_deref(),
                self.exe.as_deref(),
                self.pid,
                self.ppid,
                self.process_count,
            ),
            self.workload.as_deref(),
        )
    }

    /// The remedies that help, in rank order.
    pub fn helping(&self) -> impl Iterator<Item = &Remedy> {
        self.remedies.iter().filter(|r| r.helps)
    }

    /// About an exhaustion episode that has ended.
    pub fn is_past(&self) -> bool {
        self.episode.as_ref().is_some_and(|e| !e.ongoing)
    }

    /// The changes people reach for that would not help here, with why.
    pub fn not_helping(&self) -> impl Iterator<Item = &Remedy> {
        self.remedies.iter().filter(|r| !r.helps)
    }

    /// The pool the finding is about (source IP and destination), if it names one.
    pub fn pool(&self) -> Option<PoolKey> {
        Some(PoolKey {
            netns: self.netns,
            src: self.src_ip?,
            dst: self.dst?,
        })
    }

    /// Sets the pool the finding is about.
    pub fn set_pool(&mut self, key: PoolKey) {
        self.src_ip = Some(key.src);
        self.dst = Some(key.dst);
    }
}
