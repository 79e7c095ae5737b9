//! Configuration findings, per namespace and issue.

use super::{assert_sound, helps, sim::Sim};
use crate::{
    explain::{Cause, ConfigIssue, Finding, Severity, explain},
    model::{Sysctls, testutil::*},
};

fn config(fs: &[Finding], issue: ConfigIssue) -> Option<&Finding> {
    fs.iter()
        .find(|f| f.cause == Cause::Config && f.issue == Some(issue))
}

#[test]
fn same_parity_range_ends() {
    let sim = Sim::range(40000, 50000, 2);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert_eq!(fs.len(), 1, "{fs:#?}");
    let f = config(&fs, ConfigIssue::RangeParity).unwrap();
    assert_eq!((f.severity, f.netns), (Severity::Info, NETNS));
    assert!(
        f.evidence
            .contains("scans only 10,000 of them, skipping 40000 or 50000"),
        "{}",
        f.evidence
    );
    assert_eq!(f.capacity, Some(10001));
    assert!(
        f.remedies[0].action.contains("40000 50001"),
        "{:?}",
        f.remedies
    );
    // The default range (32768–60999) has ends of opposite parity: nothing to say.
    assert!(explain(&Sim::default_range().m, 0).is_empty());
}

#[test]
fn reserved_ports_eating_the_range() {
    let sim = Sim::new(sysctls((40000, 49999), &[(40000, 40999)], 2));
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = config(&fs, ConfigIssue::ReservedPorts).unwrap();
    assert_eq!((f.in_use, f.capacity), (Some(1000), Some(10000)));
    assert_eq!(f.severity, Severity::Info, "no pool under pressure");
    assert_eq!(helps(f, "free_reserved_ports"), Some(true));
    // A small reservation is not worth a finding.
    let sim = Sim::new(sysctls((40000, 49999), &[(40000, 40009)], 2));
    assert!(explain(&sim.m, sim.now()).is_empty());
}

#[test]
fn listeners_in_the_range() {
    let mut sim = Sim::range(40000, 40999, 2);
    for k in 0..60u16 {
        let sk = 0x100 + u64::from(k);
        sim.s
            .listen(task(300, "java"), sk, &ip_port("0.0.0.0", 40001 + 2 * k));
    }
    sim.s.run(&mut sim.m);
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = config(&fs, ConfigIssue::ListenersInRange).unwrap();
    assert_eq!(f.in_use, Some(60));
    assert!(
        f.evidence.contains("java (pid 300) on 0.0.0.0:40001"),
        "{}",
        f.evidence
    );
}

#[test]
fn tw_reuse_2_with_non_loopback_pressure() {
    let mut sim = Sim::range(40000, 40999, 2);
    sim.churn(
        |_| task(2314, "api-gw"),
        "10.0.0.5",
        "10.1.2.3:443",
        25.0,
        20.0,
    );
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = config(&fs, ConfigIssue::TwReuseLoopbackOnly).unwrap();
    assert_eq!(
        f.severity,
        Severity::Warning,
        "one below the critical churn"
    );
    assert_eq!(
        f.dst.map(|d| d.to_string()).as_deref(),
        Some("10.1.2.3:443")
    );
    assert_eq!(helps(f, "tcp_tw_reuse"), Some(true));
    assert!(fs[0].cause == Cause::TimeWaitChurn && fs[0].severity == Severity::Critical);
    // tw_reuse=1 covers it: no config finding, no churn finding.
    let mut sim = Sim::range(40000, 40999, 1);
    sim.churn(
        |_| task(2314, "api-gw"),
        "10.0.0.5",
        "10.1.2.3:443",
        25.0,
        20.0,
    );
    assert!(explain(&sim.m, sim.now()).is_empty());
}

#[test]
fn tw_reuse_without_timestamps() {
    let mut sim = Sim::new(Sysctls {
        timestamps: 0,
        ..sysctls((40000, 40999), &[], 1)
    });
    sim.churn(
        |_| task(2314, "api-gw"),
        "10.0.0.5",
        "10.1.2.3:443",
        25.0,
        20.0,
    );
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    assert!(
        config(&fs, ConfigIssue::TwReuseWithoutTimestamps).is_some(),
        "{fs:#?}"
    );
    let churn = fs.iter().find(|f| f.cause == Cause::TimeWaitChurn).unwrap();
    let reuse = churn
        .remedies
        .iter()
        .find(|r| r.id == "tcp_tw_reuse")
        .unwrap();
    assert!(reuse.action.contains("tcp_timestamps=1"), "{reuse:?}");
}

#[test]
fn tw_bucket_overflow() {
    let sys = Sysctls {
        tw_overflow: 1000,
        ..Sysctls::kernel_defaults()
    };
    let mut sim = Sim::new(sys.clone());
    assert!(
        explain(&sim.m, sim.now()).is_empty(),
        "counted from the first reading"
    );
    sim.m.set_sysctls(
        NETNS,
        Sysctls {
            tw_overflow: 1500,
            ..sys
        },
    );
    let fs = explain(&sim.m, sim.now());
    assert_sound(&fs);
    let f = config(&fs, ConfigIssue::TwBucketOverflow).unwrap();
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.evidence
            .starts_with("500 connections closed without TIME_WAIT"),
        "{}",
        f.evidence
    );
    assert_eq!(helps(f, "tcp_fin_timeout"), Some(false));
}
