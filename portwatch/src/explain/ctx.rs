//! What the rules read: the model's tables taken once, and each pool's pressure (how full,
//! how fast, how bad) worked out once for every rule, indexed by pool key.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::{
    Severity,
    thresholds::*,
    who::{self, Member, Who},
};
use crate::{
    event::{CallKind, TcpState},
    model::{
        CloseWaitStats, Episode, FailureStats, ListenerStats, Model, NetnsSysctls, PoolKey,
        PoolStats, ProcessStats, StateCounts, Tables,
    },
};

/// How the sockets that take a pool's ports divide between the patterns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Mix {
    /// Closed first by this side: FIN_WAIT1, FIN_WAIT2, CLOSING, TIME_WAIT.
    pub closing: u32,
    pub time_wait: u32,
    /// FIN_WAIT2, full sockets and orphaned ones (timewait sockets in that substate): this
    /// side closed and the peer has not.
    pub fin_wait2: u32,
    pub established: u32,
    pub syn_sent: u32,
    /// Closed first by the peer: CLOSE_WAIT, LAST_ACK.
    pub close_wait: u32,
    pub total: u32,
}

impl Mix {
    pub fn of(s: &StateCounts) -> Mix {
        use TcpState::*;
        Mix {
            closing: s.get(FinWait1) + s.get(FinWait2) + s.get(Closing) + s.get(TimeWait),
            time_wait: s.get(TimeWait),
            fin_wait2: s.get(FinWait2),
            established: s.get(Established),
            syn_sent: s.get(SynSent),
            close_wait: s.get(CloseWait) + s.get(LastAck),
            total: s.total(),
        }
    }

    /// Whether what this side closed first waits mostly in FIN_WAIT2 (for the peer's FIN),
    /// not in TIME_WAIT.
    pub fn fin_wait2_holds(&self) -> bool {
        self.dominant(self.closing) && self.fin_wait2 * 2 > self.closing
    }

    /// Whether `part` is a large enough share of the pool to be a cause of its pressure.
    pub fn dominant(&self, part: u32) -> bool {
        part > 0 && u64::from(part) * CAUSE_SHARE_DEN >= u64::from(self.total) * CAUSE_SHARE_NUM
    }
}

/// One pool as the rules see it.
#[derive(Clone, Debug)]
pub(super) struct PoolView<'a> {
    pub stats: &'a PoolStats,
    pub mix: Mix,
    /// Ports a steady state needs when TIME_WAIT blocks: demand × 60 s + the other states.
    pub need: Option<u32>,
    /// Seconds to exhaustion (0: out now). `None` when not heading there, including a
    /// TIME_WAIT pool still filling whose steady state fits.
    pub eta: Option<f64>,
    /// EADDRNOTAVAIL within the last minute.
    pub failing_now: bool,
    pub severity: Option<Severity>,
    /// `connect()`'s port search straining (it raised `severity` to at least warning).
    pub strain: Option<super::search::Strain>,
    pub who: Who,
    /// errno name → count: the pool's EADDRNOTAVAIL and other connect() errors toward its
    /// destination.
    pub errors: BTreeMap<String, u64>,
    /// The pool's latest exhaustion episode (open, or ended), if the model kept one.
    pub episode: Option<&'a Episode>,
}

impl PoolView<'_> {
    pub fn key(&self) -> PoolKey {
        self.stats.key()
    }

    /// Demand in connection attempts per second.
    pub fn rate(&self) -> f64 {
        self.stats.rates.attempts_per_s
    }

    pub fn states(&self) -> BTreeMap<String, u32> {
        self.stats
            .states
            .iter()
            .map(|(s, n)| (s.name().to_string(), n))
            .collect()
    }
}

/// The model's tables (taken once per refresh, by the caller) as the rules read them, with an
/// index of pools by key.
pub(super) struct Ctx<'a> {
    /// For what is read on demand: a pool's history, who holds a port.
    pub model: &'a Model,
    pub now: u64,
    /// Every pool with sockets or failures, most urgent first (the order of `tables.pools`).
    pub pools: Vec<PoolView<'a>>,
    by_key: FxHashMap<PoolKey, usize>,
    pub procs: &'a [ProcessStats],
    pub sysctls: &'a [NetnsSysctls],
    pub failures: &'a FailureStats,
    pub listeners: &'a [ListenerStats],
    pub close_wait: &'a [CloseWaitStats],
    /// Every episode kept, oldest first.
    pub episodes: &'a [Episode],
}

