//! The explain engine: rules over the model that say why a pool is (or will be) out of
//! ports, or why connections fail, as ranked [`Finding`]s with their evidence and the remedies
//! for that cause (and the ones people reach for that would not help, with why).
//!
//! Pure: [`explain`] reads the model at `now_ns` (or [`explain_tables`] the tables a refresh
//! took once) and returns findings; nothing is remembered between calls. Every statement
//! agrees with docs/kernel-facts.md (TIME_WAIT is 60 s and no sysctl
//! changes it; `tcp_tw_reuse` helps only `connect()` and only with TIME_WAIT; …).
//!
//! Rules, one file per family (thresholds in `thresholds.rs`):
//! - `pools`: per pool under pressure — `time_wait_churn`, `concurrency` — and
//!   `syn_sent_pileup` (connects not completing), one finding per pool and cause;
//! - `bind`: `bind_before_connect` per (namespace, command, parent) and `bind_conflict` per
//!   (namespace, address), naming who holds the port;
//! - `leak`: `close_wait_leak` per (namespace, process);
//! - `config`: per namespace and [`ConfigIssue`];
//! - `episodes`: a pool's exhaustion episode, ongoing or past, classified from what held
//!   the pool when `connect()` failed (ranked below what fails now when past);
//! - `nat`: `snat_exhaustion` per NAT pool (absorbing the `syn_sent_pileup` of the clients
//!   whose SYNs it drops) and `conntrack_table_full` per namespace.
//!
//! Severity: **critical** when failing now (EADDRNOTAVAIL/EADDRINUSE in the last minute) or
//! out of ports in under a minute; **warning** when heading there (under 10 minutes, or over
//! 70 % of the ports blocking `connect()` now or at the steady state of the current rate), or
//! a leak growing, or `connect()`'s port search straining (most new ports on the parity the
//! kernel scans second, or `connect()` several times slower than its baseline: `search`);
//! **info** otherwise. A busy pool under 50 % with no failure or strain gives nothing.
//! A past exhaustion episode is a warning for 10 minutes after its end, then info.

mod bind;
mod config;
mod ctx;
mod episodes;
pub mod finding;
mod finwait;
mod leak;
mod nat;
mod pools;
mod programs;
mod remedies;
mod search;
mod thresholds;
mod who;
pub mod words;

#[cfg(test)]
pub(crate) mod tests;

use std::cmp::Ordering;

pub use episodes::EpisodeRef;
pub use finding::{Cause, ConfigIssue, Finding, Remedy, Severity};
pub use thresholds::tw_buckets_near;

use crate::model::{Model, Tables};

/// Every finding about the model at `now_ns`, highest [`Finding::score`] first (severity
/// dominates). At most one finding per pool and cause, per bind-before-connect group, per
/// failing bind address, per CLOSE_WAIT owner, and per namespace and config issue.
pub fn explain(model: &Model, now_ns: u64) -> Vec<Finding> {
    explain_tables(model, &model.tables(now_ns)).findings
}

/// What the rules conclude from one refresh's tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// As [`explain`] returns them.
    pub findings: Vec<Finding>,
    /// Each pool's severity (failing now, heading there, worth knowing, or nothing), in the
    /// order of `tables.pools`: what views colour a pool by.
    pub pool_severity: Vec<Option<Severity>>,
}

/// [`explain`] on tables the caller took once ([`Model::tables`]); `model` is read only on
/// demand (a pool's history, who holds a port).
pub fn explain_tables(model: &Model, tables: &Tables) -> Explained {
    let ctx = ctx::Ctx::new(model, tables);
    let mut out = Vec::new();
    pools::rules(&ctx, &mut out);
    episodes::past(&ctx, &mut out);
    bind::bind_before_connect(&ctx, &mut out);
    bind::bind_conflict(&ctx, &mut out);
    leak::close_wait_leak(&ctx, &mut out);
    config::rules(&ctx, &mut out);
    let explained = nat::rules(tables, &mut out);
    nat::absorb(&mut out, &explained);
    for f in &mut out {
        f.score = score(f);
    }
    root_causes_first(&mut out);
    out.sort_by(rank);
    dedup(&mut out);
    Explained {
        findings: out,
        pool_severity: ctx.pools.iter().map(|p| p.severity).collect(),
    }
}

/// Severity band (critical 300, warning 200, info 100) + urgency under 100: how full
/// (40), how soon (40), how many errors (19, logarithmic).
fn score(f: &Finding) -> f64 {
    let base = match f.severity {
        Severity::Critical => 300.0,
        Severity::Warning => 200.0,
        Severity::Info => 100.0,
    };
    // A past episode's fill and exhaustion time are history, not pressure now.
    let util = match (f.in_use, f.capacity) {
        (Some(u), Some(c)) if c > 0 && !f.is_past() => (f64::from(u) / f64::from(c)).min(1.0),
        _ => 0.0,
    };
    let soon = f.eta_s.map_or(0.0, |t| {
        1.0 - (t / thresholds::WARNING_ETA_S).clamp(0.0, 1.0)
    });
    let errors: u64 = f.errors.values().sum();
    let errs = ((1 + errors) as f64).log10().min(6.0) / 6.0;
    base + 40.0 * util + 40.0 * soon + 19.0 * errs
}

/// A CLOSE_WAIT leak whose clients on this host hold their ports in FIN_WAIT2 waiting for it
/// is the root cause of their finding: it ranks just above it (same severity band).
fn root_causes_first(v: &mut [Finding]) {
    let held: Vec<(u32, Option<std::net::SocketAddr>, Severity, f64)> = v
        .iter()
        .filter(|f| f.cause == Cause::FinWait2Hold)
        .map(|f| (f.netns, f.dst, f.severity, f.score))
        .collect();
    for f in v.iter_mut().filter(|f| f.cause == Cause::CloseWaitLeak) {
        for (netns, dst, sev, score) in &held {
            if f.netns == *netns && f.dst == *dst && dst.is_some() {
                f.severity = f.severity.max(*sev);
                f.score = f.score.max(score + 0.01);
            }
        }
    }
}

fn rank(a: &Finding, b: &Finding) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.cause.cmp(&b.cause))
        .then(a.netns.cmp(&b.netns))
        .then(a.dst.cmp(&b.dst))
        .then(a.issue.cmp(&b.issue))
        .then(a.comm.cmp(&b.comm))
}

/// Keeps the first (highest-ranked) finding of each identity.
fn dedup(v: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|f| {
        seen.insert((
            f.cause,
            f.issue,
            f.netns,
            f.src_ip,
            f.dst,
            f.comm.clone(),
            f.ppid,
        ))
    });
}
