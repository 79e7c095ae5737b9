//! Snapshot merge and reconciliation: corrections are made, recorded, and counted.

use crate::{
    event::TwOp,
    model::{CorrectionScope, Model, PoolKey, testutil::*},
};

const DST: &str = "10.0.0.9:80";

fn key() -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: "10.0.0.1".parse().unwrap(),
        dst: addr(DST),
    }
}

fn est(port: u16) -> crate::model::SnapSocket {
    snap_sock(&format!("10.0.0.1:{port}"), DST, Established, None)
}

#[test]
fn identical_snapshot_needs_no_correction() {
    let mut m = Model::default();
    let snap = snapshot(
        100 * SEC,
        Some(sysctls((40000, 40999), &[], 2)),
        vec![est(40000), est(40001)],
    );
    m.load_snapshot(&snap, 100 * SEC);
    assert!(
        !m.sysctls_for(NETNS).unwrap().1,
        "sysctls from the snapshot are not assumed"
    );
    assert_eq!(m.pool(&key(), 100 * SEC).unwrap().capacity, 1000);
    let c = m.reconcile(&snap, 101 * SEC);
    assert_eq!(c, vec![]);
    assert_eq!(m.counters().corrections, 0);
    assert_eq!(m.counters().reconciliations, 1);
    assert_consistent(&m);
}

#[test]
fn missing_and_stale_sockets_are_corrected_and_logged() {
    let mut m = Model::default();
    let mut s = Seq::new();
    // The model saw three connections; one event (a RST) was lost.
    for p in 40000..40003u16 {
        s.connect(task(1, "a"), u64::from(p), "10.0.0.1", p, DST);
    }
    s.run(&mut m);
    let taken = s.now() + SEC;
    // The kernel lists two of them, plus five TIME_WAIT the model never saw.
    let mut socks = vec![est(40000), est(40001)];
    for p in 41000..41005 {
        socks.push(snap_sock(&format!("10.0.0.1:{p}"), DST, TimeWait, None));
    }
    let c = m.reconcile(&snapshot(taken, None, socks), taken);
    let find = |scope: CorrectionScope| {
        c.iter()
            .find(|c| c.scope == scope)
            .map(|c| (c.model, c.kernel))
    };
    assert_eq!(
        find(CorrectionScope::State { state: Established }),
        Some((3, 2))
    );
    assert_eq!(
        find(CorrectionScope::State { state: TimeWait }),
        Some((0, 5))
    );
    assert_eq!(find(CorrectionScope::Pool { pool: key() }), Some((3, 7)));
    assert_eq!(c.len(), 3);
    assert_eq!(
        c[0].to_string(),
        format!("netns {NETNS} ESTABLISHED: model had 3, kernel lists 2 (-1)")
    );
    let p = m.pool(&key(), taken).unwrap();
    assert_eq!((p.states.get(Established), p.states.get(TimeWait)), (2, 5));
    let k = m.counters();
    assert_eq!(
        (k.corrections, k.reconcile_added, k.reconcile_removed),
        (3, 5, 1)
    );
    assert_eq!(m.corrections().count(), 3);
    // The reconciled TIME_WAIT entries are adopted by their timer events.
    s.t = taken + SEC;
    s.tw_expire(0x77, "10.0.0.1:41000", DST).run(&mut m);
    assert_eq!(m.pool(&key(), s.now()).unwrap().states.get(TimeWait), 4);
    assert_eq!(m.counters().odd.tw_unknown, 0);
    assert_consistent(&m);
}

#[test]
fn wrong_state_is_fixed() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "10.0.0.1", 40000, DST)
        .run(&mut m);
    let taken = s.now() + SEC;
    let snap = snapshot(
        taken,
        None,
        vec![snap_sock("10.0.0.1:40000", DST, CloseWait, None)],
    );
    let c = m.reconcile(&snap, taken);
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(m.counters().reconcile_state_fixed, 1);
    let socks = m.pool_sockets(&key(), taken, 10);
    assert_eq!(socks[0].state, CloseWait);
    assert_eq!(
        socks[0].owner.as_ref().map(|o| o.pid),
        Some(1),
        "keeps what the model knew"
    );
    assert_consistent(&m);
}

#[test]
fn changes_after_the_snapshot_are_not_undone() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "a"), 0x20, "10.0.0.1", 40000, DST)
        .run(&mut m);
    let taken = s.now() + MS;
    // After the dump started: one new connection, and the listed one reset.
    s.t = taken + MS;
    s.connect(task(1, "a"), 0x21, "10.0.0.1", 40001, DST)
        .reset(0x20, "10.0.0.1:40000", DST)
        .run(&mut m);
    let snap = snapshot(taken, None, vec![est(40000)]);
    m.reconcile(&snap, s.now());
    let socks = m.pool_sockets(&key(), s.now(), 10);
    assert_eq!(socks.len(), 1);
    assert_eq!(socks[0].local, addr("10.0.0.1:40001"));
    assert_eq!(
        (m.counters().reconcile_added, m.counters().reconcile_removed),
        (0, 0)
    );
    assert_consistent(&m);
}

