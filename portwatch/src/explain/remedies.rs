//! Every remedy's wording, in one place so that each says the same thing wherever it appears
//! (and agrees with docs/kernel-facts.md). `helps: false` entries are the changes people reach for
//! that would not help for that cause, each with why.

use super::{
    Remedy,
    words::{count, n, rate},
};
use crate::model::{CapacityBreakdown, Sysctls};

pub(super) fn r(
    id: &str,
    helps: bool,
    action: impl Into<String>,
    why: impl Into<String>,
) -> Remedy {
    Remedy {
        id: id.to_string(),
        action: action.into(),
        helps,
        why: why.into(),
        source: None,
    }
}

/// What widening the range would give: the proposed range and its capacity (approximate:
/// ports held by binds today are assumed still held).
pub(super) fn widen_proposal(sys: &Sysctls, cap: &CapacityBreakdown) -> Option<(u16, u16, u32)> {
    let (lo, hi) = sys.port_range;
    let (new_lo, mut new_hi) = (lo.min(15000), hi.max(64999));
    if (u32::from(new_hi) + 1 - u32::from(new_lo)) % 2 == 1 {
        new_hi -= 1; // ends of opposite parity: every port is scanned
    }
    if (new_lo, new_hi) == (lo, hi) || new_hi <= new_lo {
        return None;
    }
    let scanned = u32::from(new_hi) + 1 - u32::from(new_lo);
    let reserved: u32 = sys
        .reserved_ports
        .iter()
        .map(|&(a, b)| {
            let (a, b) = (a.max(new_lo), b.min(new_hi));
            if b >= a { u32::from(b - a) + 1 } else { 0 }
        })
        .sum();
    Some((
        new_lo,
        new_hi,
        scanned.saturating_sub(reserved + cap.held_by_bind),
    ))
}

/// What a cause needs from a wider range.
pub(super) enum Need {
    /// A steady state of this many ports, and how that number comes about.
    Steady(u32, String),
    /// This many ports now, growing by this many a second.
    Growing(u32, f64),
}

/// Widen `ip_local_port_range`, quantified against what the cause needs.
pub(super) fn widen_range(sys: &Sysctls, cap: &CapacityBreakdown, need: Option<Need>) -> Remedy {
    let (lo, hi) = sys.port_range;
    let Some((new_lo, new_hi, new_cap)) = widen_proposal(sys, cap) else {
        return r(
            "widen_port_range",
            false,
            "Widening net.ipv4.ip_local_port_range",
            format!("It already spans {lo}–{hi}; there is little left to add."),
        );
    };
    let verdict = match need {
        Some(Need::Steady(need, how)) if need <= new_cap => {
            format!(": {how} you need {} — enough", n(need))
        }
        Some(Need::Steady(need, how)) => format!(
            ": {how} you need {} — not enough on its own, combine with the first fix",
            n(need)
        ),
        Some(Need::Growing(now, per_s)) => {
            let room = new_cap.saturating_sub(now);
            let time = if per_s >= 0.5 {
                format!(
                    ", about {} at {}/s",
                    super::words::dur(f64::from(room) / per_s),
                    rate(per_s)
                )
            } else {
                String::new()
            };
            format!(": room for {} more connections{time}", n(room))
        }
        None => String::new(),
    };
    r(
        "widen_port_range",
        true,
        format!("sysctl -w net.ipv4.ip_local_port_range=\"{new_lo} {new_hi}\""),
        format!(
            "{new_lo}–{new_hi} gives about {} ports per pool instead of {}{verdict}. Reserve \
             fixed server ports inside it first (net.ipv4.ip_local_reserved_ports) or those \
             services may fail to bind.",
            n(new_cap),
            n(cap.capacity)
        ),
    )
}

pub(super) fn connection_reuse(who: &str, per_s: f64, need: u32) -> Remedy {
    r(
        "connection_pooling",
        true,
        format!("Reuse connections in {who}: HTTP keep-alive or a connection pool"),
        format!(
            "Every connection this side closes first holds its port 60 s in TIME_WAIT: {}/s × \
             60 s = {} ports. Kept-alive connections carry the same requests with a few \
             hundred ports.",
            rate(per_s),
            n(need)
        ),
    )
}

