//! Pool rules: what fills a pool that is failing or heading there — TIME_WAIT churn,
//! concurrency — and connects that do not complete (SYN_SENT pile-up). One finding per pool
//! and cause; a pool can have two causes when both hold a large share.

use super::{
    Cause, Finding, Severity,
    ctx::{Ctx, PoolView},
    programs, remedies as rem,
    thresholds::*,
    words::{dur, n, pct, plural, rate, share},
};

pub(super) fn rules(ctx: &Ctx, out: &mut Vec<Finding>) {
    for p in &ctx.pools {
        // An open episode: the cause is what held the pool when connect() failed (or at its
        // peak), not what is left now (`episodes.rs`).
        if let Some(e) = p.episode.filter(|e| e.ongoing()) {
            super::episodes::ongoing(ctx, p, e, out);
            continue;
        }
        if let Some(sev) = p.severity {
            causes(ctx, p, sev, out);
            // Failed earlier, empty now, no episode kept: how its connections ended tells
            // what filled it.
            let c = &p.stats.closes;
            let ended = c.local_first + c.remote_first + c.reset;
            if p.episode.is_none()
                && p.stats.states.total() == 0
                && c.tw_started > 0
                && c.tw_started * 2 >= ended
            {
                out.push(time_wait_churn(ctx, p, sev));
            }
        }
        if let Some(sev) = syn_sent_severity(p) {
            out.push(syn_sent_pileup(p, sev));
        }
    }
}

/// The findings of a pool under pressure, from the states that hold its ports in `p.mix`.
pub(super) fn causes(ctx: &Ctx, p: &PoolView, sev: Severity, out: &mut Vec<Finding>) {
    let m = &p.mix;
    // FIN_WAIT2 first: it is the peer that does not close (tcp_tw_reuse is no help).
    let fin2 = m.fin_wait2_holds();
    let churn = !fin2 && m.dominant(m.closing) && !p.stats.tw_reusable;
    let conc = m.dominant(m.established);
    let other = m.dominant(m.close_wait)
        || m.dominant(m.syn_sent)
        || m.dominant(p.stats.bind_before_connect);
    if fin2 {
        out.push(super::finwait::fin_wait2_hold(ctx, p, sev));
    }
    if churn {
        out.push(time_wait_churn(ctx, p, sev));
    }
    if conc {
        out.push(concurrency(ctx, p, sev));
    }
    // Mixed, with no state holding a third: name the largest of the two.
    if !fin2 && !churn && !conc && !other && m.total > 0 {
        out.push(if m.closing >= m.established {
            time_wait_churn(ctx, p, sev)
        } else {
            concurrency(ctx, p, sev)
        });
    }
}

/// Capitalises the first letter.
fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub(super) fn title(cause: Cause, p: &PoolView) -> String {
    let what = cap(cause.words());
    let dst = p.stats.dst;
    if p.eta == Some(0.0) {
        format!("{what}: out of source ports toward {dst}")
    } else if p.failing_now {
        format!("{what}: connect() to {dst} fails with EADDRNOTAVAIL")
    } else if let Some(t) = p.eta {
        format!("{what}: source ports toward {dst} run out in ~{}", dur(t))
    } else {
        let u = p.stats.effective_utilisation;
        let projected = p
            .need
            .map_or(0.0, |n| f64::from(n) / f64::from(p.stats.capacity.max(1)));
        if projected > u {
            format!(
                "{what}: heading for {} of source ports toward {dst}",
                pct(projected)
            )
        } else {
            format!("{what}: {} of source ports toward {dst} in use", pct(u))
        }
    }
}

/// How it ends, as the tail of an evidence sentence.
pub(super) fn outcome(p: &PoolView) -> String {
    let e = p.stats.eaddrnotavail;
    if e > 0 && p.failing_now {
        format!(
            "; connect() has failed {} with EADDRNOTAVAIL",
            plural(e, "time", "times")
        )
    } else if p.eta == Some(0.0) {
        "; no port is left".to_string()
    } else if let Some(t) = p.eta {
        format!("; at this rate the rest runs out in {}", dur(t))
    } else if e > 0 {
        format!(
            "; connect() failed {} with EADDRNOTAVAIL earlier",
            plural(e, "time", "times")
        )
    } else {
        String::new()
    }
}

