//! CLOSE_WAIT leak: the peer closed, the process never does. One finding per (namespace,
//! process). Old CLOSE_WAIT sockets (a minute or more) mean the close path is missing; new
//! ones arriving while old ones stay mean the leak grows.

use super::{
    Cause, Finding, Severity,
    ctx::Ctx,
    remedies as rem,
    thresholds::*,
    who::Who,
    words::{dur, n, plural, share},
};
use crate::model::{CLOSE_WAIT_RECENT_S, CloseWaitStats, PoolKey};

pub(super) fn close_wait_leak(ctx: &Ctx, out: &mut Vec<Finding>) {
    for c in ctx.close_wait {
        if c.count < CLOSE_WAIT_MIN {
            break; // most first
        }
        if let Some(f) = finding(ctx, c) {
            out.push(f);
        }
    }
}

fn finding(ctx: &Ctx, c: &CloseWaitStats) -> Option<Finding> {
    let old = c.oldest_s >= CLOSE_WAIT_OLD_S;
    let growing = old && c.entered_last_60s > 0;
    let pool = c.top_destination.and_then(|(src, dst, _)| {
        ctx.pool(&PoolKey {
            netns: c.netns,
            src,
            dst,
        })
    });
    // The pool is under pressure because of them: its severity.
    let pool_sev = pool
        .filter(|p| p.mix.dominant(p.mix.close_wait))
        .and_then(|p| p.severity);
    // Its clients on this host, whose ports wait in FIN_WAIT2 for it to close (`finwait`).
    let held = c.top_local.and_then(|(local, _)| {
        ctx.pools_in(c.netns)
            .filter(|p| p.stats.dst == local && p.mix.fin_wait2_holds() && p.severity.is_some())
            .max_by_key(|p| p.severity)
    });
    let held_sev = held.and_then(|p| p.severity);
    // Hundreds arriving within a minute and still there: growing fast, however young.
    let fast = c.entered_last_60s >= CLOSE_WAIT_FAST;
    let own =
        if (old && c.count >= CLOSE_WAIT_WARN && (growing || c.count >= CLOSE_WAIT_MANY)) || fast {
            Some(Severity::Warning)
        } else if old || c.count >= CLOSE_WAIT_MANY {
            Some(Severity::Info)
        } else {
            None
        };
    let sev = own.max(pool_sev).max(held_sev)?;
    let who = c.owner.as_ref().map(Who::one).unwrap_or_default();
    let per_s = f64::from(c.entered_last_60s) / CLOSE_WAIT_RECENT_S as f64;
    let mut place = Vec::new();
    if let Some((_, dst, k)) = c.top_destination {
        let more = c.outbound - k;
        place.push(if more > 0 {
            format!("{} to {dst} and {} elsewhere", n(k), n(more))
        } else {
            format!("to {dst}")
        });
    }
    if let Some((local, k)) = c.top_local {
        let more = c.inbound - k;
        place.push(if more > 0 {
            format!("{} accepted on {local} and {} elsewhere", n(k), n(more))
        } else {
            format!("accepted on {local}")
        });
    }
    let pressure = match pool {
        Some(p) if pool_sev.is_some() => format!(
            "; they hold {} of the ports toward {}",
            share(p.mix.close_wait, p.stats.capacity),
            p.stats.dst
        ),
        _ => match held {
            Some(p) => format!(
                "; its clients on this host, {}, wait for it with {} ports toward {} in \
                 FIN_WAIT2{}",
                p.who.words(),
                n(p.mix.fin_wait2),
                p.stats.dst,
                super::pools::outcome(p)
            ),
            None => String::new(),
        },
    };
    let evidence = format!(
        "{} holds {} in CLOSE_WAIT ({}), the oldest for {}, {} new in the last minute: the \
         peer closed them and the process never called close(){}.",
        who.words_cap(),
        plural(u64::from(c.count), "connection", "connections"),
        place.join(", "),
        dur(c.oldest_s),
        n(c.entered_last_60s),
        pressure
    );
    let title = match pool {
        Some(p) if pool_sev.is_some() && p.eta == Some(0.0) => {
            format!(
                "CLOSE_WAIT leak: out of source ports toward {}",
                p.stats.dst
            )
        }
        _ if held.is_some_and(|p| p.eta == Some(0.0) || p.failing_now) => format!(
            "CLOSE_WAIT leak: {} never closes; its clients are out of ports toward {}",
            who.comm.as_deref().unwrap_or("a process"),
            held.map_or(String::new(), |p| p.stats.dst.to_string())
        ),
        _ => format!(
            "CLOSE_WAIT leak: {} never closes {} connections the peer closed",
            who.comm.as_deref().unwrap_or("a process"),
            n(c.count)
        ),
    };
    let mut f = Finding::new(Cause::CloseWaitLeak, sev, c.netns, title, evidence);
    who.fill(&mut f);
    match (c.top_destination, c.top_local) {
        (Some((src, dst, _)), _) => {
            f.src_ip = Some(src);
            f.dst = Some(dst);
        }
        (None, Some((local, _))) => f.dst = Some(local),
        _ => {}
    }
    if let (None, Some(p)) = (pool, held) {
        f.in_use = Some(p.stats.in_use);
        f.capacity = Some(p.stats.capacity);
        f.errors = p.errors.clone();
        f.eta_s = p.eta;
    }
    if let Some(p) = pool {
        f.in_use = Some(p.stats.in_use);
        f.capacity = Some(p.stats.capacity);
        f.errors = p.errors.clone();
        f.eta_s = if pool_sev.is_some() {
            p.eta
        } else if growing && per_s > 0.0 {
            Some(f64::from(p.stats.capacity.saturating_sub(p.stats.blocking)) / per_s)
        } else {
            None
        };
    }
    f.states.insert("CLOSE_WAIT".to_string(), c.count);
    f.rate_per_s = Some(per_s);
    let w = who.words();
    f.remedies.push(rem::fix_close_path(&w));
    f.remedies.push(rem::restart_process(&w));
    f.remedies.push(rem::fin_timeout_no_close_wait());
    f.remedies.push(rem::tw_reuse_no_close_wait());
    Some(f)
}
