//! How a figure of the snapshot reads in a table, and under which name: the TUI and the text
//! report print a column they share through these, so the two never disagree. Prose (evidence,
//! remedies, headlines) uses `explain::words`, whose exact counts read better in a sentence.

use super::Snapshot;
use crate::{
    event::TcpState,
    explain::Severity,
    model::{PoolStats, ProcessStats, StateCounts},
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

/// A duration: `45s`, `12m`, `3h05m`, `2d`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "—".into();
    }
    let s = s.round() as u64;
    match s {
        0..120 => format!("{s}s"),
        120..3600 => format!("{}m", s / 60),
        3600..172_800 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
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

/// The pool columns both views show, by name.
pub mod pool {
    /// Ports taken out of the capacity, of the capacity (`in_use/capacity`).
    pub const IN_USE: &str = "IN USE";
    /// Effective utilisation: the ports that block `connect()` (TIME_WAIT left out where
    /// `tcp_tw_reuse` lets `connect()` take it over) over the capacity. What decides
    /// EADDRNOTAVAIL, and what the explain engine's thresholds read.
    pub const USE: &str = "USE";
    pub const ESTAB: &str = "ESTAB";
    pub const TIME_WAIT: &str = "T_WAIT";
    pub const OTHER: &str = "OTHER";
    /// Connection attempts per second (`connect()` calls, failed ones included): the demand,
    /// as findings state it.
    pub const CONN_PER_S: &str = "CONN/s";
    pub const ETA: &str = "ETA";
    /// `connect()` calls that failed with EADDRNOTAVAIL.
    pub const FAIL: &str = "FAIL";
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
}

impl PoolCells {
    pub fn of(p: &PoolStats) -> PoolCells {
        let (est, tw, other) = est_tw_other(&p.states);
        PoolCells {
            in_use: format!("{}/{}", n(p.in_use), n(p.capacity)),
            use_pct: percent(p.effective_utilisation),
            estab: n(est),
            time_wait: n(tw),
            other: n(other),
            conn_per_s: rate(p.rates.attempts_per_s),
            eta: eta(p.time_to_exhaustion_s),
            fail: count(p.eaddrnotavail),
        }
    }

    /// The columns' names, in [`PoolCells::values`] order.
    pub const NAMES: [&'static str; 8] = [
        pool::IN_USE,
        pool::USE,
        pool::ESTAB,
        pool::TIME_WAIT,
        pool::OTHER,
        pool::CONN_PER_S,
        pool::ETA,
        pool::FAIL,
    ];

    pub fn values(&self) -> [&str; 8] {
        [
            &self.in_use,
            &self.use_pct,
            &self.estab,
            &self.time_wait,
            &self.other,
            &self.conn_per_s,
            &self.eta,
            &self.fail,
        ]
    }
}

/// The process columns both views show, by name.
pub mod process {
    pub const PID: &str = "PID";
    pub const COMMAND: &str = "COMMAND";
    /// Sockets it owns now (every role).
    pub const SOCKETS: &str = "SOCK";
    /// `connect()` calls seen.
    pub const CONNECTS: &str = "CONN";
    pub const FAILURES: &str = "FAIL";
}

/// One process's cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCells {
    pub pid: String,
    pub comm: String,
    pub sockets: String,
    pub connects: String,
    pub failures: String,
}

impl ProcessCells {
    pub fn of(p: &ProcessStats) -> ProcessCells {
        ProcessCells {
            pid: p.process.pid.to_string(),
            comm: p.process.comm.to_string(),
            sockets: n(p.sockets),
            connects: count(p.connects),
            failures: count(p.failures),
        }
    }

    /// The columns' names, in [`ProcessCells::values`] order.
    pub const NAMES: [&'static str; 5] = [
        process::PID,
        process::COMMAND,
        process::SOCKETS,
        process::CONNECTS,
        process::FAILURES,
    ];

    pub fn values(&self) -> [&str; 5] {
        [
            &self.pid,
            &self.comm,
            &self.sockets,
            &self.connects,
            &self.failures,
        ]
    }
}

impl Snapshot {
    /// The severity of the pool with this key, if it is among the snapshot's pools.
    pub fn severity_of(&self, key: &crate::model::PoolKey) -> Option<Severity> {
        let i = self.pools.iter().position(|p| p.key() == *key)?;
        self.severity_of_pool(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_numbers() {
        assert_eq!(count(9_999), "9,999");
        assert_eq!(count(28_232), "28,232");
        assert_eq!(count(123_456), "123k");
        assert_eq!(count(2_000_000), "2.0M");
        assert_eq!(count(20_000_000), "20M");
        assert_eq!(rate(0.44), "0.4");
        assert_eq!(rate(3.0), "3");
        assert_eq!(rate(480.0), "480");
        assert_eq!(rate(1234.4), "1,234");
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(eta(Some(0.0)), "OUT");
        assert_eq!(eta(None), "—");
        assert_eq!(percent(0.999), "99%");
        assert_eq!(percent(f64::INFINITY), "∞");
    }
}
