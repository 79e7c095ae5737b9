//! Configuration findings, per namespace and issue: a range whose ends have the same parity,
//! reserved ports or listeners eating the range, `tcp_tw_reuse` that does not cover the pool
//! under TIME_WAIT pressure, and TIME_WAIT bucket overflow.

use super::{
    Cause, ConfigIssue, Finding, Severity,
    ctx::{Ctx, PoolView},
    remedies as rem,
    thresholds::*,
    words::{n, pct, plural, share},
};
use crate::model::NetnsSysctls;

pub(super) fn rules(ctx: &Ctx, out: &mut Vec<Finding>) {
    for ns in ctx.sysctls {
        range_parity(ns, out);
        reserved_ports(ctx, ns, out);
        listeners_in_range(ctx, ns, out);
        tw_reuse(ctx, ns, out);
        tw_buckets(ns, out);
    }
}

fn finding(
    ns: &NetnsSysctls,
    issue: ConfigIssue,
    sev: Severity,
    title: &str,
    ev: String,
) -> Finding {
    let assumed = if ns.assumed {
        " (kernel defaults assumed: the sysctls were not read)"
    } else {
        ""
    };
    let ev = match ev.strip_suffix('.') {
        Some(e) => format!("{e}{assumed}."),
        None => ev,
    };
    let mut f = Finding::new(Cause::Config, sev, ns.netns, title.to_string(), ev);
    f.issue = Some(issue);
    f
}

/// Warning when a pool of the namespace is under pressure, info otherwise.
fn pressure_sev(ctx: &Ctx, netns: u32) -> Severity {
    match ctx.netns_pressure(netns) {
        Some(s) if s >= Severity::Warning => Severity::Warning,
        _ => Severity::Info,
    }
}

/// Ends of the same parity: each `connect()` scans one port fewer than the range holds
/// (model/capacity.rs), so a pool's last free port can be missed.
fn range_parity(ns: &NetnsSysctls, out: &mut Vec<Finding>) {
    let (lo, hi) = ns.sysctls.port_range;
    let count = (u32::from(hi) + 1).saturating_sub(u32::from(lo));
    if count <= 1 || count % 2 == 0 {
        return;
    }
    let ev = format!(
        "ip_local_port_range {lo}–{hi} holds {} ports, an odd number: each connect() scans \
         only {} of them, skipping {lo} or {hi} depending on where its search starts, so it \
         can fail with EADDRNOTAVAIL while one port of the pool is still free.",
        n(count),
        n(count - 1)
    );
    let title = "Configuration: the ends of ip_local_port_range have the same parity";
    let mut f = finding(ns, ConfigIssue::RangeParity, Severity::Info, title, ev);
    f.capacity = Some(count);
    f.remedies.push(rem::range_parity(lo, hi));
    out.push(f);
}

fn reserved_ports(ctx: &Ctx, ns: &NetnsSysctls, out: &mut Vec<Finding>) {
    let c = &ns.capacity;
    if c.reserved == 0 || f64::from(c.reserved) < RANGE_LOSS_SHARE * f64::from(c.scanned) {
        return;
    }
    let ev = format!(
        "net.ipv4.ip_local_reserved_ports takes {} of the {} ports connect() scans ({}), \
         toward every destination.",
        n(c.reserved),
        n(c.scanned),
        share(c.reserved, c.scanned)
    );
    let title = format!(
        "Configuration: {} reserved ports shrink every pool",
        n(c.reserved)
    );
    let mut f = finding(
        ns,
        ConfigIssue::ReservedPorts,
        pressure_sev(ctx, ns.netns),
        &title,
        ev,
    );
    f.in_use = Some(c.reserved);
    f.capacity = Some(c.scanned);
    f.remedies.push(rem::free_reserved(c.reserved));
    f.remedies
        .push(rem::widen_range(&ns.sysctls, &ns.capacity, None));
    out.push(f);
}

fn listeners_in_range(ctx: &Ctx, ns: &NetnsSysctls, out: &mut Vec<Finding>) {
    let c = &ns.capacity;
    // Bind-before-connect sockets are their own finding.
    let bbc: u32 = ctx
        .pools_in(ns.netns)
        .map(|p| p.stats.bind_before_connect)
        .sum();
    let held = c.held_by_bind.saturating_sub(bbc);
    if held == 0 || f64::from(held) < RANGE_LOSS_SHARE * f64::from(c.scanned) {
        return;
    }
    let (lo, hi) = ns.sysctls.port_range;
    let mut inside: Vec<_> = ctx
        .listeners
        .iter()
        .filter(|l| l.netns == ns.netns && l.listening > 0)
        .filter(|l| (lo..=hi).contains(&l.local.port()))
        .collect();
    inside.sort_by_key(|l| l.local.port());
    let example = match inside.first() {
        Some(l) => {
            let who = l
                .owner
                .as_ref()
                .map(|o| format!("{} (pid {}) on ", o.comm, o.pid))
                .unwrap_or_default();
            format!(" (such as {who}{})", l.local)
        }
        None => String::new(),
    };
    let ev = format!(
        "{} inside ip_local_port_range {lo}–{hi} are held by {} and bound sockets{example}, \
         so every pool has {} fewer ports ({}).",
        plural(u64::from(held), "port", "ports"),
        plural(inside.len() as u64, "listener", "listeners"),
        n(held),
        share(held, c.scanned)
    );
    let title = format!(
        "Configuration: listeners hold {} ports of the range",
        n(held)
    );
    let sev = pressure_sev(ctx, ns.netns);
    let mut f = finding(ns, ConfigIssue::ListenersInRange, sev, &title, ev);
    f.in_use = Some(held);
    f.capacity = Some(c.scanned);
    f.remedies.push(rem::move_listeners(lo));
    out.push(f);
}

