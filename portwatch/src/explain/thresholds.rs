//! Every threshold the rules use, in one place (README "Report JSON schema" restates them).

pub(super) const NS: u64 = 1_000_000_000;
/// TCP_TIMEWAIT_LEN (include/net/tcp.h): no sysctl changes it (docs/kernel-facts.md).
pub(super) const TIME_WAIT_S: f64 = 60.0;

/// A failure this recent means "failing now" (critical).
pub(super) const RECENT_FAILURE_S: u64 = 60;
/// Running out sooner than this is critical…
pub(super) const CRITICAL_ETA_S: f64 = 60.0;
/// … sooner than this, a warning.
pub(super) const WARNING_ETA_S: f64 = 600.0;
/// Utilisation (ports that block `connect()` / capacity, now or at steady state) that is a
/// warning…
pub(super) const WARNING_UTIL: f64 = 0.70;
/// … and worth an info finding. Below it a busy pool is healthy: no finding.
pub(super) const INFO_UTIL: f64 = 0.50;

/// An exhaustion time counts only when in-use ports grew over this many seconds (and in the
/// last two): a burst is not a trend.
pub(super) const GROWTH_SECONDS: usize = 5;

/// A state holding at least this share of a pool's sockets is a cause of its pressure (a pool
/// can have two causes, e.g. TIME_WAIT churn and concurrency).
pub(super) const CAUSE_SHARE_NUM: u64 = 1;
pub(super) const CAUSE_SHARE_DEN: u64 = 3;

/// SYN_SENT sockets in a pool before connects "not completing" is worth saying (and only when
/// they are at least half the pool: a healthy pool, even far away, has far more ESTABLISHED or
/// TIME_WAIT than SYN_SENT)…
pub(super) const SYN_SENT_MIN: u32 = 20;
/// … and a warning.
pub(super) const SYN_SENT_WARN: u32 = 100;

/// CLOSE_WAIT sockets of one process before it can be a leak.
pub(super) const CLOSE_WAIT_MIN: u32 = 5;
/// The oldest in CLOSE_WAIT this long: the process is not closing them.
pub(super) const CLOSE_WAIT_OLD_S: f64 = 60.0;
/// Old and at least this many (and new ones arriving, or very many): warning.
pub(super) const CLOSE_WAIT_WARN: u32 = 20;
pub(super) const CLOSE_WAIT_MANY: u32 = 100;
/// This many new CLOSE_WAIT in the last minute ("hundreds"), still there: a leak growing fast
/// (warning), even before the oldest is a minute old. A burst of 100 closed at once stays info.
pub(super) const CLOSE_WAIT_FAST: u32 = 200;

/// Bind-before-connect sockets: info from this many (a pattern that works until it doesn't)…
pub(super) const BBC_MIN: u32 = 100;
/// … or this share of the namespace's usable ports; warning from this share.
pub(super) const BBC_INFO_SHARE: f64 = 0.05;
pub(super) const BBC_WARN_SHARE: f64 = 0.30;

/// Bind conflicts explained per call (the addresses failing most).
pub(super) const BIND_CONFLICTS_MAX: usize = 20;

/// Reserved ports or listeners taking this share of the scanned range: info (warning when a
/// pool of the namespace is under pressure).
pub(super) const RANGE_LOSS_SHARE: f64 = 0.05;
/// TIME_WAIT sockets at this share of `tcp_max_tw_buckets`: nearly overflowing.
const TW_BUCKETS_NEAR: f64 = 0.90;

/// Whether `timewait` sockets nearly overflow `tcp_max_tw_buckets = max` (the rule's test,
/// and what the TUI's header colours by).
pub fn tw_buckets_near(timewait: u32, max: u32) -> bool {
    max > 0 && f64::from(timewait) >= TW_BUCKETS_NEAR * f64::from(max)
}

/// A NAT pool this full (blocking entries / the rule's ports): warning; full is critical.
pub(super) const NAT_WARN_UTIL: f64 = 0.70;
/// The conntrack table this full (`nf_conntrack_count / nf_conntrack_max`): warning…
pub(super) const CT_TABLE_WARN: f64 = 0.90;
/// … and this full, or entries evicted early: critical.
pub(super) const CT_TABLE_CRITICAL: f64 = 0.98;

/// The share of a pool's newest connections (at least `model::PARITY_SAMPLE` of them) on
/// the parity the kernel scans second that says the first parity is full (warning): past
/// half, most searches walked the whole first half.
pub(super) const SEARCH_SECOND_PARITY_SHARE: f64 = 0.5;
/// … in a pool at least this full (ports blocking connect() / capacity) by the model's count.
pub(super) const SEARCH_MIN_UTIL: f64 = 0.25;
/// A share that says the first parity is filling: with it, a slower connect() counts.
pub(super) const SEARCH_SECOND_PARITY_SOME: f64 = 0.25;
/// `connect()`'s median this many times its baseline (the fastest window's median)…
pub(super) const LATENCY_RISE: f64 = 3.0;
/// … and at least this much slower (µs), so that noise on a fast loopback is not a rise.
pub(super) const LATENCY_RISE_MIN_US: f64 = 20.0;