impl<'a> Ctx<'a> {
    pub fn new(model: &'a Model, t: &'a Tables) -> Ctx<'a> {
        let now = t.at_ns;
        let mut members: FxHashMap<PoolKey, Vec<Member>> = FxHashMap::default();
        for p in &t.processes {
            for d in &p.outbound {
                let key = PoolKey {
                    netns: d.netns,
                    src: d.src,
                    dst: d.dst,
                };
                members.entry(key).or_default().push(Member {
                    proc: p.process.clone(),
                    last_seen_ns: p.last_seen_ns,
                    sockets: d.total,
                });
            }
        }
        let pools: Vec<PoolView> = t
            .pools
            .iter()
            .map(|stats| {
                let m = members.remove(&stats.key()).unwrap_or_default();
                let history = model.pool_history(&stats.key()).unwrap_or_default();
                let episode = t.episodes.iter().rev().find(|e| e.pool == stats.key());
                view(stats, &m, &history, &t.failures, episode, now)
            })
            .collect();
        let by_key = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key(), i))
            .collect();
        Ctx {
            model,
            now,
            pools,
            by_key,
            procs: &t.processes,
            sysctls: &t.sysctls,
            failures: &t.failures,
            listeners: &t.listeners,
            close_wait: &t.close_wait,
            episodes: &t.episodes,
        }
    }

    pub fn sysctls_of(&self, netns: u32) -> Option<&NetnsSysctls> {
        self.sysctls.iter().find(|s| s.netns == netns)
    }

    pub fn pools_in(&self, netns: u32) -> impl Iterator<Item = &PoolView<'a>> {
        self.pools.iter().filter(move |p| p.stats.netns == netns)
    }

    pub fn pool(&self, key: &PoolKey) -> Option<&PoolView<'a>> {
        self.by_key.get(key).map(|&i| &self.pools[i])
    }

    /// The worst severity among pools of a namespace that are failing or heading there.
    pub fn netns_pressure(&self, netns: u32) -> Option<Severity> {
        self.pools_in(netns).filter_map(|p| p.severity).max()
    }
}

/// Whether in-use ports grew over the last seconds, recently too: a rate averaged over a
/// short burst (a connection pool warming up) is not a trend.
fn sustained_growth(history: &[u32], now: u32) -> bool {
    let n = history.len();
    n >= GROWTH_SECONDS && now > history[n - GROWTH_SECONDS] && now > history[n - 2]
}

fn view<'a>(
    stats: &'a PoolStats,
    members: &[Member],
    history: &[u32],
    failures: &FailureStats,
    episode: Option<&'a Episode>,
    now: u64,
) -> PoolView<'a> {
    // What fills the pool: sockets whose port is held by bind() (bind-before-connect, its
    // own finding) or lies outside the range take nothing from it.
    let mix = Mix::of(&stats.states_in_capacity);
    let unknown: u32 = stats
        .owners
        .iter()
        .filter(|o| o.owner.is_none())
        .map(|o| o.total)
        .sum();
    let mut who = who::attribute(members, unknown);
    if who.sockets == 0 {
        // No socket left: whoever failed to connect here.
        let failed = failures
            .recent
            .iter()
            .filter(|r| r.pool == Some(stats.key()));
        if let Some(w) = who::from_failures(failed) {
            who = Who { sockets: 0, ..w };
        }
    }
    // Failures of an episode that has ended are its finding's (`episodes.rs`), not the pool's
    // pressure now.
    let past = |t: u64| episode.and_then(|e| e.end_ns).is_some_and(|end| t <= end);
    let failing_now = stats
        .last_failure_ns
        .is_some_and(|t| now.saturating_sub(t) < RECENT_FAILURE_S * NS && !past(t));
    let failed_since = stats.eaddrnotavail > 0 && !stats.last_failure_ns.is_some_and(past);
    // TIME_WAIT lasts 60 s: at a steady rate the pool settles at rate × 60 + the rest.
    let need = (!stats.tw_reusable && mix.dominant(mix.closing)).then(|| {
        let rest = stats.blocking.saturating_sub(mix.closing);
        (stats.rates.attempts_per_s * TIME_WAIT_S).round() as u32 + rest
    });
    let eta = match (stats.time_to_exhaustion_s, need) {
        (Some(t), _) if t <= 0.0 => Some(0.0),
        // Still filling, but the steady state fits.
        (Some(_), Some(n)) if n < stats.capacity => None,
        // What grows is TIME_WAIT, which tcp_tw_reuse lets connect() take over.
        (Some(_), _) if stats.tw_reusable && mix.dominant(mix.closing) => None,
        (Some(_), _) if !sustained_growth(history, stats.in_use) => None,
        (t, _) => t,
    };
    let util = stats.effective_utilisation;
    let projected = need.map_or(0.0, |n| f64::from(n) / f64::from(stats.capacity.max(1)));
    let severity = if failing_now || eta.is_some_and(|t| t < CRITICAL_ETA_S) {
        Some(Severity::Critical)
    } else if eta.is_some_and(|t| t < WARNING_ETA_S)
        || util >= WARNING_UTIL
        || projected >= WARNING_UTIL
    {
        Some(Severity::Warning)
    } else if failed_since || util >= INFO_UTIL || projected >= INFO_UTIL {
        Some(Severity::Info)
    } else {
        None
    };
    let strain = super::search::strain(stats);
    let severity = if strain.is_some() {
        severity.max(Some(Severity::Warning))
    } else {
        severity
    };
    let mut errors = BTreeMap::new();
    if stats.eaddrnotavail > 0 {
        errors.insert("EADDRNOTAVAIL".to_string(), stats.eaddrnotavail);
    }
    for d in &failures.by_destination {
        if d.netns == stats.netns
            && d.addr == stats.dst
            && d.call == CallKind::Connect
            && d.errno.0 != libc::EADDRNOTAVAIL
        {
            *errors.entry(d.errno.name()).or_default() += d.count.count;
        }
    }
    PoolView {
        stats,
        mix,
        need,
        eta,
        failing_now,
        severity,
        strain,
        who,
        errors,
        episode,
    }
}