pub(super) fn base(p: &PoolView, cause: Cause, sev: Severity, evidence: String) -> Finding {
    // One sentence: the port search is its last clause.
    let evidence = match &p.strain {
        Some(st) => format!(
            "{}; {}.",
            evidence.trim_end_matches('.'),
            super::search::words(st, p.stats)
        ),
        None => evidence,
    };
    let mut f = Finding::new(cause, sev, p.stats.netns, title(cause, p), evidence);
    p.who.fill(&mut f);
    f.set_pool(p.key());
    f.in_use = Some(p.stats.in_use);
    f.capacity = Some(p.stats.capacity);
    f.states = p.states();
    f.errors = p.errors.clone();
    f.rate_per_s = Some(p.rate());
    f.eta_s = p.eta;
    f
}

fn time_wait_churn(ctx: &Ctx, p: &PoolView, sev: Severity) -> Finding {
    let s = &p.stats;
    let who = p.who.words();
    let per_s = p.rate();
    let need = p
        .need
        .unwrap_or_else(|| (per_s * TIME_WAIT_S).round() as u32);
    // A group of processes ("200 curl processes") takes the plural verb.
    let verb = |one: &'static str, many: &'static str| {
        if p.who.process_count > 1 { many } else { one }
    };
    // Attempts are the demand; when the pool is out, fewer get a port: say both.
    let opens = if s.rates.failed_per_s > 0.0 && s.rates.new_per_s < per_s {
        let got = if s.rates.new_per_s < 0.05 {
            "none of them gets a port".to_string()
        } else {
            format!("only {} a second get a port", rate(s.rates.new_per_s))
        };
        format!(
            "{} {} new connections/s ({got})",
            verb("tries", "try"),
            rate(per_s)
        )
    } else {
        format!(
            "{} {} new connections/s",
            verb("opens", "open"),
            rate(per_s)
        )
    };
    let evidence = if per_s >= 0.5 {
        format!(
            "{} {opens} to {} and {} them first, so each port then \
             sits 60 s in TIME_WAIT: {} of the {} ports are held that way, and at {}/s × 60 s \
             it needs {}{}.",
            p.who.words_cap(),
            s.dst,
            verb("closes", "close"),
            n(p.mix.closing),
            n(s.capacity),
            rate(per_s),
            n(need),
            outcome(p)
        )
    } else if p.mix.closing > 0 {
        format!(
            "{} closed its connections to {} first, so {} of the {} ports still sit in \
             TIME_WAIT (60 s each){}.",
            p.who.words_cap(),
            s.dst,
            n(p.mix.closing),
            n(s.capacity),
            outcome(p)
        )
    } else {
        format!(
            "Connections to {} were closed first by this side ({} TIME_WAITs since start) and \
             none is left now{}.",
            s.dst,
            super::words::count(s.closes.tw_started),
            outcome(p)
        )
    };
    let mut f = base(p, Cause::TimeWaitChurn, sev, evidence);
    // A program operators configure: its own knob first, the general rule after it.
    f.remedies.extend(programs::remedies(
        p.who.comm.as_deref(),
        p.who.exe.as_deref(),
        Cause::TimeWaitChurn,
    ));
    f.remedies.push(rem::connection_reuse(&who, per_s, need));
    if let Some(sys) = ctx.sysctls_of(s.netns) {
        if !s.tw_reusable {
            let loopback = s.src.is_loopback() || s.dst.ip().is_loopback();
            // Ports enter TIME_WAIT as fast as connections get one, not as fast as they
            // are attempted (when the pool is out, most attempts fail).
            f.remedies.push(rem::tw_reuse_on(
                &sys.sysctls,
                loopback,
                p.mix.time_wait,
                s.rates.new_per_s.min(per_s),
            ));
        }
        let how = format!("at {}/s new connections × 60 s TIME_WAIT", rate(per_s));
        f.remedies.push(rem::widen_range(
            &sys.sysctls,
            &sys.capacity,
            Some(rem::Need::Steady(need, how)),
        ));
    }
    f.remedies.push(rem::more_destinations(s.capacity));
    f.remedies.push(rem::more_sources(s.capacity));
    f.remedies.push(rem::fin_timeout_no());
    f.remedies.push(rem::tw_recycle_no());
    f
}

