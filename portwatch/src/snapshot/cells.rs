//! How a figure of the snapshot reads in a table, and under which name. The TUI and the text
//! report print every column they share through these (`PoolCells`, `ProcessCells`, …), so the
//! two never disagree; `snapshot::tests::views` checks it on one snapshot. Prose (evidence,
//! remedies, headlines) uses `explain::words`, whose exact counts read better in a sentence.

use crate::{
    event::{CallKind, TcpState},
    model::{
        FailureGroup, GROUP_PIDS, ListenerStats, PoolStats, ProcRef, ProcessGroupStats,
        ProcessStats, RemoteStats, StateCounts, nat::NatPoolStats,
    },
};

/// A count in a table: exact (with separators) below 100 000, then `123k`, `1.2M`, `12M`.
pub fn count(n: u64) -> String {
    match n {
        0..100_000 => crate::explain::words::count(n),
        100_000..1_000_000 => format!("{}k", n / 1000),
        1_000_000..10_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{}M", n / 1_000_000),
    }
}

/// A count in at most `w` columns: [`count`] when it fits, else [`short`].
pub fn count_in(n: u64, w: usize) -> String {
    let exact = count(n);
    if exact.chars().count() <= w {
        exact
    } else {
        short(n)
    }
}

/// A count in at most four characters, rounded down: `999`, `1.2k`, `28k`, `123k`, `1.2M`,
/// `12M`.
pub fn short(n: u64) -> String {
    let tenths = |unit: u64, suffix: &str| {
        let t = n * 10 / unit;
        match t % 10 {
            0 => format!("{}{suffix}", t / 10),
            d => format!("{}.{d}{suffix}", t / 10),
        }
    };
    match n {
        0..1000 => n.to_string(),
        1000..10_000 => tenths(1000, "k"),
        10_000..1_000_000 => format!("{}k", n / 1000),
        1_000_000..10_000_000 => tenths(1_000_000, "M"),
        _ => format!("{}M", n / 1_000_000),
    }
}

/// `a/b` in at most `w` columns: exact, else `b` short, else both (`1,234/28k`, `28k/28k`).
pub fn fraction_in(a: u64, b: u64, w: usize) -> String {
    let forms = [
        format!("{}/{}", count(a), count(b)),
        format!("{}/{}", count(a), short(b)),
    ];
    (forms.into_iter().find(|f| f.chars().count() <= w))
        .unwrap_or_else(|| format!("{}/{}", short(a), short(b)))
}

/// [`count`] for `u32`.
pub fn n(v: u32) -> String {
    count(u64::from(v))
}

/// A rate per second: `0`, `0.4`, `12`, `400`, `1,234`, `123k`.
pub fn rate(r: f64) -> String {
    if r <= 0.0 || !r.is_finite() {
        "0".into()
    } else if r < 10.0 {
        let s = format!("{r:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_string)
    } else {
        count(r.round() as u64)
    }
}

/// A duration in at most five characters: `45s`, `12m`, `3h05m`, `14h`, `2d`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    match s {
        0..120 => format!("{s}s"),
        120..3600 => format!("{}m", s / 60),
        3600..36_000 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        36_000..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Time to exhaustion: `OUT` when none is left, `—` when not heading there.
pub fn eta(t: Option<f64>) -> String {
    match t {
        Some(t) if t <= 0.0 => "OUT".into(),
        Some(t) => duration(t),
        None => "—".into(),
    }
}

/// How long ago, from nanosecond timestamps on the same clock.
pub fn ago(now_ns: u64, at_ns: u64) -> String {
    duration(now_ns.saturating_sub(at_ns) as f64 / 1e9)
}

/// A percentage that never rounds up to 100 before it is.
pub fn percent(frac: f64) -> String {
    if !frac.is_finite() {
        return "∞".into();
    }
    let p = (frac * 100.0).floor() as u64;
    format!("{p}%")
}

/// ESTABLISHED, TIME_WAIT and every other state.
pub fn est_tw_other(s: &StateCounts) -> (u32, u32, u32) {
    let est = s.get(TcpState::Established);
    let tw = s.get(TcpState::TimeWait);
    (est, tw, s.total() - est - tw)
}

/// ESTABLISHED, TIME_WAIT, CLOSE_WAIT (the inbound leak) and every other state.
pub fn est_tw_cw_other(s: &StateCounts) -> [u32; 4] {
    let est = s.get(TcpState::Established);
    let tw = s.get(TcpState::TimeWait);
    let cw = s.get(TcpState::CloseWait);
    [est, tw, cw, s.total() - est - tw - cw]
}

/// The syscall's name: `connect`, `bind`.
pub fn call(c: CallKind) -> &'static str {
    match c {
        CallKind::Connect => "connect",
        CallKind::Bind => "bind",
    }
}

