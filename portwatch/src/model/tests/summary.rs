//! The owned tables: stable names for JSON/TUI, urgency order.

use crate::{
    event::CallKind,
    model::{Model, testutil::*},
};

#[test]
fn json_exposes_pools_processes_sysctls() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[(40005, 40005)], 2));
    let mut s = Seq::new();
    s.connect(
        task(7, "client"),
        0x20,
        "127.0.0.1",
        40000,
        "127.0.0.1:8080",
    )
    .exhausted(task(7, "client"), 0x21, "127.0.0.1", "127.0.0.1:8080")
    .run(&mut m);
    let t = m.tables(s.now());
    let v = serde_json::json!({
        "pools": t.pools,
        "processes": t.processes,
        "sysctls": t.sysctls,
        "failures": t.failures,
        "counters": t.counters,
        "totals": t.totals,
    });
    let pool = &v["pools"][0];
    assert_eq!(pool["dst"], "127.0.0.1:8080");
    assert_eq!(pool["states"]["ESTABLISHED"], 1);
    assert_eq!(pool["capacity"], 9);
    assert_eq!(pool["eaddrnotavail"], 1);
    assert_eq!(pool["owners"][0]["owner"]["comm"], "client");
    assert_eq!(v["processes"][0]["pid"], 7);
    assert_eq!(v["processes"][0]["outbound"][0]["dst"], "127.0.0.1:8080");
    assert_eq!(v["sysctls"][0]["port_range"][0], 40000);
    assert_eq!(v["sysctls"][0]["assumed"], false);
    assert_eq!(v["sysctls"][0]["capacity"]["reserved"], 1);
    assert_eq!(v["failures"]["by_errno"][0]["errno"], "EADDRNOTAVAIL");
    assert_eq!(v["failures"]["recent"][0]["sk"], "0x21");
    assert_eq!(v["counters"]["sockets_tracked"], 1);
    assert_eq!(v["totals"]["all"]["ESTABLISHED"], 1);
}

#[test]
fn failing_pool_ranks_above_a_fuller_quiet_one() {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut s = Seq::new();
    for p in 40000..40008u16 {
        s.connect(task(1, "a"), u64::from(p), "127.0.0.1", p, "127.0.0.1:80");
    }
    s.connect(task(2, "b"), 0x20, "127.0.0.1", 40000, "127.0.0.1:81")
        .exhausted(task(2, "b"), 0x21, "127.0.0.1", "127.0.0.1:81")
        .call_err(
            task(3, "c"),
            CallKind::Bind,
            None,
            "0.0.0.0:80",
            libc::EADDRINUSE,
        )
        .run(&mut m);
    let pools = m.pools(s.now(), 10);
    assert_eq!(pools[0].dst, addr("127.0.0.1:81"));
    assert_eq!(pools[1].dst, addr("127.0.0.1:80"));
    assert!(pools[1].effective_utilisation > pools[0].effective_utilisation);
    // 70 s later the failure is no longer recent.
    let later = s.now() + 70 * SEC;
    assert_eq!(m.pools(later, 10)[0].dst, addr("127.0.0.1:80"));
    assert_eq!(m.failures(10).by_errno.len(), 2);
}
