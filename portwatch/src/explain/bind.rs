//! bind() rules: bind-before-connect (a port per socket taken from every pool) and bind()
//! conflicts (EADDRINUSE on a chosen port: who holds it).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
};

use rustc_hash::{FxHashMap, FxHashSet};

use super::{
    Cause, Finding, Severity,
    ctx::Ctx,
    remedies as rem,
    thresholds::*,
    who::{self, Member, Who},
    words::{dur, n, plural, share},
};
use crate::{
    event::{CallKind, Comm, Errno},
    model::{SocketInfo, StateCounts},
};

fn eaddrinuse_binds<'a>(ctx: &'a Ctx) -> impl Iterator<Item = &'a crate::model::DestFailures> {
    ctx.failures
        .by_destination
        .iter()
        .filter(|d| d.call == CallKind::Bind && d.errno == Errno(libc::EADDRINUSE))
}

/// The processes behind recent failed binds to `addr` (from the failure log).
fn failed_by(ctx: &Ctx, netns: u32, addr: SocketAddr) -> Who {
    let failed = ctx.failures.recent.iter().filter(|r| {
        r.netns == netns
            && r.call == CallKind::Bind
            && r.errno == Errno(libc::EADDRINUSE)
            && r.addr == addr
    });
    who::from_failures(failed).unwrap_or_default()
}

#[derive(Default)]
struct Group {
    members: Vec<Member>,
    bbc: u32,
    states: StateCounts,
    dests: FxHashMap<(IpAddr, SocketAddr), u32>,
}

/// Bind-before-connect, one finding per (namespace, command, parent).
pub(super) fn bind_before_connect(ctx: &Ctx, out: &mut Vec<Finding>) {
    let mut groups: BTreeMap<(u32, String, u32), Group> = BTreeMap::new();
    let mut per_ns: FxHashMap<u32, u32> = FxHashMap::default();
    for p in ctx.procs {
        for d in p.outbound.iter().filter(|d| d.bind_before_connect > 0) {
            let key = (d.netns, p.process.comm.to_string(), p.process.ppid);
            let g = groups.entry(key).or_default();
            if g.members.last().is_none_or(|m| m.proc != p.process) {
                g.members.push(Member {
                    proc: p.process.clone(),
                    last_seen_ns: p.last_seen_ns,
                    sockets: 0,
                });
            }
            if let Some(m) = g.members.last_mut() {
                m.sockets += d.bind_before_connect;
            }
            g.bbc += d.bind_before_connect;
            g.states.merge(&d.states);
            *g.dests.entry((d.src, d.dst)).or_default() += d.bind_before_connect;
            *per_ns.entry(d.netns).or_default() += d.bind_before_connect;
        }
    }
    // bind(0) refused: no port left to bind. Attributed to the failing processes' group.
    for d in eaddrinuse_binds(ctx).filter(|d| d.addr.port() == 0) {
        let w = failed_by(ctx, d.netns, d.addr);
        let key = (
            d.netns,
            w.comm.clone().unwrap_or_default(),
            w.ppid.unwrap_or(0),
        );
        let g = groups.entry(key).or_default();
        if g.members.is_empty()
            && let (Some(pid), Some(comm)) = (w.pid, &w.comm)
        {
            g.members.push(Member {
                proc: crate::model::ProcRef {
                    pid,
                    ppid: w.ppid.unwrap_or(0),
                    comm: Comm::new(comm),
                    exe: None,
                    workload: None,
                },
                last_seen_ns: d.count.last_ns,
                sockets: 0,
            });
        }
    }
    for ((netns, _, _), g) in groups {
        if let Some(f) = bbc_finding(ctx, netns, &g, per_ns.get(&netns).copied().unwrap_or(0)) {
            out.push(f);
        }
    }
}

