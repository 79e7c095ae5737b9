//! NAT rules: `snat_exhaustion` per NAT pool whose rule's ports toward one destination are
//! (nearly) all taken, and the `conntrack_table_full` config finding. Every statement agrees
//! with docs/nat.md: a conntrack entry holds its translated port until it is removed (its
//! state's timeout, or eviction of a TIME_WAIT/CLOSE entry by a new connection that is out
//! of attempts); a SYN that finds no free port is dropped at confirmation and counted in
//! `insert_failed` and `drop`; one (client IP, destination) pair always maps to one NAT
//! address (`find_best_ips_proto`).

use std::{collections::BTreeMap, net::SocketAddr};

use super::{
    Cause, ConfigIssue, Finding, Remedy, Severity,
    thresholds::{CRITICAL_ETA_S, CT_TABLE_CRITICAL, CT_TABLE_WARN, NAT_WARN_UTIL, WARNING_ETA_S},
    words::{n, plural},
};
use crate::model::{
    Tables,
    nat::{CapacitySource, ConntrackStats, NatKind, NatPoolStats, NatRule},
};

fn r(id: &str, helps: bool, action: impl Into<String>, why: impl Into<String>) -> Remedy {
    Remedy {
        id: id.into(),
        action: action.into(),
        helps,
        why: why.into(),
        // The NAT's knobs are the kernel's and the rule's, not a program's.
        source: None,
    }
}

/// Adds the NAT findings; returns the (client namespace, destination) pairs whose SYN_SENT
/// pile-up they explain (a `syn_sent_pileup` finding there is this finding instead).
pub(super) fn rules(tables: &Tables, out: &mut Vec<Finding>) -> Vec<(u32, SocketAddr)> {
    let mut explained = Vec::new();
    for p in &tables.nat_pools {
        if let Some(f) = snat_exhaustion(p) {
            for c in &p.clients {
                if let Some(ns) = c.netns {
                    explained.push((ns, c.orig_dst));
                }
            }
            out.push(f);
        }
    }
    for c in &tables.conntrack {
        out.extend(table_full(c));
    }
    explained
}

/// The rule in words: "masquerade to :40000-40009 (nft table nat, chain post)".
fn rule_words(rule: &Option<NatRule>) -> String {
    let Some(rule) = rule else {
        return "a source-NAT rule portwatch cannot see (iptables-legacy?)".into();
    };
    let kind = match rule.kind {
        NatKind::Masquerade => "masquerade",
        NatKind::Snat => "snat",
    };
    let addr = match (rule.addr_min, rule.addr_max) {
        (Some(a), Some(b)) if a != b => format!(" to {a}-{b}"),
        (Some(a), _) => format!(" to {a}"),
        _ => String::new(),
    };
    let ports = match (rule.port_min, rule.port_max) {
        (Some(a), Some(b)) => format!("{} :{a}-{b}", if addr.is_empty() { " to" } else { "" }),
        _ => String::new(),
    };
    let fully = if rule.random_fully {
        " random-fully"
    } else {
        ""
    };
    format!(
        "{kind}{addr}{ports}{fully} ({}, table {}, chain {})",
        rule.source, rule.table, rule.chain
    )
}