/// A process in a table: `nginx(812)`, or `unknown`.
pub fn proc_ref(p: Option<&ProcRef>) -> String {
    p.map_or("unknown".into(), |o| format!("{}({})", o.comm, o.pid))
}

/// The names of the columns (both views' headers).
pub mod col {
    pub const PID: &str = "PID";
    pub const COMMAND: &str = "COMMAND";
    /// Ports taken out of the capacity, of the capacity (`in_use/capacity`).
    pub const IN_USE: &str = "IN USE";
    /// Effective utilisation: the ports that block `connect()` (TIME_WAIT left out where
    /// `tcp_tw_reuse` lets `connect()` take it over) over the capacity. What decides
    /// EADDRNOTAVAIL, and what the explain engine's thresholds read.
    pub const USE: &str = "USE";
    pub const ESTAB: &str = "ESTAB";
    pub const TIME_WAIT: &str = "T_WAIT";
    pub const CLOSE_WAIT: &str = "C_WAIT";
    pub const OTHER: &str = "OTHER";
    pub const TOTAL: &str = "TOTAL";
    /// Connection attempts per second (`connect()` calls, failed ones included): the demand,
    /// as findings state it.
    pub const CONN_PER_S: &str = "CONN/s";
    pub const ETA: &str = "ETA";
    /// `connect()`/`bind()` calls that failed (for a pool: with EADDRNOTAVAIL).
    pub const FAIL: &str = "FAIL";
    /// Sockets it owns now (every role).
    pub const SOCKETS: &str = "SOCK";
    /// `connect()` calls seen.
    pub const CONNECTS: &str = "CONN";
    pub const TOP_DESTINATION: &str = "TOP DESTINATION";
    pub const PARENT: &str = "PARENT";
    pub const PROCESSES: &str = "PROCS";
    pub const LISTENING_ON: &str = "LISTENING ON";
    pub const OWNER: &str = "OWNER";
    /// Listening sockets on the address (several with `SO_REUSEPORT`).
    pub const LISTENING: &str = "LSN";
    pub const ACCEPTED: &str = "ACCEPTED";
    pub const REMOTE_IP: &str = "REMOTE IP";
    /// How long ago a failure group was last and first seen.
    pub const LAST: &str = "LAST";
    pub const FIRST: &str = "FIRST";
    /// Failures in a group.
    pub const COUNT: &str = "COUNT";
    pub const ERROR: &str = "ERROR";
    pub const CALL: &str = "CALL";
    /// connect: the destination; bind: the requested local address.
    pub const ADDRESS: &str = "ADDRESS";
    /// A NAT pool's entries that a new connection cannot evict (not TIME_WAIT or CLOSE).
    pub const BLOCKING: &str = "BLOCK";
    /// Conntrack drops (SYNs that found no port, among others) since the first reading.
    pub const DROP: &str = "DROP";
    pub const NAT_IP: &str = "NAT IP";
}