#[test]
fn bound_sockets_are_kept_when_the_kernel_cannot_list_them() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.bind_ok(task(1, "a"), 0x10, "10.0.0.1:0", 40001)
        .run(&mut m);
    let taken = s.now() + SEC;
    // No BOUND_INACTIVE anywhere in the dump: a kernel before 6.5.
    m.reconcile(&snapshot(taken, None, vec![est(40000)]), taken);
    assert_eq!(m.totals().all.get(BoundInactive), 1);
    // A dump that lists bound sockets is trusted for them.
    let socks = vec![snap_sock(
        "10.0.0.2:40005",
        "0.0.0.0:0",
        BoundInactive,
        Some((2, "b")),
    )];
    let c = m.reconcile(&snapshot(taken, None, socks), taken);
    assert!(c.iter().all(|c| c.scope
        != CorrectionScope::State {
            state: BoundInactive
        }));
    let holders = m.port_holders(NETNS, 40005, taken);
    assert_eq!(holders.len(), 1);
    assert_eq!(m.port_holders(NETNS, 40001, taken).len(), 0);
    assert_eq!(m.totals().all.get(BoundInactive), 1);
    assert_consistent(&m);
}

#[test]
fn snapshot_fin_wait2_can_turn_out_to_be_a_timewait_socket() {
    let mut m = Model::default();
    let snap = snapshot(
        10 * SEC,
        None,
        vec![snap_sock("10.0.0.1:40000", DST, FinWait2, None)],
    );
    m.load_snapshot(&snap, 10 * SEC);
    let mut s = Seq::new();
    s.tw(0x99, "10.0.0.1:40000", DST, TwOp::Cancel, FinWait2, 100)
        .tw(0x99, "10.0.0.1:40000", DST, TwOp::Start, TimeWait, 15000)
        .run(&mut m);
    let socks = m.pool_sockets(&key(), s.now(), 10);
    assert_eq!(socks.len(), 1);
    assert!(socks[0].timewait);
    assert_eq!(socks[0].state, TimeWait);
    assert_eq!(m.totals().per_netns[0].timewait_sockets, 1);
    assert_consistent(&m);
}

#[test]
fn close_sockets_in_a_dump_are_ignored_and_overflow_growth_is_shown() {
    let mut m = Model::default();
    let mut sys = sysctls((40000, 40999), &[], 2);
    sys.tw_overflow = 100;
    let snap = snapshot(
        10 * SEC,
        Some(sys.clone()),
        vec![snap_sock("10.0.0.1:40000", DST, Close, None)],
    );
    m.load_snapshot(&snap, 10 * SEC);
    assert_eq!(m.totals().all.total(), 0);
    sys.tw_overflow = 130;
    let snap = snapshot(
        20 * SEC,
        Some(sys),
        vec![snap_sock("10.0.0.1:40000", DST, Close, None)],
    );
    assert_eq!(m.reconcile(&snap, 20 * SEC), vec![]);
    let s = m.sysctls().into_iter().find(|n| n.netns == NETNS).unwrap();
    assert_eq!(s.tw_overflow_since_start, 30);
}

/// Non-blocking connects that never complete: SYN_SENT is traced before the port is chosen.
/// Whether or not the model learnt the ports (from `EINPROGRESS`), a reconciliation that
/// lists the sockets with their ports and no owner keeps the owner the model knew.
#[test]
fn reconciliation_keeps_the_owner_of_connects_stuck_in_syn_sent() {
    for learn in [true, false] {
        let mut m = Model::default();
        let mut s = Seq::new();
        for p in 40000..40010u16 {
            let sk = 0x100 + u64::from(p);
            if learn {
                s.connect_in_progress(task(7, "client"), sk, "10.0.0.1", p, DST);
            } else {
                s.state(task(7, "client"), sk, "10.0.0.1:0", DST, Close, SynSent);
            }
        }
        s.run(&mut m);
        let socks = m.pool_sockets(&key(), s.now(), 20);
        assert_eq!(socks.len(), 10);
        let learnt = socks.iter().filter(|s| s.local.port() != 0).count();
        assert_eq!(learnt, if learn { 10 } else { 0 }, "learn={learn}");
        let taken = s.now() + SEC;
        let listed = (40000..40010)
            .map(|p| snap_sock(&format!("10.0.0.1:{p}"), DST, SynSent, None))
            .collect();
        let c = m.reconcile(&snapshot(taken, None, listed), taken);
        assert_eq!(c, vec![], "learn={learn}");
        let k = m.counters();
        assert_eq!((k.reconcile_added, k.reconcile_removed), (0, 0));
        let p = m.pool(&key(), taken).unwrap();
        assert_eq!(p.owners.len(), 1, "{:?}", p.owners);
        assert_eq!(p.owners[0].owner.as_ref().map(|o| o.pid), Some(7));
        assert_eq!(p.owners[0].total, 10);
        let socks = m.pool_sockets(&key(), taken, 20);
        assert!(socks.iter().all(|s| s.local.port() != 0), "{socks:?}");
        // The next transition of each (here a timeout) finds it by its kernel address.
        s.t = taken + SEC;
        for p in 40000..40010u16 {
            let local = format!("10.0.0.1:{p}");
            s.state(swapper(), 0x100 + u64::from(p), &local, DST, SynSent, Close);
        }
        s.run(&mut m);
        assert_eq!(m.pool(&key(), s.now()).unwrap().in_use, 0);
        assert_consistent(&m);
    }
}