fn snat_exhaustion(p: &NatPoolStats) -> Option<Finding> {
    let cap = p.capacity.ports;
    let full = p.blocking >= cap;
    let util = p.effective_utilisation;
    let eta = p.time_to_exhaustion_s;
    let severity = if full || eta.is_some_and(|t| t < CRITICAL_ETA_S) {
        Severity::Critical
    } else if util >= NAT_WARN_UTIL || eta.is_some_and(|t| t < WARNING_ETA_S) {
        Severity::Warning
    } else {
        return None;
    };
    let top = p.clients.first();
    let owner = top
        .and_then(|c| c.owners.iter().max_by_key(|o| o.total))
        .and_then(|o| o.owner.clone());
    let dst = p.dst.to_string();
    let rule = rule_words(&p.capacity.rule);
    let who = match (&owner, top) {
        (Some(o), _) => format!("{} (pid {})", o.comm, o.pid),
        (None, Some(c)) => format!("clients at {}", c.orig_src_ip),
        (None, None) => "unknown clients".into(),
    };
    let title = if full {
        format!(
            "{who}: connections to {dst} dropped at the NAT of netns {}: all {} toward {dst} are taken",
            p.netns,
            plural(u64::from(cap), "NAT port", "NAT ports")
        )
    } else {
        format!(
            "{who}: NAT ports toward {dst} heading for exhaustion ({:.0}% of {} taken at netns {})",
            util * 100.0,
            n(cap),
            p.netns
        )
    };
    let states: Vec<String> = p.states.iter().map(|(s, k)| format!("{k} {s}")).collect();
    let mut evidence = format!(
        "{} of {} of {rule} toward {dst} are in use from {} ({})",
        n(p.in_use),
        plural(u64::from(cap), "NAT port", "NAT ports"),
        p.nat_ip,
        states.join(", ")
    );
    if p.evictable > 0 {
        evidence += &format!(
            "; {} in TIME_WAIT/CLOSE can be taken over by a new connection",
            p.evictable
        );
    }
    evidence += &format!(
        "; conntrack insert_failed +{} and drop +{} since portwatch started ({:.1}/s now)",
        p.insert_failed, p.drop, p.rates.insert_failed_per_s
    );
    if full && p.insert_failed > 0 {
        evidence += ": SYNs of new connections are dropped there";
    }
    if let Some(c) = top {
        evidence += &format!(
            ". {who} holds {} of them from {}{}",
            c.total,
            c.orig_src_ip,
            c.netns.map_or(String::new(), |ns| format!(" (netns {ns})"))
        );
        if c.syn_sent > 0 {
            evidence += &format!(
                "; {} of its connects to {} wait in SYN_SENT",
                c.syn_sent, c.orig_dst
            );
        }
        evidence += "; its own port range is not what runs out";
    }
    evidence.push('.');

    let mut f = Finding::new(Cause::SnatExhaustion, severity, p.netns, title, evidence);
    f.nat_netns = Some(p.netns);
    if let Some(ns) = top.and_then(|c| c.netns) {
        f.netns = ns;
    }
    if let Some(o) = &owner {
        f.pid = Some(o.pid);
        f.comm = Some(o.comm.to_string());
        f.ppid = (o.ppid != 0).then_some(o.ppid);
        f.workload = o.workload.clone();
        f.process_count = 1;
    }
    f.src_ip = Some(p.nat_ip);
    f.dst = Some(p.dst);
    f.in_use = Some(p.blocking.min(cap));
    f.capacity = Some(cap);
    f.states = p
        .states
        .iter()
        .map(|(s, k)| (s.to_string(), *k))
        .collect::<BTreeMap<_, _>>();
    if p.insert_failed > 0 {
        f.errors
            .insert("conntrack_insert_failed".into(), p.insert_failed);
    }
    if p.drop > 0 {
        f.errors.insert("conntrack_drop".into(), p.drop);
    }
    f.rate_per_s = Some(p.rates.growth_per_s.max(0.0));
    f.eta_s = eta;
    f.remedies = remedies(p, &who, full);
    Some(f)
}

fn remedies(p: &NatPoolStats, who: &str, full: bool) -> Vec<Remedy> {
    let dst = p.dst;
    let cap = p.capacity.ports;
    let clients: std::collections::BTreeSet<_> = p.clients.iter().map(|c| c.orig_src_ip).collect();
    let mut v = vec![
        r(
            "connection_pooling",
            true,
            format!(
                "have {who} reuse connections to {dst} (keep-alive, a pool) or hold fewer at once"
            ),
            format!(
                "every connection through the NAT holds one of its {cap} ports toward {dst} for as long as its conntrack entry lives (ESTABLISHED: until it closes; then TIME_WAIT 120 s unless taken over)"
            ),
        ),
        more_addresses(p, clients.len()),
    ];
    if p.capacity.source == CapacitySource::Rule && cap < 64512 {
        v.push(r(
            "widen_nat_port_range",
            true,
            "give the rule a wider port range (masquerade to :1024-65535), or none",
            format!("the rule allows {cap} ports; without a range the kernel uses 1024-65535"),
        ));
    }
    v.push(r(
        "more_destination_addresses",
        true,
        format!("spread the traffic over more destination addresses or ports than {dst}"),
        "the NAT's ports are counted per destination IP:port: each new destination has its own",
    ));
    v.push(random_fully(p, full));
    v.push(r(
        "cloud_nat",
        true,
        "if the traffic then leaves through a cloud NAT, check its own limit: an AWS NAT gateway allows about 55,000 simultaneous connections per destination per address (add addresses; ErrorPortAllocation), Azure allocates SNAT ports per VM (outbound rules, or a NAT Gateway)",
        "the same exhaustion happens again at every NAT on the path, each with its own port budget",
    ));
    v.push(r(
        "widen_port_range",
        false,
        "widening the client's net.ipv4.ip_local_port_range",
        "the client's own pool has free ports; the NAT rewrites the source port, and its range is what runs out",
    ));
    v.push(r(
        "tcp_tw_reuse",
        false,
        "net.ipv4.tcp_tw_reuse on the client",
        "it lets the client's own sockets reuse TIME_WAIT 4-tuples; the NAT's conntrack entries are not sockets and are not affected",
    ));
    v
}