/// Implements `columns()`: every cell with its column's name, in table order.
macro_rules! columns {
    ($t:ty, $n:literal, $($name:ident => $field:ident),+ $(,)?) => {
        impl $t {
            pub fn columns(&self) -> [(&'static str, &str); $n] {
                [$((col::$name, self.$field.as_str())),+]
            }
        }
    };
}

/// A latency in microseconds: `850ns`, `42µs`, `1.3ms`, `2.1s`.
pub fn micros(us: f64) -> String {
    crate::explain::words::micros(us)
}

/// `connect()`'s port search in a pool, or `None` when nothing was measured in the window:
/// `odd ports 62% of 40 new (2s) · connect p50 85µs (3.1× its 27µs baseline)`
/// (docs/early-warning.md).
pub fn port_search(p: &PoolStats) -> Option<String> {
    let s = &p.port_search;
    let mut parts = Vec::new();
    if let Some(share) = s.second_parity_share {
        parts.push(format!(
            "{} ports {} of {} new ({})",
            s.second_parity.words(),
            percent(share),
            n(s.chosen),
            duration(s.window_s as f64)
        ));
    }
    if let Some(l) = &s.latency {
        let base = match (l.rise, l.baseline_p50_us) {
            (Some(r), Some(b)) => format!(" ({r:.1}× its {} baseline)", micros(b)),
            _ => String::new(),
        };
        parts.push(format!("connect p50 {}{base}", micros(l.p50_us)));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// One pool's cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolCells {
    pub in_use: String,
    pub use_pct: String,
    pub estab: String,
    pub time_wait: String,
    pub other: String,
    pub conn_per_s: String,
    pub eta: String,
    pub fail: String,
    /// Not a column: the drill-down's and the report's port-search line ([`port_search`]).
    pub search: Option<String>,
}

impl PoolCells {
    pub fn of(p: &PoolStats) -> PoolCells {
        PoolCells::within(p, [usize::MAX; 8])
    }

    /// The cells in at most `w` columns each (in [`PoolCells::columns`]' order): exact
    /// figures where they fit, shorter ones ([`short`]) where not.
    pub fn within(p: &PoolStats, w: [usize; 8]) -> PoolCells {
        let (est, tw, other) = est_tw_other(&p.states);
        let c = |v: u32, w: usize| count_in(u64::from(v), w);
        let conn = rate(p.rates.attempts_per_s);
        PoolCells {
            in_use: fraction_in(u64::from(p.in_use), u64::from(p.capacity), w[0]),
            use_pct: percent(p.effective_utilisation),
            estab: c(est, w[2]),
            time_wait: c(tw, w[3]),
            other: c(other, w[4]),
            conn_per_s: if conn.chars().count() <= w[5] {
                conn
            } else {
                short(p.rates.attempts_per_s.round() as u64)
            },
            eta: eta(p.time_to_exhaustion_s),
            fail: count_in(p.eaddrnotavail, w[7]),
            search: port_search(p),
        }
    }
}

columns!(PoolCells, 8, IN_USE => in_use, USE => use_pct, ESTAB => estab,
    TIME_WAIT => time_wait, OTHER => other, CONN_PER_S => conn_per_s, ETA => eta, FAIL => fail);

/// One process's cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCells {
    pub pid: String,
    pub comm: String,
    pub sockets: String,
    pub connects: String,
    pub failures: String,
    /// Its busiest destination (`10.0.0.5:443 ×12`), else where it listens.
    pub top: String,
}

impl ProcessCells {
    pub fn of(p: &ProcessStats) -> ProcessCells {
        let top = p
            .outbound
            .first()
            .map(|d| format!("{} ×{}", d.dst, n(d.total)))
            .or_else(|| p.listening.first().map(|l| format!("listening on {l}")))
            .unwrap_or_else(|| "—".into());
        ProcessCells {
            pid: p.process.pid.to_string(),
            comm: p.process.comm.to_string(),
            sockets: n(p.sockets),
            connects: count(p.connects),
            failures: count(p.failures),
            top,
        }
    }
}

columns!(ProcessCells, 6, PID => pid, COMMAND => comm, SOCKETS => sockets,
    CONNECTS => connects, FAIL => failures, TOP_DESTINATION => top);

/// One process group's cells (same command and parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCells {
    pub comm: String,
    pub ppid: String,
    pub processes: String,
    pub sockets: String,
    pub connects: String,
    pub failures: String,
}

impl GroupCells {
    pub fn of(g: &ProcessGroupStats) -> GroupCells {
        GroupCells {
            comm: g.comm.to_string(),
            ppid: g.ppid.to_string(),
            processes: n(g.processes),
            sockets: n(g.sockets),
            connects: count(g.connects),
            failures: count(g.failures),
        }
    }
}

