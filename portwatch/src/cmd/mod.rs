//! One module per subcommand, each with `Args` and `run(args)`.

pub mod check;
pub mod completions;
pub mod demo;
pub mod demo_client;
pub mod events;
pub mod export;
pub mod info;
pub mod man;
pub mod record;
pub mod replay;
pub mod report;
pub mod serve;
pub mod tui;

use std::time::Duration;

use crate::{
    collect::{self, Options},
    session::{LiveOptions, live::DEFAULT_RECONCILE},
};

/// Tracing options shared by every subcommand that traces.
#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {
    /// Ring buffer size (bytes; K/M suffixes allowed): a power of two. Larger rides out longer
    /// bursts; when it fills, the kernel counts the events it drops and portwatch reports them.
    #[arg(long, value_name = "BYTES", default_value = "4M", value_parser = parse_size)]
    pub ring_size: u32,
    /// Do not track TIME_WAIT through the timewait timers (saves a filter on every kernel
    /// timer; TIME_WAIT then only shows in sock_diag snapshots).
    #[arg(long)]
    pub no_timewait: bool,
    /// Do not trace connect()/bind() (no EADDRNOTAVAIL/EADDRINUSE reports).
    #[arg(long)]
    pub no_calls: bool,
}

impl TraceArgs {
    pub fn options(&self) -> Options {
        Options {
            ring_bytes: self.ring_size,
            timewait: !self.no_timewait,
            calls: !self.no_calls,
            netns: None,
        }
    }
}

/// Session options that tests use (hidden from `--help`).
#[derive(clap::Args, Debug, Clone)]
pub struct SessionArgs {
    /// Reconcile the model against sock_diag this often.
    #[arg(long, hide = true, value_name = "D", value_parser = parse_duration)]
    pub reconcile_every: Option<Duration>,
    /// Test only: make the first N reconciliations fail (a warning in every view and in
    /// the recording).
    #[arg(long, hide = true, value_name = "N", default_value_t = 0)]
    pub fail_reconciliations: u32,
}

impl SessionArgs {
    pub fn live_options(&self, trace: &TraceArgs) -> LiveOptions {
        LiveOptions {
            trace: trace.options(),
            reconcile_every: Some(self.reconcile_every.unwrap_or(DEFAULT_RECONCILE)),
            fail_reconciliations: self.fail_reconciliations,
            ..Default::default()
        }
    }
}

/// "4M", "512K", "65536".
pub fn parse_size(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1u64 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1u64 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 4M or 65536"))?;
    let bytes = u32::try_from(n * mult).map_err(|_| format!("`{s}` is too large"))?;
    collect::check_ring_bytes(bytes)?;
    Ok(bytes)
}

/// "14" (a bare number is seconds, as for `timeout` and `sleep`; "1.5" too), "14s", "2m",
/// "1h30m", "500ms".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.bytes().any(|b| b.is_ascii_digit()) {
        return s
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("`{s}` is not a number of seconds (e.g. 14, 10s, 2m)"));
    }
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (e.g. 14, 10s, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("8192"), Ok(8192));
        assert!(parse_size("3M").is_err());
        assert!(parse_size("100").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("8G").is_err());
    }

    #[test]
    fn durations() {
        let secs = Duration::from_secs;
        assert_eq!(parse_duration("14"), Ok(secs(14)));
        assert_eq!(parse_duration("0"), Ok(secs(0)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("14s"), Ok(secs(14)));
        assert_eq!(parse_duration("2m"), Ok(secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "1.2.3", ".", "-3", "3x", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