fn concurrency(ctx: &Ctx, p: &PoolView, sev: Severity) -> Finding {
    let s = &p.stats;
    let who = p.who.words();
    let est = p.mix.established;
    let net = s.rates.new_per_s - s.rates.released_per_s;
    let growth = if net >= 0.5 {
        format!(", growing by {}/s", rate(net))
    } else {
        String::new()
    };
    let evidence = format!(
        "{} holds {} connections to {} open at once ({} of the {} ports){}, {} in \
         TIME_WAIT{}.",
        p.who.words_cap(),
        n(est),
        s.dst,
        share(est, s.capacity),
        n(s.capacity),
        growth,
        match p.mix.time_wait {
            0 => "none".to_string(),
            t => format!("only {}", n(t)),
        },
        outcome(p)
    );
    let mut f = base(p, Cause::Concurrency, sev, evidence);
    f.remedies.extend(programs::remedies(
        p.who.comm.as_deref(),
        p.who.exe.as_deref(),
        Cause::Concurrency,
    ));
    f.remedies.push(rem::more_destinations(s.capacity));
    f.remedies.push(rem::more_sources(s.capacity));
    if let Some(sys) = ctx.sysctls_of(s.netns) {
        f.remedies.push(rem::widen_range(
            &sys.sysctls,
            &sys.capacity,
            Some(rem::Need::Growing(s.blocking, net.max(0.0))),
        ));
    }
    f.remedies
        .push(rem::limit_concurrency(&who, &s.dst.to_string()));
    f.remedies.push(rem::tw_reuse_no_established(est));
    f
}

fn connect_errors(p: &PoolView) -> u64 {
    p.errors
        .iter()
        .filter(|(e, _)| *e != "EADDRNOTAVAIL")
        .map(|(_, c)| c)
        .sum()
}

/// SYN_SENT piling up: at least [`SYN_SENT_MIN`] and half the pool (or a third of a pool
/// under pressure, which then sets the severity).
pub(super) fn syn_sent_severity(p: &PoolView) -> Option<Severity> {
    let syn = p.mix.syn_sent;
    if p.severity.is_some() && p.mix.dominant(syn) {
        return p.severity;
    }
    if syn < SYN_SENT_MIN || syn * 2 < p.mix.total {
        return None;
    }
    Some(if syn >= SYN_SENT_WARN || connect_errors(p) > 0 {
        Severity::Warning
    } else {
        Severity::Info
    })
}

pub(super) fn syn_sent_pileup(p: &PoolView, sev: Severity) -> Finding {
    let s = &p.stats;
    let aborted = match s.closes.connect_aborted {
        0 => String::new(),
        a => format!(
            " and {} gave up (refused, unreachable or timed out)",
            plural(a, "more", "more")
        ),
    };
    let errs: Vec<String> = p
        .errors
        .iter()
        .filter(|(e, _)| *e != "EADDRNOTAVAIL")
        .map(|(e, c)| format!("{e} ×{}", super::words::count(*c)))
        .collect();
    let errs = if errs.is_empty() {
        String::new()
    } else {
        format!(", connect() returned {}", errs.join(", "))
    };
    let verdict = if p.severity.is_some() && p.mix.dominant(p.mix.syn_sent) {
        "the destination is slow or not answering, and ports run out only because the \
         connects hang"
    } else {
        "the destination is slow or not answering; ports are not the problem"
    };
    let evidence = format!(
        "{} connects from {} to {} are waiting in SYN_SENT ({} of the pool's sockets){}{}: {}{}.",
        n(p.mix.syn_sent),
        p.who.words(),
        s.dst,
        share(p.mix.syn_sent, p.mix.total),
        aborted,
        errs,
        verdict,
        outcome(p)
    );
    let mut f = base(p, Cause::SynSentPileup, sev, evidence);
    let dst = s.dst.to_string();
    if !(p.severity.is_some() && p.mix.dominant(p.mix.syn_sent)) {
        f.title = format!("Connects to {dst} are not completing");
    }
    f.remedies.push(rem::check_destination(&dst));
    f.remedies.push(rem::connect_timeout(&p.who.words()));
    f.remedies.push(rem::widen_no_syn(&dst));
    f
}