columns!(GroupCells, 6, COMMAND => comm, PARENT => ppid, PROCESSES => processes,
    SOCKETS => sockets, CONNECTS => connects, FAIL => failures);

/// One listener's cells: its accepted sockets by state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerCells {
    pub local: String,
    pub owner: String,
    pub listening: String,
    pub accepted: String,
    pub estab: String,
    pub time_wait: String,
    pub close_wait: String,
    pub other: String,
}

impl ListenerCells {
    pub fn of(l: &ListenerStats) -> ListenerCells {
        let [est, tw, cw, other] = est_tw_cw_other(&l.states);
        ListenerCells {
            local: l.local.to_string(),
            owner: proc_ref(l.owner.as_ref()),
            listening: n(l.listening),
            accepted: count(l.accepted),
            estab: n(est),
            time_wait: n(tw),
            close_wait: n(cw),
            other: n(other),
        }
    }
}

columns!(ListenerCells, 8, LISTENING_ON => local, OWNER => owner, LISTENING => listening,
    ACCEPTED => accepted, ESTAB => estab, TIME_WAIT => time_wait, CLOSE_WAIT => close_wait,
    OTHER => other);

/// One remote IP of a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCells {
    pub ip: String,
    pub estab: String,
    pub time_wait: String,
    pub close_wait: String,
    pub other: String,
    pub total: String,
}

impl RemoteCells {
    pub fn of(r: &RemoteStats) -> RemoteCells {
        let [est, tw, cw, other] = est_tw_cw_other(&r.states);
        RemoteCells {
            ip: r.ip.to_string(),
            estab: n(est),
            time_wait: n(tw),
            close_wait: n(cw),
            other: n(other),
            total: n(r.total),
        }
    }
}

columns!(RemoteCells, 6, REMOTE_IP => ip, ESTAB => estab, TIME_WAIT => time_wait,
    CLOSE_WAIT => close_wait, OTHER => other, TOTAL => total);

/// One NAT pool's cells, each in at most `w` columns (`usize::MAX`: exact), in the TUI's
/// order: IN USE, USE, BLOCK, ETA, DROP (the text report describes NAT pools in words).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatPoolCells {
    pub in_use: String,
    pub use_pct: String,
    pub blocking: String,
    pub eta: String,
    pub drop: String,
}

impl NatPoolCells {
    pub fn within(p: &NatPoolStats, w: [usize; 5]) -> NatPoolCells {
        NatPoolCells {
            in_use: fraction_in(u64::from(p.in_use), u64::from(p.capacity.ports), w[0]),
            use_pct: percent(p.effective_utilisation),
            blocking: count_in(u64::from(p.blocking), w[2]),
            eta: eta(p.time_to_exhaustion_s),
            drop: count_in(p.drop, w[4]),
        }
    }
}

/// One failure group's cells, its ages from `now_ns`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureGroupCells {
    pub last: String,
    pub first: String,
    pub count: String,
    pub errno: String,
    pub call: String,
    /// The newest failure's pid, and how many other processes failed the same way:
    /// `3013`, `3013+2`, `3013+7+` (at least 7: distinct pids are counted up to
    /// [`GROUP_PIDS`]).
    pub pid: String,
    pub comm: String,
    pub addr: String,
}

impl FailureGroupCells {
    pub fn of(g: &FailureGroup, now_ns: u64) -> FailureGroupCells {
        let pid = match g.pids {
            0 | 1 => g.pid.to_string(),
            n if n as usize >= GROUP_PIDS => format!("{}+{}+", g.pid, n - 1),
            n => format!("{}+{}", g.pid, n - 1),
        };
        FailureGroupCells {
            last: ago(now_ns, g.count.last_ns),
            first: ago(now_ns, g.count.first_ns),
            count: count(g.count.count),
            errno: g.errno.name(),
            call: call(g.call).into(),
            pid,
            comm: g.comm.to_string(),
            addr: g.addr.to_string(),
        }
    }
}

columns!(FailureGroupCells, 8, LAST => last, FIRST => first, COUNT => count, ERROR => errno,
    CALL => call, PID => pid, COMMAND => comm, ADDRESS => addr);
