//! FIN_WAIT2 hold: this side closed its connections first and the peer never closes its end,
//! so the ports wait in FIN_WAIT2 — not TIME_WAIT (docs/kernel-facts.md). An orphaned socket (closed by
//! the application) whose FIN was acked becomes a timewait socket in sub-state FIN_WAIT2 for
//! `tcp_fin_timeout` (`tcp_rcv_state_process` → `tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)`), so
//! that sysctl bounds the hold; a socket only `shutdown()` stays until the process closes it.
//!
//! When the peer is on this host (a listener of the same namespace on the destination), the
//! two ends are joined: the peer's CLOSE_WAIT leak is the root cause (`leak.rs` gives it this
//! pool's severity, and [`super::explain`] ranks it above this finding).

use super::{
    Cause, Finding, Remedy, Severity,
    ctx::{Ctx, PoolView},
    pools::{base, outcome, title},
    remedies::{self as rem, r},
    who::Who,
    words::n,
};
use crate::model::CloseWaitStats;

/// The peer of a pool when it is a process of this host: the CLOSE_WAIT leaker whose accepted
/// connections are on the pool's destination.
pub(super) fn local_peer(ctx: &Ctx, p: &PoolView) -> Option<CloseWaitStats> {
    ctx.model
        .close_wait(ctx.now, usize::MAX)
        .into_iter()
        .find(|c| {
            c.netns == p.stats.netns && c.top_local.is_some_and(|(local, _)| local == p.stats.dst)
        })
}

pub(super) fn fin_wait2_hold(ctx: &Ctx, p: &PoolView, sev: Severity) -> Finding {
    let s = &p.stats;
    let fin_timeout = ctx
        .sysctls_of(s.netns)
        .map_or(60, |n| n.sysctls.fin_timeout_s);
    let peer = local_peer(ctx, p);
    let peer_who = peer
        .as_ref()
        .and_then(|c| c.owner.as_ref())
        .map(Who::one)
        .unwrap_or_default();
    let because = match &peer {
        Some(c) => format!(
            "; the other end is {} on this host, which holds {} accepted connections on {} in \
             CLOSE_WAIT and never calls close() — that leak is the root cause",
            peer_who.words(),
            n(c.count),
            s.dst
        ),
        None => "; the peer never closes its end".to_string(),
    };
    let evidence = format!(
        "{} closed its connections to {} first, but {} of the {} ports wait in FIN_WAIT2 for \
         the peer's FIN (not TIME_WAIT){because}; a closed (orphaned) FIN_WAIT2 socket keeps \
         its port up to tcp_fin_timeout = {fin_timeout} s{}.",
        p.who.words_cap(),
        s.dst,
        n(p.mix.fin_wait2),
        n(s.capacity),
        outcome(p)
    );
    let mut f = base(p, Cause::FinWait2Hold, sev, evidence);
    f.title = title(Cause::FinWait2Hold, p);
    f.remedies.push(fix_peer(&s.dst.to_string(), &peer_who));
    f.remedies.push(fin_timeout_yes(fin_timeout));
    if let Some(sys) = ctx.sysctls_of(s.netns) {
        f.remedies
            .push(rem::widen_range(&sys.sysctls, &sys.capacity, None));
    }
    f.remedies.push(tw_reuse_no_fin_wait2());
    f
}

fn fix_peer(dst: &str, peer: &Who) -> Remedy {
    let whom = if peer.pid.is_some() {
        peer.words()
    } else {
        format!("the server at {dst}")
    };
    r(
        "fix_peer_close_path",
        true,
        format!("Fix the close path in {whom}: it must close() connections its clients closed"),
        "FIN_WAIT2 here is CLOSE_WAIT there: the peer received this side's FIN and never \
         sent its own. Once it closes, these ports go through TIME_WAIT and are free 60 s \
         later.",
    )
}

fn fin_timeout_yes(now_s: u32) -> Remedy {
    let to = (now_s / 4).max(5);
    r(
        "tcp_fin_timeout",
        true,
        format!(
            "Lower net.ipv4.tcp_fin_timeout (now {now_s} s), e.g. sysctl -w \
             net.ipv4.tcp_fin_timeout={to}"
        ),
        format!(
            "An orphaned FIN_WAIT2 socket (closed here, FIN acked, peer silent) becomes a \
             timewait socket in sub-state FIN_WAIT2 for tcp_fin_timeout \
             (tcp_rcv_state_process → tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)): ports come back \
             after {to} s instead of {now_s} s. It does not touch TIME_WAIT (60 s), nor \
             sockets only shut down and still open."
        ),
    )
}

fn tw_reuse_no_fin_wait2() -> Remedy {
    r(
        "tcp_tw_reuse",
        false,
        "Setting net.ipv4.tcp_tw_reuse",
        "It lets connect() take over TIME_WAIT 4-tuples only; sockets in FIN_WAIT2 are \
         never reused.",
    )
}
