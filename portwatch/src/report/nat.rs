//! The NAT part of the text report: each NAT pool (translated source IP toward one
//! destination) with its rule's capacity and the clients behind it, and each NAT
//! namespace's conntrack statistics.

use super::{
    Report,
    wrap::{row, wrap},
};
use crate::explain::words::{count, n};

const IND: &str = "  ";

pub fn render(out: &mut String, r: &Report) {
    if r.nat_pools.is_empty() && r.conntrack.is_empty() {
        return;
    }
    out.push('\n');
    let title = "NAT pools (ports of a masquerade/SNAT rule per translated IP and destination)";
    out.push_str(title);
    out.push('\n');
    out.push_str(&"-".repeat(title.chars().count()));
    out.push('\n');
    if r.nat_pools.is_empty() {
        out.push_str("  none\n");
    }
    for p in &r.nat_pools {
        let head = format!(
            "netns {} {} {} → {}: {} of {} ports in use ({:.0}%), {} blocking",
            p.netns,
            p.proto,
            p.nat_ip,
            p.dst,
            n(p.in_use),
            n(p.capacity.ports),
            p.utilisation * 100.0,
            n(p.blocking)
        );
        wrap(out, IND, "    ", &head);
        let states: Vec<String> = p
            .states
            .iter()
            .map(|(s, k)| format!("{s} {}", n(*k)))
            .collect();
        let mut detail = format!(
            "states: {}; ports {}-{}; capacity from {:?}",
            states.join(", "),
            p.port_min,
            p.port_max,
            p.capacity.source
        );
        if let Some(t) = p.time_to_exhaustion_s {
            detail += &format!("; out of ports in {t:.0} s");
        }
        detail += &format!(
            "; insert_failed +{}, drop +{}",
            count(p.insert_failed),
            count(p.drop)
        );
        wrap(out, "    ", "    ", &detail);
        for c in &p.clients {
            let who: Vec<String> = c
                .owners
                .iter()
                .filter_map(|o| {
                    o.owner
                        .as_ref()
                        .map(|p| format!("{} (pid {})", p.comm, p.pid))
                })
                .collect();
            let ns = c
                .netns
                .map_or("netns ?".to_string(), |ns| format!("netns {ns}"));
            let line = format!(
                "{} → {} ({ns}): {} entries{}",
                c.orig_src_ip,
                c.orig_dst,
                n(c.total),
                if who.is_empty() {
                    String::new()
                } else {
                    format!(", {}", who.join(", "))
                }
            );
            wrap(out, "    client ", "      ", &line);
        }
    }
    if r.conntrack.is_empty() {
        return;
    }
    out.push_str("\n  conntrack per NAT namespace\n");
    row(
        out,
        IND,
        &[
            ("netns", 10, false),
            ("count/max", 17, true),
            ("ins_failed", 10, true),
            ("drop", 8, true),
            ("early_drop", 10, true),
            ("dump", 16, true),
        ],
    );
    for c in &r.conntrack {
        let fill = format!("{}/{}", count(u64::from(c.count)), count(u64::from(c.max)));
        let dump = match (c.dump_entries, c.dump_took_us) {
            (Some(e), Some(us)) => format!("{} in {:.1} ms", count(e), us as f64 / 1000.0),
            _ => "-".into(),
        };
        row(
            out,
            IND,
            &[
                (&c.netns.to_string(), 10, false),
                (&fill, 17, true),
                (&count(c.since_start.insert_failed), 10, true),
                (&count(c.since_start.drop), 8, true),
                (&count(c.since_start.early_drop), 10, true),
                (&dump, 16, true),
            ],
        );
    }
}
