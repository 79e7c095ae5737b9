//! Typed events: what every source (kernel, recording, test) hands to the model.
//!
//! Nothing here knows about bytes: `collect::decode` turns ring-buffer records into these,
//! checking every kernel integer on the way in.

use std::{fmt, net::SocketAddr};

use serde::{Deserialize, Serialize, Serializer};

/// A TCP state as the kernel numbers it (include/net/tcp_states.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
    BoundInactive = 13,
}

impl TcpState {
    pub const ALL: [TcpState; 13] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
        TcpState::BoundInactive,
    ];

    /// The name `ss` and the kernel use.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
            TcpState::BoundInactive => "BOUND_INACTIVE",
        }
    }

    pub fn from_name(name: &str) -> Option<TcpState> {
        TcpState::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl TryFrom<u8> for TcpState {
    type Error = u8;

    fn try_from(v: u8) -> Result<Self, u8> {
        TcpState::ALL
            .get((v as usize).wrapping_sub(1))
            .copied()
            .ok_or(v)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A task's `comm`: up to 15 bytes, shown lossily as UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    pub fn new(name: &str) -> Comm {
        let mut b = [0u8; 16];
        let n = name.len().min(15);
        b[..n].copy_from_slice(&name.as_bytes()[..n]);
        Comm(b)
    }

    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// The task that was running when the kernel emitted the event. For connect, bind and the
/// first transitions of a socket it is the socket's owner; for softirq transitions it is
/// whatever ran on that CPU (see the model's owner rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent's process id, 0 if unknown.
    pub ppid: u32,
    pub comm: Comm,
    /// The task's cgroup id in the unified hierarchy (`bpf_get_current_cgroup_id()`, the
    /// inode of its directory), on the events that run in the owner's context; 0 elsewhere
    /// and when unknown. `crate::workload` says which unit, container or pod it is.
    #[serde(skip_serializing_if = "is_zero")]
    pub cgroup: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A negative errno returned by a syscall, as its positive number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

impl Errno {
    pub fn name(self) -> String {
        let known = match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::EINTR => "EINTR",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::EACCES => "EACCES",
            libc::EFAULT => "EFAULT",
            libc::EINVAL => "EINVAL",
            libc::EMFILE => "EMFILE",
            libc::ENOTSOCK => "ENOTSOCK",
            libc::EPROTOTYPE => "EPROTOTYPE",
            libc::EAFNOSUPPORT => "EAFNOSUPPORT",
            libc::EADDRINUSE => "EADDRINUSE",
            libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            libc::ENETDOWN => "ENETDOWN",
            libc::ENETUNREACH => "ENETUNREACH",
            libc::ECONNABORTED => "ECONNABORTED",
            libc::ECONNRESET => "ECONNRESET",
            libc::ENOBUFS => "ENOBUFS",
            libc::EISCONN => "EISCONN",
            libc::ETIMEDOUT => "ETIMEDOUT",
            libc::ECONNREFUSED => "ECONNREFUSED",
            libc::EHOSTUNREACH => "EHOSTUNREACH",
            libc::EALREADY => "EALREADY",
            libc::EINPROGRESS => "EINPROGRESS",
            _ => return format!("E{}", self.0),
        };
        known.to_string()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Errno {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Connect,
    Bind,
}

/// What happened to a timewait socket's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TwOp {
    /// Scheduled: the 4-tuple is now held by a timewait socket (or its timer was re-armed).
    Start,
    /// Removed before firing (`remaining_ms > 0`: reused, reset, or about to be re-armed) or
    /// as it fired (`remaining_ms <= 0`, followed by `Expire`).
    Cancel,
    /// The timer fired: the 4-tuple is free.
    Expire,
}

/// One TCP state transition (`inet_sock_set_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StateChange {
    /// Kernel address of the socket: its identity while it lives.
    #[serde(serialize_with = "hex")]
    pub sk: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub old: TcpState,
    pub new: TcpState,
}

/// A `connect()`/`bind()` that failed, a `bind()` that succeeded, or a non-blocking
/// `connect()` in progress (`error: None`, `bound_port`: the source port it chose — the only
/// place that port shows until the handshake ends; the kernel returned `EINPROGRESS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SockCall {
    pub call: CallKind,
    /// The socket behind `fd`, when the kernel could resolve it.
    #[serde(serialize_with = "hex_opt")]
    pub sk: Option<u64>,
    pub fd: i32,
    /// The address the caller asked for (connect: the destination; bind: the local address).
    pub addr: SocketAddr,
    /// `None` on success (for a connect: in progress).
    pub error: Option<Errno>,
    /// For a successful bind: the local port the socket got (the requested one, or the one
    /// the kernel chose for port 0); for a connect in progress: its source port.
    pub bound_port: Option<u16>,
}

