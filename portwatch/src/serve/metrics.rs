//! `/metrics`: a [`Picture`] in the OpenMetrics text format, or in the Prometheus text format
//! 0.0.4 for clients that do not ask for OpenMetrics (`curl`, `promtool check metrics`), both
//! written by the Prometheus project's own client (`prometheus-client`). A fresh registry per
//! refresh holds exactly that refresh's values; scrapes between two refreshes get the same
//! bytes.
//!
//! Cardinality is bounded by design: pool series for the top N pools only, no pid or source
//! port label, failures and sockets per network namespace, findings per (cause, severity).
//! The families are documented in the README ("Metrics").

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::{prometheus_text, text},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::Picture;
use crate::{
    event::{CallKind, Errno},
    explain::{Cause, Severity},
};

/// A label set: (name, value) pairs in a fixed order.
pub(super) type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// Every cause and severity, so that `portwatch_findings` reads 0 rather than nothing when a
/// finding goes away (alerts and graphs see it end).
const CAUSES: [Cause; 9] = [
    Cause::TimeWaitChurn,
    Cause::Concurrency,
    Cause::BindBeforeConnect,
    Cause::BindConflict,
    Cause::CloseWaitLeak,
    Cause::FinWait2Hold,
    Cause::SynSentPileup,
    Cause::SnatExhaustion,
    Cause::Config,
];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// The content type of [`Rendered::openmetrics`].
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`Rendered::text`].
pub const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `namespace` and `pod` of the Kubernetes pod whose processes own the pool's sockets, when
/// the cgroup paths name one (and the kubelet's directories its name): bounded by the pools
/// shown. Never a container id, which would make a new series per container restart.
fn pod_labels(pool: &crate::model::PoolStats) -> Labels {
    let pod = pool
        .owners
        .iter()
        .filter_map(|o| o.owner.as_ref()?.workload.as_ref()?.pod.as_ref())
        .next();
    match pod {
        Some(p) => vec![
            ("namespace", p.namespace.clone().unwrap_or_default()),
            ("pod", p.name.clone().unwrap_or_else(|| p.uid.clone())),
        ],
        None => Vec::new(),
    }
}

pub(super) fn gauge_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge_f_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, GaugeF> {
    let f = Family::<Labels, GaugeF>::default();
    reg.register(name, help, f.clone());
    f
}

/// `name` without `_total`: the client appends it to counters.
pub(super) fn counter_family(
    reg: &mut Registry,
    name: &str,
    help: &str,
) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    reg.register(name, help, g);
}

