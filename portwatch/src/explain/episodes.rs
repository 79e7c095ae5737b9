//! Findings about exhaustion episodes (`model/episodes.rs`): the cause of a pool that ran out
//! is read from what held it when `connect()` failed (the latest failure burst; the peak when
//! nothing failed), never from what is left at the end of the window.
//!
//! - An **ongoing** episode: the pool's findings are made from that composition, at the pool's
//!   own severity (critical while failing), so a pool that filled with ESTABLISHED and then
//!   ended by RST stays "too many concurrent connections" while its failures are recent.
//! - A **past** episode (ended: under the hysteresis threshold, no failure for the quiet
//!   time): the same findings at **info** (nothing fails now; a pool heading for exhaustion
//!   is a warning), saying in the title that it is past and when it ended; `in_use`,
//!   `capacity` and `states` are the pool now, the composition is in `episode`. Their score
//!   counts only the errors, so they rank below what is failing now and below pools heading
//!   there, and above healthy pools (which have no finding).
//!
//! An ongoing episode whose pool is still at or over the hysteresis threshold is classified
//! from the pool now: connects failing now meet what holds it now. Once under it (the RST
//! case) it is the composition at the failures. Evidence stays one sentence: the moment the
//! composition is from leads it, the pool now closes it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Finding, Severity,
    ctx::{Ctx, Mix, PoolView},
    pools,
    thresholds::{NS, TIME_WAIT_S},
    who::{self, Who},
    words::{dur, n},
};
use crate::model::{
    Composition, Episode, PoolStats,
    episodes::{HYSTERESIS_DEN, HYSTERESIS_NUM},
};

/// The episode a finding is about (`episode` in the JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpisodeRef {
    /// [`Episode::id`].
    pub id: u64,
    pub ongoing: bool,
    pub start_ns: u64,
    pub end_ns: Option<u64>,
    /// How long it lasted (so far, when ongoing).
    pub duration_s: f64,
    /// Seconds between its end and the report's moment.
    pub ended_s_ago: Option<f64>,
    /// `connect()` calls that failed with EADDRNOTAVAIL during it.
    pub failures: u64,
    /// When the composition the cause was read from was taken (the report's moment when it
    /// was read from the pool now: an ongoing episode whose pool is still full).
    pub composition_at_ns: u64,
    pub composition_s_ago: f64,
    /// The ports held when that composition was taken, by state (as `ss` names them).
    pub composition: BTreeMap<String, u32>,
}

impl EpisodeRef {
    /// `now_states`: the pool now, when its cause was read from it (an ongoing episode
    /// still full).
    fn of(e: &Episode, now: u64, now_states: Option<BTreeMap<String, u32>>) -> EpisodeRef {
        let c = e.cause_composition();
        let end = e.end_ns.unwrap_or(now);
        let (at, composition) = match now_states {
            Some(s) => (now, s),
            None => (
                c.at_ns,
                c.states
                    .iter()
                    .map(|(s, k)| (s.name().to_string(), k))
                    .collect(),
            ),
        };
        EpisodeRef {
            id: e.id,
            ongoing: e.ongoing(),
            start_ns: e.start_ns,
            end_ns: e.end_ns,
            duration_s: secs(end.saturating_sub(e.start_ns)),
            ended_s_ago: e.end_ns.map(|t| secs(now.saturating_sub(t))),
            failures: e.failures,
            composition_at_ns: at,
            composition_s_ago: secs(now.saturating_sub(at)),
            composition,
        }
    }
}

fn secs(ns: u64) -> f64 {
    ns as f64 / NS as f64
}