/// The pool under the worst TIME_WAIT pressure that `tcp_tw_reuse` does not cover.
fn tw_pressure<'a>(ctx: &'a Ctx, netns: u32, loopback: bool) -> Option<&'a PoolView<'a>> {
    ctx.pools_in(netns)
        .filter(|p| p.severity.is_some() && p.mix.dominant(p.mix.closing))
        .filter(|p| (p.stats.src.is_loopback() || p.stats.dst.ip().is_loopback()) == loopback)
        .max_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.stats.in_use.cmp(&b.stats.in_use))
        })
}

fn tw_reuse(ctx: &Ctx, ns: &NetnsSysctls, out: &mut Vec<Finding>) {
    let s = &ns.sysctls;
    let (issue, p, ev, title) = if s.tw_reuse == 2 && s.timestamps != 0 {
        let Some(p) = tw_pressure(ctx, ns.netns, false) else {
            return;
        };
        let ev = format!(
            "tcp_tw_reuse is 2 (loopback only), but the TIME_WAIT pressure is on {} → {} \
             ({} in TIME_WAIT, {} of its ports in use), where reuse does not apply.",
            p.stats.src,
            p.stats.dst,
            n(p.mix.time_wait),
            pct(p.stats.utilisation)
        );
        let title = "Configuration: tcp_tw_reuse=2 covers loopback only, not this traffic";
        (ConfigIssue::TwReuseLoopbackOnly, p, ev, title)
    } else if s.tw_reuse != 0 && s.timestamps == 0 {
        let p = tw_pressure(ctx, ns.netns, false).or_else(|| tw_pressure(ctx, ns.netns, true));
        let Some(p) = p else { return };
        let ev = format!(
            "tcp_tw_reuse is {} but tcp_timestamps is 0, so connect() never reuses a \
             TIME_WAIT 4-tuple; {} are in TIME_WAIT toward {}.",
            s.tw_reuse,
            n(p.mix.time_wait),
            p.stats.dst
        );
        let title = "Configuration: tcp_tw_reuse does nothing without TCP timestamps";
        (ConfigIssue::TwReuseWithoutTimestamps, p, ev, title)
    } else {
        return;
    };
    // Below the pool's own finding, which already carries the remedy.
    let sev = p.severity.unwrap_or(Severity::Info).lower();
    let mut f = finding(ns, issue, sev, title, ev);
    f.set_pool(p.key());
    f.in_use = Some(p.stats.in_use);
    f.capacity = Some(p.stats.capacity);
    f.states = p.states();
    f.rate_per_s = Some(p.rate());
    f.remedies
        .push(rem::tw_reuse_on(s, false, p.mix.time_wait, p.rate()));
    out.push(f);
}

fn tw_buckets(ns: &NetnsSysctls, out: &mut Vec<Finding>) {
    let max = ns.sysctls.max_tw_buckets;
    let tw = ns.timewait_sockets;
    let overflow = ns.tw_overflow_since_start;
    let near = tw_buckets_near(tw, max);
    if overflow == 0 && !near {
        return;
    }
    let (sev, ev) = if overflow > 0 {
        (
            Severity::Warning,
            format!(
                "{} closed without TIME_WAIT since portwatch started because \
                 tcp_max_tw_buckets ({}) was reached ({} timewait sockets now): they lose \
                 TIME_WAIT's protection against stale segments.",
                plural(overflow, "connection", "connections"),
                n(max),
                n(tw)
            ),
        )
    } else {
        (
            Severity::Info,
            format!(
                "{} timewait sockets are {} of tcp_max_tw_buckets ({}): past it, closing \
                 connections skip TIME_WAIT.",
                n(tw),
                share(tw, max),
                n(max)
            ),
        )
    };
    let title = "Configuration: TIME_WAIT bucket limit reached";
    let mut f = finding(ns, ConfigIssue::TwBucketOverflow, sev, title, ev);
    f.in_use = Some(tw);
    f.capacity = Some(max);
    f.states.insert("TIME_WAIT".to_string(), tw);
    f.remedies.push(rem::raise_tw_buckets(max));
    f.remedies.push(rem::fin_timeout_no());
    out.push(f);
}