/// `tcp_tw_reuse=1` for a TIME_WAIT-bound pool that it does not cover today; `per_s`: the
/// rate ports enter TIME_WAIT (connections that got a port).
pub(super) fn tw_reuse_on(sys: &Sysctls, loopback: bool, tw: u32, per_s: f64) -> Remedy {
    let now = match sys.tw_reuse {
        0 => "0 (off)".to_string(),
        2 if !loopback => "2 (loopback only), which does not cover this destination".to_string(),
        v => v.to_string(),
    };
    // Reuse needs the timewait socket's last timestamp to be at least 1 s old: all but those
    // closed in the last second qualify.
    let young = (per_s.ceil() as u32).min(tw);
    if sys.timestamps == 0 {
        return r(
            "tcp_tw_reuse",
            true,
            "sysctl -w net.ipv4.tcp_timestamps=1 net.ipv4.tcp_tw_reuse=1",
            format!(
                "connect() may then take over a TIME_WAIT 4-tuple at least 1 s old (of the {} \
                 here, all but about {} closed in the last second); reuse needs TCP timestamps, \
                 which are off. tcp_tw_reuse is {now}.",
                n(tw),
                n(young)
            ),
        );
    }
    let usable = if young == 0 {
        format!("all {} TIME_WAIT ports here become usable", n(tw))
    } else {
        format!(
            "of the {} TIME_WAIT ports here, all but about {} closed in the last second \
             become usable",
            n(tw),
            n(young)
        )
    };
    r(
        "tcp_tw_reuse",
        true,
        "sysctl -w net.ipv4.tcp_tw_reuse=1",
        format!(
            "connect() may then take over a TIME_WAIT 4-tuple at least 1 s old: {usable}. It \
             is {now}. Outgoing connections only."
        ),
    )
}

pub(super) fn more_destinations(capacity: u32) -> Remedy {
    r(
        "more_destination_addresses",
        true,
        "Spread connections over more destination addresses or ports (more backend IPs, \
         several listening ports)",
        format!(
            "Ports run out per (source IP, destination IP, destination port): each extra \
             destination address or port is another {} ports.",
            n(capacity)
        ),
    )
}

pub(super) fn more_sources(capacity: u32) -> Remedy {
    r(
        "more_source_addresses",
        true,
        "Add source addresses: more IPs on this host (bind with IP_BIND_ADDRESS_NO_PORT), or \
         more client machines",
        format!(
            "Each source IP is another {} ports toward the same destination.",
            n(capacity)
        ),
    )
}

pub(super) fn fin_timeout_no() -> Remedy {
    r(
        "tcp_fin_timeout",
        false,
        "Lowering net.ipv4.tcp_fin_timeout",
        "It only bounds orphaned FIN_WAIT2 sockets. TIME_WAIT lasts 60 s (TCP_TIMEWAIT_LEN, \
         fixed in the kernel); no sysctl shortens it.",
    )
}

pub(super) fn tw_recycle_no() -> Remedy {
    r(
        "tcp_tw_recycle",
        false,
        "net.ipv4.tcp_tw_recycle",
        "It was removed in Linux 4.12; this kernel has no such setting.",
    )
}

pub(super) fn tw_reuse_no_established(est: u32) -> Remedy {
    r(
        "tcp_tw_reuse",
        false,
        "Setting net.ipv4.tcp_tw_reuse",
        format!(
            "It only lets connect() take over TIME_WAIT 4-tuples; these {} connections are \
             ESTABLISHED and hold their ports until they close.",
            n(est)
        ),
    )
}

pub(super) fn limit_concurrency(who: &str, dst: &str) -> Remedy {
    r(
        "limit_concurrency",
        true,
        format!("Cap concurrent connections from {who} to {dst} (pool size, per-host limit)"),
        "Requests then queue for a connection instead of failing connect() with \
         EADDRNOTAVAIL; check why so many are open at once (slow responses, leaked \
         connections).",
    )
}

pub(super) fn ip_bind_no_port() -> Remedy {
    r(
        "ip_bind_address_no_port",
        true,
        "setsockopt(IP_BIND_ADDRESS_NO_PORT, 1) before bind() (Linux 4.2+)",
        "bind() then keeps only the source address and connect() picks the port per \
         destination, so sockets to different destinations share ports instead of each \
         taking one from every pool.",
    )
}

pub(super) fn drop_bind() -> Remedy {
    r(
        "drop_bind",
        true,
        "Drop the bind() if it only picks the source address routing would pick anyway",
        "Without bind(), connect() chooses a port unique per destination.",
    )
}

pub(super) fn tw_reuse_no_bind() -> Remedy {
    r(
        "tcp_tw_reuse",
        false,
        "Setting net.ipv4.tcp_tw_reuse",
        "It acts only inside connect()'s own port search; a port taken by bind() stays \
         taken (TIME_WAIT included) for every destination.",
    )
}

pub(super) fn fix_close_path(who: &str) -> Remedy {
    r(
        "fix_close_path",
        true,
        format!("Fix the close path in {who}: close() the socket when read() returns 0 or fails"),
        "CLOSE_WAIT means the peer has closed and the process still holds the socket; only \
         close() ends it. Look for leaked connections or fds (ls /proc/PID/fd | wc -l).",
    )
}