fn gauge_f(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g = GaugeF::default();
    g.set(v);
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn int(v: impl TryInto<i64>) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

/// The registry for one picture.
pub fn registry(p: &Picture) -> Registry {
    let mut reg = Registry::default();
    let r = &p.report;

    let in_use = gauge_family(
        &mut reg,
        "portwatch_pool_ports_in_use",
        "Local ports in use toward one destination from one source IP (top pools by urgency)",
    );
    let capacity = gauge_family(
        &mut reg,
        "portwatch_pool_ports_capacity",
        "Usable local ports of the pool: the port range less reserved ports and bound listeners",
    );
    let blocking = gauge_family(
        &mut reg,
        "portwatch_pool_ports_blocking",
        "Ports that block connect() now: in use less TIME_WAIT that tcp_tw_reuse may take over",
    );
    let tte = gauge_f_family(
        &mut reg,
        "portwatch_pool_time_to_exhaustion_seconds",
        "Seconds until the pool is out of ports at the current rate (only pools heading there)",
    );
    let new_rate = gauge_f_family(
        &mut reg,
        "portwatch_pool_new_connections_per_second",
        "New connections per second toward the pool's destination (recent window)",
    );
    let second_parity = gauge_f_family(
        &mut reg,
        "portwatch_pool_second_parity_share_ratio",
        "Share of the pool's new connections (recent window) whose port has the parity the \
         kernel scans second (odd for a range starting even): above 0.5 the first half is full",
    );
    // Not a summary (the quantiles are of the last 10 s, not since start): a "quantile" label
    // is for summaries only (promtool), so the label is "percentile".
    let latency = gauge_f_family(
        &mut reg,
        "portwatch_pool_connect_latency_seconds",
        "connect() duration toward the pool's destination over the last 10 s, by percentile \
         (50, 90, 99), from the kernel's per-destination histogram",
    );
    let latency_base = gauge_f_family(
        &mut reg,
        "portwatch_pool_connect_latency_baseline_seconds",
        "The median connect() duration of the destination's fastest 10 s window so far",
    );
    for pool in &r.pools {
        let mut l: Labels = vec![
            ("netns", pool.netns.to_string()),
            ("src", pool.src.to_string()),
            ("dst", pool.dst.to_string()),
        ];
        l.extend(pod_labels(pool));
        in_use.get_or_create(&l).set(i64::from(pool.in_use));
        capacity.get_or_create(&l).set(i64::from(pool.capacity));
        blocking.get_or_create(&l).set(i64::from(pool.blocking));
        new_rate.get_or_create(&l).set(pool.rates.new_per_s);
        if let Some(t) = pool.time_to_exhaustion_s {
            tte.get_or_create(&l).set(t);
        }
        let search = &pool.port_search;
        if let Some(share) = search.second_parity_share {
            second_parity.get_or_create(&l).set(share);
        }
        if let Some(lat) = &search.latency {
            for (pc, us) in [("50", lat.p50_us), ("90", lat.p90_us), ("99", lat.p99_us)] {
                let mut lp = l.clone();
                lp.push(("percentile", pc.to_string()));
                latency.get_or_create(&lp).set(us / 1e6);
            }
            if let Some(b) = lat.baseline_p50_us {
                latency_base.get_or_create(&l).set(b / 1e6);
            }
        }
    }
    gauge_f(
        &mut reg,
        "portwatch_pool_max_utilisation_ratio",
        "The highest in_use / capacity over every pool, not only the top ones",
        p.max_utilisation,
    );
    gauge(
        &mut reg,
        "portwatch_pools",
        "Pools (netns, source IP, destination) with a socket or a failure",
        int(p.pools_total),
    );

    let connect = counter_family(
        &mut reg,
        "portwatch_connect_failures",
        "Failed connect() calls by errno and network namespace",
    );
    let bind = counter_family(
        &mut reg,
        "portwatch_bind_failures",
        "Failed bind() calls by errno and network namespace",
    );
    // The errnos of exhaustion start at 0 in every namespace the model knows, so that the
    // first failure is an increase (`increase()` and alerts see it) rather than a new series.
    let known = r.sysctls.iter().map(|n| n.netns);
    for netns in known.chain(r.totals.per_netns.iter().map(|n| n.netns)) {
        let l =
            |e: i32| -> Labels { vec![("errno", Errno(e).name()), ("netns", netns.to_string())] };
        connect.get_or_create(&l(libc::EADDRNOTAVAIL)).inc_by(0);
        bind.get_or_create(&l(libc::EADDRINUSE)).inc_by(0);
    }
    for f in &p.failures {
        let l: Labels = vec![("errno", f.errno.name()), ("netns", f.netns.to_string())];
        match f.call {
            CallKind::Connect => connect.get_or_create(&l).inc_by(f.count),
            CallKind::Bind => bind.get_or_create(&l).inc_by(f.count),
        };
    }

    let sockets = gauge_family(
        &mut reg,
        "portwatch_sockets",
        "TCP sockets by state and network namespace (states with at least one socket)",
    );
    for n in &r.totals.per_netns {
        for (state, count) in n.states.iter() {
            let l: Labels = vec![
                ("state", state.name().to_string()),
                ("netns", n.netns.to_string()),
            ];
            sockets.get_or_create(&l).set(i64::from(count));
        }
    }

    let findings = gauge_family(
        &mut reg,
        "portwatch_findings",
        "Current findings by cause and severity",
    );
    for c in CAUSES {
        for s in SEVERITIES {
            let l: Labels = vec![("cause", c.id().into()), ("severity", s.id().into())];
            let n = r
                .findings
                .iter()
                .filter(|f| f.cause == c && f.severity == s)
                .count();
            findings.get_or_create(&l).set(int(n));
        }
    }

    counter(
        &mut reg,
        "portwatch_exhaustion_episodes",
        "Exhaustion episodes opened since start: a pool reached its capacity or connect() \
         failed with EADDRNOTAVAIL for it (the report's `episodes`)",
        r.model.episodes_opened,
    );

    super::nat::register(&mut reg, r);
    health(&mut reg, p);
    reg
}

/// The agent's own health: loss, events, the model's size, reconciliations.
fn health(reg: &mut Registry, p: &Picture) {
    let lost = &p.report.lost_events;
    let m = &p.report.model;
    counter(
        reg,
        "portwatch_events_lost",
        "Events that never reached the model (ring buffer full, skipped program runs, \
         undecodable records); any increase means counts may be low until the next \
         reconciliation",
        lost.total,
    );
    let by_kind = counter_family(
        reg,
        "portwatch_events_lost_by_kind",
        "portwatch_events_lost_total broken down by what was lost",
    );
    for (kind, v) in [
        ("state", lost.state),
        ("call", lost.call),
        ("timewait", lost.timewait),
        ("decode_error", lost.decode_errors),
        ("skipped_state", lost.skipped_state),
        ("skipped_call", lost.skipped_calls),
        ("untracked_call", lost.untracked_calls),
    ] {
        by_kind
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc_by(v);
    }
    counter(
        reg,
        "portwatch_events_received",
        "Records received from the kernel's ring buffer",
        p.events_received,
    );
    counter(
        reg,
        "portwatch_events",
        "Events applied to the model",
        m.events,
    );
    gauge(
        reg,
        "portwatch_model_sockets",
        "Sockets the model tracks",
        int(m.sockets_tracked),
    );
    counter(
        reg,
        "portwatch_model_sockets_evicted",
        "Sockets dropped from the model because it was full",
        m.sockets_evicted,
    );
    gauge(
        reg,
        "portwatch_model_socket_table_bytes",
        "Heap bytes of the model's socket table",
        int(m.socket_table_bytes),
    );
    counter(
        reg,
        "portwatch_reconciliations",
        "Reconciliations of the model against sock_diag",
        m.reconciliations,
    );
    counter(
        reg,
        "portwatch_reconcile_corrections",
        "Sockets reconciliation added, removed or fixed (the model had drifted)",
        m.corrections,
    );
    gauge_f(
        reg,
        "portwatch_refresh_duration_seconds",
        "How long building the last picture of the model took (once per --refresh)",
        p.build_seconds,
    );
    let info = gauge_family(reg, "portwatch_build_info", "The running portwatch version");
    info.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
        .set(1);
}

/// One picture's exposition, in both formats.
pub struct Rendered {
    pub openmetrics: String,
    pub text: String,
}

/// The exposition of one picture.
pub fn render(p: &Picture) -> Rendered {
    let reg = registry(p);
    let mut openmetrics = String::with_capacity(16 << 10);
    let mut txt = String::with_capacity(16 << 10);
    // Writing into a String cannot fail.
    let _ = text::encode(&mut openmetrics, &reg);
    let _ = prometheus_text::encode(&mut txt, &reg);
    Rendered {
        openmetrics,
        text: txt,
    }
}

/// Whether a request's `Accept` header asks for OpenMetrics (as Prometheus does).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

#[cfg(test)]
mod pod_label_tests {
    use crate::{
        event::Task,
        model::{CgroupWorkload, Model, testutil::*},
        workload::cgroup,
    };

    #[test]
    fn pools_owned_by_a_pod_carry_its_namespace_and_name_never_the_container_id() {
        let mut m = Model::default();
        let t = Task {
            cgroup: 77,
            ..task(300, "api")
        };
        let mut s = Seq::new();
        s.connect(t, 0x20, "10.0.0.5", 40000, "10.1.2.3:443")
            .run(&mut m);
        let mut w = cgroup::parse_path(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/cri-containerd-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope",
        );
        let p = w.pod.as_mut().unwrap();
        p.namespace = Some("shop".into());
        p.name = Some("checkout-7f9c-x2x".into());
        m.learn_workloads(&[CgroupWorkload {
            cgroup: 77,
            workload: w,
        }]);
        let pools = m.pools(s.now(), 10);
        let l = super::pod_labels(&pools[0]);
        assert_eq!(
            l,
            vec![
                ("namespace", "shop".to_string()),
                ("pod", "checkout-7f9c-x2x".to_string())
            ]
        );
        assert!(!l.iter().any(|(_, v)| v.contains("abddff03dfd7")));
    }
}