/// A timewait socket's timer event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimeWait {
    /// Kernel address of the `inet_timewait_sock`.
    #[serde(serialize_with = "hex")]
    pub tw: u64,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub op: TwOp,
    /// TIME_WAIT, or FIN_WAIT2 for an orphaned socket still waiting for the peer's FIN.
    pub substate: TcpState,
    /// Timer expiry minus now, in jiffies (kernel ticks); see `TwOp::Cancel`.
    pub remaining_jiffies: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    State(StateChange),
    Call(SockCall),
    TimeWait(TimeWait),
}

/// One event, from whatever source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds (the kernel's `bpf_ktime_get_ns`).
    pub ts_ns: u64,
    /// Inode number of the socket's network namespace (as in `ls -l /proc/PID/ns/net`), 0 if
    /// unknown.
    pub netns: u32,
    pub task: Task,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Local and remote ports of the event, where it has them (for filters).
    pub fn ports(&self) -> [u16; 2] {
        match &self.kind {
            EventKind::State(s) => [s.local.port(), s.remote.port()],
            EventKind::Call(c) => [c.addr.port(), c.bound_port.unwrap_or(0)],
            EventKind::TimeWait(t) => [t.local.port(), t.remote.port()],
        }
    }
}

fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

fn hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => hex(v, s),
        None => s.serialize_none(),
    }
}

impl fmt::Display for Event {
    /// One line, for `portwatch events`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.task;
        write!(
            f,
            "netns={} pid={} tid={} comm={:<15} ",
            self.netns,
            t.pid,
            t.tid,
            t.comm.to_string()
        )?;
        match &self.kind {
            EventKind::State(s) => write!(
                f,
                "STATE  {} -> {}  {} > {}  sk={:#x}",
                s.old, s.new, s.local, s.remote, s.sk
            ),
            EventKind::Call(c) => {
                let call = match c.call {
                    CallKind::Connect => "CONNECT",
                    CallKind::Bind => "BIND",
                };
                match (c.error, c.call) {
                    (Some(e), _) => write!(f, "{call:<8}{e} {} fd={}", c.addr, c.fd)?,
                    (None, CallKind::Connect) => {
                        write!(f, "{call:<8}EINPROGRESS {} fd={}", c.addr, c.fd)?
                    }
                    (None, CallKind::Bind) => write!(f, "{call:<8}ok {} fd={}", c.addr, c.fd)?,
                }
                if let Some(p) = c.bound_port {
                    write!(f, " bound_port={p}")?;
                }
                if let Some(sk) = c.sk {
                    write!(f, " sk={sk:#x}")?;
                }
                Ok(())
            }
            EventKind::TimeWait(tw) => {
                let op = match tw.op {
                    TwOp::Start => "TW_START",
                    TwOp::Cancel => "TW_CANCEL",
                    TwOp::Expire => "TW_EXPIRE",
                };
                write!(
                    f,
                    "{op:<9} {}  {} > {}  remaining={}j tw={:#x}",
                    tw.substate, tw.local, tw.remote, tw.remaining_jiffies, tw.tw
                )
            }
        }
    }
}