/// The pool as it was in `c`, for the pool rules (the current stats where `c` has nothing to
/// say: addresses, sysctls).
fn stats_at(e: &Episode, c: &Composition, now: Option<&PoolStats>) -> PoolStats {
    let ratio = |x: u32| f64::from(x) / f64::from(c.capacity.max(1));
    PoolStats {
        netns: e.pool.netns,
        src: e.pool.src,
        dst: e.pool.dst,
        states: c.states,
        states_in_capacity: c.states,
        in_use: c.in_use,
        blocking: c.blocking,
        outside_capacity: 0,
        bind_before_connect: c.bind_before_connect,
        capacity: c.capacity,
        utilisation: ratio(c.in_use),
        effective_utilisation: ratio(c.blocking),
        tw_reusable: c.tw_reusable,
        rates: c.rates,
        // Not kept in a composition: the port search is about the newest connections.
        port_search: crate::model::PortSearch {
            chosen: 0,
            window_s: 0,
            second_parity: now.map_or(crate::model::Parity::Odd, |p| p.port_search.second_parity),
            on_second_parity: 0,
            second_parity_share: None,
            latency: None,
        },
        time_to_exhaustion_s: (c.blocking >= c.capacity).then_some(0.0),
        eaddrnotavail: e.failures,
        last_failure_ns: e.last_failure_ns,
        closes: c.closes,
        owners: Vec::new(),
        sysctls_assumed: now.is_some_and(|p| p.sysctls_assumed),
        urgency: 0.0,
    }
}

/// Who held the ports in `c`: its largest group of (command, parent), unless unknown owners
/// held more; whoever failed to connect when nobody held any.
fn who_at(ctx: &Ctx, e: &Episode, c: &Composition) -> Who {
    match c.owners.first() {
        Some(o) if o.sockets >= c.unknown_owner_sockets => Who {
            process_count: o.processes,
            sockets: o.sockets,
            ..Who::one(&o.process)
        },
        _ if c.unknown_owner_sockets > 0 => Who {
            sockets: c.unknown_owner_sockets,
            ..Who::default()
        },
        _ => who::from_failures(
            ctx.failures
                .recent
                .iter()
                .filter(|r| r.pool == Some(e.pool)),
        )
        .map(|w| Who { sockets: 0, ..w })
        .unwrap_or_default(),
    }
}

fn view_at<'a>(
    ctx: &Ctx,
    stats: &'a PoolStats,
    e: &'a Episode,
    c: &Composition,
    now: Option<&PoolView>,
    severity: Severity,
) -> PoolView<'a> {
    let mix = Mix::of(&c.states);
    let need = (!c.tw_reusable && mix.dominant(mix.closing)).then(|| {
        let rest = c.blocking.saturating_sub(mix.closing);
        (c.rates.attempts_per_s * TIME_WAIT_S).round() as u32 + rest
    });
    let mut errors = now.map(|p| p.errors.clone()).unwrap_or_default();
    if e.failures > 0 {
        errors.insert("EADDRNOTAVAIL".to_string(), e.failures);
    } else {
        errors.remove("EADDRNOTAVAIL");
    }
    PoolView {
        stats,
        mix,
        need,
        // Out of ports at that moment; a past episode is not running out now.
        eta: if e.ongoing() {
            stats.time_to_exhaustion_s
        } else {
            None
        },
        failing_now: e.ongoing() && now.is_some_and(|p| p.failing_now),
        severity: Some(severity),
        // The port search is about now, not the composition (docs/early-warning.md).
        strain: None,
        who: who_at(ctx, e, c),
        errors,
        episode: Some(e),
    }
}

/// The findings of `v` (a pool as it was during an episode).
fn findings_of(ctx: &Ctx, v: &PoolView, sev: Severity) -> Vec<Finding> {
    let mut out = Vec::new();
    pools::causes(ctx, v, sev, &mut out);
    if let Some(s) = pools::syn_sent_severity(v) {
        out.push(pools::syn_sent_pileup(v, s));
    }
    out
}

/// `evidence` (one sentence) as of an earlier moment: `when` leads it, `now` closes it.
fn as_of(evidence: &str, when: &str, now: &str) -> String {
    format!("{when}: {}{now}.", evidence.trim_end_matches('.'))
}