pub(super) fn restart_process(who: &str) -> Remedy {
    r(
        "restart_process",
        true,
        format!("As a stopgap, restart {who}"),
        "Exiting closes its sockets; the leak comes back until the close path is fixed.",
    )
}

pub(super) fn fin_timeout_no_close_wait() -> Remedy {
    r(
        "tcp_fin_timeout",
        false,
        "Lowering net.ipv4.tcp_fin_timeout",
        "It only bounds orphaned FIN_WAIT2; no kernel timer ends CLOSE_WAIT, the process \
         must close().",
    )
}

pub(super) fn tw_reuse_no_close_wait() -> Remedy {
    r(
        "tcp_tw_reuse",
        false,
        "Setting net.ipv4.tcp_tw_reuse",
        "There is no TIME_WAIT here: CLOSE_WAIT sockets are still open in the process.",
    )
}

pub(super) fn check_destination(dst: &str) -> Remedy {
    r(
        "check_destination",
        true,
        format!(
            "Check {dst}: is it up and listening, is a firewall dropping SYNs, is its \
                 accept queue full?"
        ),
        "Connects wait in SYN_SENT for the destination's answer; nothing on this host's \
         ports makes them complete.",
    )
}

pub(super) fn connect_timeout(who: &str) -> Remedy {
    r(
        "connect_timeout",
        true,
        format!("Give up sooner in {who}: a short connect timeout and a circuit breaker"),
        "An unanswered connect holds its port through the SYN retries (about 2 min with the \
         default tcp_syn_retries=6).",
    )
}

pub(super) fn widen_no_syn(dst: &str) -> Remedy {
    r(
        "widen_port_range",
        false,
        "Widening net.ipv4.ip_local_port_range",
        format!(
            "Ports are not the problem: the connects wait for {dst}, and more ports only let \
             more of them pile up."
        ),
    )
}

pub(super) fn stop_holder(holder: &str, port: u16) -> Remedy {
    r(
        "stop_port_holder",
        true,
        format!("Stop {holder} or move one of the two services off port {port}"),
        "Two sockets cannot hold the same address and port unless both set SO_REUSEADDR \
         (and neither listens) or both set SO_REUSEPORT under the same user.",
    )
}

pub(super) fn reserve_port(port: u16) -> Remedy {
    r(
        "reserve_port",
        true,
        format!("sysctl -w net.ipv4.ip_local_reserved_ports={port} (add to the existing list)"),
        format!(
            "Port {port} lies in ip_local_port_range, so connect() and bind(0) hand it to \
             clients; reserved, it stays free for the service."
        ),
    )
}

pub(super) fn so_reuseaddr(port: u16) -> Remedy {
    r(
        "so_reuseaddr",
        true,
        format!("Set SO_REUSEADDR on the listening socket before bind() to port {port}"),
        "A restarted server can then bind while connections of its previous run are still \
         in TIME_WAIT on that port.",
    )
}

pub(super) fn tw_reuse_no_bind_conflict() -> Remedy {
    r(
        "tcp_tw_reuse",
        false,
        "Setting net.ipv4.tcp_tw_reuse",
        "It only affects connect()'s choice of a source port, never bind().",
    )
}

pub(super) fn range_parity(lo: u16, hi: u16) -> Remedy {
    let hi2 = if hi < 65535 { hi + 1 } else { hi - 1 };
    r(
        "range_parity",
        true,
        format!("sysctl -w net.ipv4.ip_local_port_range=\"{lo} {hi2}\""),
        format!(
            "connect() scans an even number of ports (in two passes, one per parity), so with \
             ends of the same parity each call skips {lo} or {hi}; ends of opposite parity \
             let every call scan every port, as the kernel's ip-sysctl documentation advises."
        ),
    )
}

pub(super) fn free_reserved(reserved: u32) -> Remedy {
    r(
        "free_reserved_ports",
        true,
        "Trim net.ipv4.ip_local_reserved_ports to the ports services really use",
        format!(
            "connect() skips all {} reserved ports in the range, toward every destination.",
            count(u64::from(reserved))
        ),
    )
}

pub(super) fn move_listeners(lo: u16) -> Remedy {
    r(
        "move_listeners",
        true,
        format!("Move listeners out of the range (below {lo}), or start the range above them"),
        "A port held by listen() or bind() is gone for every destination of the namespace.",
    )
}

pub(super) fn raise_tw_buckets(max: u32) -> Remedy {
    r(
        "raise_max_tw_buckets",
        true,
        format!(
            "Raise net.ipv4.tcp_max_tw_buckets above {} (or reduce churn: reuse connections)",
            n(max)
        ),
        "Past it, closing sockets skip TIME_WAIT, losing its protection against stale \
         segments; each TIME_WAIT kept also holds its port for 60 s, so reducing churn is \
         the real fix.",
    )
}