fn bbc_finding(ctx: &Ctx, netns: u32, g: &Group, ns_bbc: u32) -> Option<Finding> {
    let sys = ctx.sysctls_of(netns)?;
    let usable = sys.capacity.scanned - sys.capacity.reserved;
    let frac = |x: u32| f64::from(x) / f64::from(usable.max(1));
    let w = who::attribute(&g.members, 0);
    let comm = w.comm.clone();
    let fails: Vec<_> = eaddrinuse_binds(ctx)
        .filter(|d| d.netns == netns && d.addr.port() == 0)
        .filter(|d| failed_by(ctx, netns, d.addr).comm == comm)
        .collect();
    let failed: u64 = fails.iter().map(|d| d.count.count).sum();
    let last_fail = fails.iter().map(|d| d.count.last_ns).max();
    let recent = |t: u64| ctx.now.saturating_sub(t) < RECENT_FAILURE_S * NS;
    let pool_failing = ctx.pools_in(netns).any(|p| p.failing_now);
    let sev = if last_fail.is_some_and(recent) || (pool_failing && frac(ns_bbc) >= BBC_WARN_SHARE) {
        Severity::Critical
    } else if failed > 0 || frac(ns_bbc) >= BBC_WARN_SHARE {
        Severity::Warning
    } else if g.bbc >= BBC_MIN || frac(g.bbc) >= BBC_INFO_SHARE {
        Severity::Info
    } else {
        return None;
    };
    let top = g
        .dests
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(k, v)| (*k, *v));
    let spread = match top {
        Some((_, max)) => format!(
            " toward {} (at most {} to any one)",
            plural(g.dests.len() as u64, "destination", "destinations"),
            n(max)
        ),
        None => String::new(),
    };
    let tail = if failed > 0 {
        format!(
            "; bind() to port 0 failed {} with EADDRINUSE",
            plural(failed, "time", "times")
        )
    } else if pool_failing {
        "; connect() fails with EADDRNOTAVAIL in this namespace".to_string()
    } else {
        String::new()
    };
    let evidence = format!(
        "{} bound {} to port 0 before connect(){}: each keeps its port from every \
         destination, so {} of the {} usable ports are gone from every pool{}.",
        w.words_cap(),
        plural(u64::from(g.bbc), "socket", "sockets"),
        spread,
        share(ns_bbc, usable),
        n(usable),
        tail
    );
    let title = if failed > 0 && last_fail.is_some_and(recent) {
        "bind() before connect(): bind() to port 0 finds no free port".to_string()
    } else {
        format!(
            "bind() before connect() takes {} ports from every destination",
            n(g.bbc)
        )
    };
    let mut f = Finding::new(Cause::BindBeforeConnect, sev, netns, title, evidence);
    w.fill(&mut f);
    if let Some(((src, dst), _)) = top {
        f.src_ip = Some(src);
        f.dst = Some(dst);
    }
    f.in_use = Some(g.bbc);
    f.capacity = Some(usable);
    f.states = g
        .states
        .iter()
        .map(|(s, c)| (s.name().to_string(), c))
        .collect();
    if failed > 0 {
        f.errors.insert("EADDRINUSE".to_string(), failed);
    }
    f.remedies.push(rem::ip_bind_no_port());
    f.remedies.push(rem::drop_bind());
    f.remedies.push(rem::tw_reuse_no_bind());
    Some(f)
}

/// Whether a holder's local address conflicts with the requested one.
fn overlaps(holder: IpAddr, requested: IpAddr) -> bool {
    holder.is_unspecified() || requested.is_unspecified() || holder == requested
}

/// "nginx (pid 812)", "nginx (pid 812) in nginx.service", "python3 (pid 7) in container web
/// (podman 5c8f8a6b1d2e)".
fn owner_words(o: &crate::model::ProcRef) -> String {
    super::words::who_in(
        &format!("{} (pid {})", o.comm, o.pid),
        o.workload.as_deref(),
    )
}

fn holder_words(h: &SocketInfo) -> String {
    let who = match &h.owner {
        Some(o) => owner_words(o),
        None => "an unknown process".to_string(),
    };
    match h.role {
        crate::model::Role::Listener => format!("{who} listens on {}", h.local),
        crate::model::Role::Bound => format!("{who} has bound {}", h.local),
        _ => format!(
            "{who} uses it as the source port of a connection to {} ({})",
            h.remote, h.state
        ),
    }
}