fn when(e: &Episode, c: &Composition, now: u64) -> String {
    let moment = if e.bursts.is_empty() {
        "At the pool's peak"
    } else {
        "When connect() failed"
    };
    format!(
        "{moment} ({} before this report)",
        dur(secs(now.saturating_sub(c.at_ns)))
    )
}

fn now_words(p: Option<&PoolView>) -> String {
    p.map_or(String::new(), |p| {
        format!(
            "; now {} of the {} ports are in use",
            n(p.stats.in_use),
            n(p.stats.capacity)
        )
    })
}

/// Whether the pool is still at or over the episode's hysteresis threshold.
fn still_full(p: &PoolView) -> bool {
    let s = p.stats;
    s.capacity > 0
        && u64::from(s.blocking) * u64::from(HYSTERESIS_DEN)
            >= u64::from(s.capacity) * u64::from(HYSTERESIS_NUM)
}

/// The findings of a pool whose episode is open.
pub(super) fn ongoing(ctx: &Ctx, p: &PoolView, e: &Episode, out: &mut Vec<Finding>) {
    let sev = p.severity.unwrap_or(Severity::Warning);
    if still_full(p) {
        let mut v = Vec::new();
        pools::causes(ctx, p, sev, &mut v);
        if let Some(s) = pools::syn_sent_severity(p) {
            v.push(pools::syn_sent_pileup(p, s));
        }
        for mut f in v {
            f.episode = Some(EpisodeRef::of(e, ctx.now, Some(p.states())));
            out.push(f);
        }
        return;
    }
    let c = e.cause_composition();
    let stats = stats_at(e, c, Some(p.stats));
    let v = view_at(ctx, &stats, e, c, Some(p), sev);
    for mut f in findings_of(ctx, &v, sev) {
        f.evidence = as_of(&f.evidence, &when(e, c, ctx.now), &now_words(Some(p)));
        f.episode = Some(EpisodeRef::of(e, ctx.now, None));
        out.push(f);
    }
}

/// One finding set per pool whose latest episode has ended.
pub(super) fn past(ctx: &Ctx, out: &mut Vec<Finding>) {
    let mut latest: Vec<&Episode> = Vec::new();
    for e in ctx.episodes.iter().rev() {
        if !latest.iter().any(|l| l.pool == e.pool) {
            latest.push(e);
        }
    }
    for e in latest.into_iter().filter(|e| !e.ongoing()) {
        let end = e.end_ns.unwrap_or(ctx.now);
        let ago = ctx.now.saturating_sub(end);
        let sev = Severity::Info;
        let now = ctx.pool(&e.pool);
        let c = e.cause_composition();
        let stats = stats_at(e, c, now.map(|p| p.stats));
        let v = view_at(ctx, &stats, e, c, now, sev);
        for mut f in findings_of(ctx, &v, sev) {
            let mut what = f.cause.words().to_string();
            if let Some(first) = what.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            let ran_out = if e.failures > 0 {
                format!("connect() to {} failed with EADDRNOTAVAIL", e.pool.dst)
            } else {
                format!("source ports toward {} ran out", e.pool.dst)
            };
            f.title = format!(
                "{what}: {ran_out} for {} until {} before this report (past episode)",
                dur(secs(end.saturating_sub(e.start_ns))),
                dur(secs(ago))
            );
            f.evidence = as_of(&f.evidence, &when(e, c, ctx.now), &now_words(now));
            // The pool now; what held it then is in `episode`.
            f.in_use = now.map(|p| p.stats.in_use).or(Some(0));
            f.capacity = now.map_or(Some(c.capacity), |p| Some(p.stats.capacity));
            f.states = now.map(|p| p.states()).unwrap_or_default();
            f.eta_s = None;
            f.rate_per_s = now.map(|p| p.rate());
            f.episode = Some(EpisodeRef::of(e, ctx.now, None));
            out.push(f);
        }
    }
}