fn more_addresses(p: &NatPoolStats, clients: usize) -> Remedy {
    let why = "the kernel picks the NAT address from a hash of the client and destination addresses (find_best_ips_proto)";
    if clients > 1 {
        r(
            "more_egress_addresses",
            true,
            "SNAT to an address range (snat to A-B) instead of one address",
            format!(
                "{why}: {clients} clients toward {} spread over the addresses, each with its own ports",
                p.dst
            ),
        )
    } else {
        r(
            "more_egress_addresses",
            false,
            "SNAT to an address range (snat to A-B)",
            format!(
                "{why}: one client toward one destination always lands on the same address, so it gains no ports"
            ),
        )
    }
}

fn random_fully(p: &NatPoolStats, full: bool) -> Remedy {
    let fully = p.capacity.rule.as_ref().is_some_and(|r| r.random_fully);
    if full || fully {
        r(
            "random_fully",
            false,
            "masquerade random-fully",
            "it changes which free port is tried first, not how many there are: a full range stays full",
        )
    } else {
        r(
            "random_fully",
            p.insert_failed > 0,
            "masquerade random-fully",
            "drops while ports are still free are clashes of connections set up at the same instant on different CPUs; choosing every port at random makes them rare",
        )
    }
}

fn table_full(c: &ConntrackStats) -> Option<Finding> {
    if c.max == 0 {
        return None;
    }
    let fill = f64::from(c.count) / f64::from(c.max);
    let evicting = c.recent.early_drop > 0;
    let severity = if evicting || fill >= CT_TABLE_CRITICAL {
        Severity::Critical
    } else if fill >= CT_TABLE_WARN {
        Severity::Warning
    } else {
        return None;
    };
    let title = format!(
        "conntrack table {:.0}% full in netns {} ({} of nf_conntrack_max {})",
        fill * 100.0,
        c.netns,
        n(c.count),
        n(c.max)
    );
    let evidence = format!(
        "{} entries of {}; early_drop +{} and drop +{} since portwatch started: when the table is full, new connections are dropped at conntrack whatever their ports.",
        n(c.count),
        n(c.max),
        c.since_start.early_drop,
        c.since_start.drop
    );
    let mut f = Finding::new(Cause::Config, severity, c.netns, title, evidence);
    f.issue = Some(ConfigIssue::ConntrackTableFull);
    f.nat_netns = Some(c.netns);
    f.in_use = Some(c.count);
    f.capacity = Some(c.max);
    if c.since_start.early_drop > 0 {
        f.errors
            .insert("conntrack_early_drop".into(), c.since_start.early_drop);
    }
    f.remedies = vec![
        r(
            "raise_conntrack_max",
            true,
            format!(
                "sysctl -w net.netfilter.nf_conntrack_max={}",
                c.max.saturating_mul(2)
            ),
            "the limit is host-wide; each entry costs about 300 bytes of kernel memory",
        ),
        r(
            "conntrack_timeouts",
            true,
            "shorten the timeouts of states that pile up (net.netfilter.nf_conntrack_tcp_timeout_time_wait, …_established)",
            "entries live until their state's timeout: 5 days ESTABLISHED, 120 s TIME_WAIT by default",
        ),
    ];
    Some(f)
}

/// Drops the `syn_sent_pileup` findings a NAT finding explains.
pub(super) fn absorb(findings: &mut Vec<Finding>, explained: &[(u32, SocketAddr)]) {
    findings.retain(|f| {
        f.cause != Cause::SynSentPileup
            || !explained
                .iter()
                .any(|(ns, dst)| f.netns == *ns && f.dst == Some(*dst))
    });
}