/// bind() EADDRINUSE on a chosen port, one finding per (namespace, address).
pub(super) fn bind_conflict(ctx: &Ctx, out: &mut Vec<Finding>) {
    // Most failures first; each looks through the socket table once.
    let failing = eaddrinuse_binds(ctx).filter(|d| d.addr.port() != 0);
    for d in failing.take(BIND_CONFLICTS_MAX) {
        let port = d.addr.port();
        let holders: Vec<SocketInfo> = ctx
            .model
            .port_holders(d.netns, port, ctx.now)
            .into_iter()
            .filter(|h| overlaps(h.local.ip(), d.addr.ip()))
            .collect();
        let leftovers: u32 = ctx
            .listeners
            .iter()
            .filter(|l| l.netns == d.netns && l.local.port() == port && l.listening == 0)
            .map(|l| l.states.total())
            .sum();
        let w = failed_by(ctx, d.netns, d.addr);
        let ago = ctx.now.saturating_sub(d.count.last_ns);
        let sev = if ago < RECENT_FAILURE_S * NS {
            Severity::Critical
        } else if (ago as f64) < WARNING_ETA_S * NS as f64 {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut states = StateCounts::default();
        for h in &holders {
            states.add(h.state, 1);
        }
        let owners: FxHashSet<Option<u32>> = holders
            .iter()
            .map(|h| h.owner.as_ref().map(|o| o.pid))
            .collect();
        let held = match holders.first() {
            Some(h) if holders.len() == 1 => holder_words(h),
            Some(h) => format!(
                "{}, and {} more ({} in all)",
                holder_words(h),
                n(holders.len() as u32 - 1),
                plural(owners.len() as u64, "process", "processes"),
            ),
            None if leftovers > 0 => format!(
                "no process holds it now, but {} accepted by its previous listener remain",
                plural(u64::from(leftovers), "connection", "connections")
            ),
            None => "nothing portwatch sees holds it now (freed since, or held by a socket \
                     that predates portwatch)"
                .to_string(),
        };
        let evidence = format!(
            "bind() to {} by {} failed {} with EADDRINUSE (last {} ago): {}.",
            d.addr,
            w.words(),
            plural(d.count.count, "time", "times"),
            dur(ago as f64 / 1e9),
            held
        );
        let title = format!("bind() conflict: {} is already in use", d.addr);
        let mut f = Finding::new(Cause::BindConflict, sev, d.netns, title, evidence);
        w.fill(&mut f);
        f.dst = Some(d.addr);
        f.states = states
            .iter()
            .map(|(s, c)| (s.name().to_string(), c))
            .collect();
        f.errors.insert("EADDRINUSE".to_string(), d.count.count);
        let in_range = ctx.sysctls_of(d.netns).is_some_and(|s| {
            let (lo, hi) = s.sysctls.port_range;
            (lo..=hi).contains(&port)
        });
        let service_holder = holders.iter().find(|h| {
            matches!(
                h.role,
                crate::model::Role::Listener | crate::model::Role::Bound
            )
        });
        if let Some(h) = service_holder {
            let who = match &h.owner {
                Some(o) => owner_words(o),
                None => "the process holding it (ss -ltnp)".to_string(),
            };
            f.remedies.push(rem::stop_holder(&who, port));
        }
        let client_holders = holders
            .iter()
            .filter(|h| h.role == crate::model::Role::Outbound)
            .count();
        if in_range && (client_holders > 0 || holders.is_empty()) {
            f.remedies.push(rem::reserve_port(port));
        }
        if leftovers > 0 || holders.is_empty() {
            f.remedies.push(rem::so_reuseaddr(port));
        }
        f.remedies.push(rem::tw_reuse_no_bind_conflict());
        out.push(f);
    }
}
