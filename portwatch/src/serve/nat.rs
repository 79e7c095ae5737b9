//! The NAT families of `/metrics`: each NAT pool's ports in use and capacity (labels: the NAT
//! namespace, protocol, translated source IP, destination — bounded by the pools the report
//! keeps), and each NAT namespace's conntrack counters and fill, as the kernel counts them.

use prometheus_client::registry::Registry;

use super::metrics::{Labels, counter_family, gauge_family};
use crate::report::Report;

pub(super) fn register(reg: &mut Registry, r: &Report) {
    let in_use = gauge_family(
        reg,
        "portwatch_nat_pool_ports_in_use",
        "Ports of a source-NAT rule in use toward one destination from one translated address \
         (conntrack entries, every state)",
    );
    let capacity = gauge_family(
        reg,
        "portwatch_nat_pool_ports_capacity",
        "Ports the NAT rule allows toward one destination (its port range, or the kernel's)",
    );
    let blocking = gauge_family(
        reg,
        "portwatch_nat_pool_ports_blocking",
        "NAT ports in use less TIME_WAIT/CLOSE entries a new connection may take over",
    );
    for p in &r.nat_pools {
        let l: Labels = vec![
            ("netns", p.netns.to_string()),
            ("proto", p.proto.clone()),
            ("nat_ip", p.nat_ip.to_string()),
            ("dst", p.dst.to_string()),
        ];
        in_use.get_or_create(&l).set(i64::from(p.in_use));
        capacity.get_or_create(&l).set(i64::from(p.capacity.ports));
        blocking.get_or_create(&l).set(i64::from(p.blocking));
    }
    let insert_failed = counter_family(
        reg,
        "portwatch_conntrack_insert_failed",
        "Conntrack entries that could not be inserted (for SNAT: no free port), per NAT \
         namespace, as the kernel counts them",
    );
    let drop = counter_family(
        reg,
        "portwatch_conntrack_drop",
        "Packets conntrack dropped (an unresolvable clash, or a full table), per NAT namespace",
    );
    let early_drop = counter_family(
        reg,
        "portwatch_conntrack_early_drop",
        "Entries evicted early because the conntrack table was full, per NAT namespace",
    );
    let entries = gauge_family(
        reg,
        "portwatch_conntrack_entries",
        "Conntrack entries of the NAT namespace (nf_conntrack_count)",
    );
    let max = gauge_family(
        reg,
        "portwatch_conntrack_max_entries",
        "nf_conntrack_max (one limit for the host)",
    );
    for c in &r.conntrack {
        let l: Labels = vec![("netns", c.netns.to_string())];
        insert_failed
            .get_or_create(&l)
            .inc_by(c.stats.insert_failed);
        drop.get_or_create(&l).inc_by(c.stats.drop);
        early_drop.get_or_create(&l).inc_by(c.stats.early_drop);
        entries.get_or_create(&l).set(i64::from(c.count));
        max.get_or_create(&l).set(i64::from(c.max));
    }
}
