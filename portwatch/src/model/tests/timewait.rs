//! TIME_WAIT from the timewait timer: start, expiry, early end, reuse, re-arm.

use crate::{
    event::TwOp,
    model::{Model, PoolKey, TW_REARM_GRACE_NS, testutil::*},
};

const L: &str = "10.0.0.1:40000";
const R: &str = "10.0.0.9:80";

fn key() -> PoolKey {
    PoolKey {
        netns: NETNS,
        src: "10.0.0.1".parse().unwrap(),
        dst: addr(R),
    }
}

/// A connection closed actively, its TIME_WAIT running (timewait socket 0x99).
fn in_time_wait() -> (Model, Seq) {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "app"), 0x20, "10.0.0.1", 40000, R)
        .state(task(1, "app"), 0x20, L, R, Established, FinWait1)
        .state(swapper(), 0x20, L, R, FinWait1, FinWait2)
        .tw(0x99, L, R, TwOp::Start, TimeWait, 15000)
        .state(swapper(), 0x20, L, R, FinWait2, Close)
        .run(&mut m);
    (m, s)
}

fn tw_count(m: &Model, now: u64) -> u32 {
    m.pool(&key(), now).map_or(0, |p| p.states.get(TimeWait))
}

#[test]
fn start_then_expiry() {
    let (mut m, mut s) = in_time_wait();
    assert_eq!(tw_count(&m, s.now()), 1);
    assert_eq!(m.totals().per_netns[0].timewait_sockets, 1);
    s.advance(59 * SEC);
    m.tick(s.now());
    assert_eq!(
        tw_count(&m, s.now()),
        1,
        "still there before the timer fires"
    );
    s.advance(SEC).tw_expire(0x99, L, R).run(&mut m);
    assert_eq!(tw_count(&m, s.now()), 0);
    let c = m.counters();
    assert_eq!((c.tw_started, c.tw_expired, c.tw_ended_early), (1, 1, 0));
    assert_eq!(m.totals().all.total(), 0);
    assert_consistent(&m);
}

#[test]
fn early_cancel_ends_after_the_grace_without_start() {
    let (mut m, mut s) = in_time_wait();
    s.advance(5 * SEC)
        .tw(0x99, L, R, TwOp::Cancel, TimeWait, 12000)
        .run(&mut m);
    assert_eq!(tw_count(&m, s.now()), 1, "could still be a re-arm");
    m.tick(s.now() + TW_REARM_GRACE_NS);
    assert_eq!(tw_count(&m, s.now()), 0);
    let p = m.pool(&key(), s.now() + TW_REARM_GRACE_NS);
    assert_eq!(p.map(|p| p.closes.tw_ended_early), Some(1));
    let c = m.counters();
    assert_eq!((c.tw_ended_early, c.tw_expired, c.tw_reused), (1, 0, 0));
    assert_consistent(&m);
}

#[test]
fn early_cancel_is_also_confirmed_by_later_events() {
    let (mut m, mut s) = in_time_wait();
    s.tw(0x99, L, R, TwOp::Cancel, TimeWait, 12000)
        .advance(TW_REARM_GRACE_NS)
        .connect(task(2, "other"), 0x40, "10.0.0.1", 40002, R)
        .run(&mut m);
    assert_eq!(tw_count(&m, s.now()), 0);
    assert_eq!(m.counters().tw_ended_early, 1);
    assert_consistent(&m);
}

#[test]
fn rearm_is_cancel_then_start_and_keeps_the_entry() {
    let (mut m, mut s) = in_time_wait();
    s.tw(0x99, L, R, TwOp::Cancel, TimeWait, 12000)
        .tw(0x99, L, R, TwOp::Start, TimeWait, 15000)
        .advance(SEC)
        .run(&mut m);
    m.tick(s.now());
    assert_eq!(tw_count(&m, s.now()), 1);
    let c = m.counters();
    assert_eq!((c.tw_rearmed, c.tw_ended_early, c.tw_started), (1, 0, 1));
    s.advance(60 * SEC).tw_expire(0x99, L, R).run(&mut m);
    assert_eq!(tw_count(&m, s.now()), 0);
    assert_consistent(&m);
}

#[test]
fn fin_wait2_substate_becomes_time_wait_on_rearm() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "app"), 0x20, "10.0.0.1", 40000, R)
        .active_close(task(1, "app"), 0x20, 0x99, L, R)
        .run(&mut m);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!((p.states.get(FinWait2), p.states.get(TimeWait)), (1, 0));
    s.tw(0x99, L, R, TwOp::Cancel, FinWait2, 14000)
        .tw(0x99, L, R, TwOp::Start, TimeWait, 15000)
        .run(&mut m);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!((p.states.get(FinWait2), p.states.get(TimeWait)), (0, 1));
    assert_consistent(&m);
}

#[test]
fn tw_reuse_takeover_is_counted_as_reuse() {
    // tcp_tw_reuse: a new connect() takes the same 4-tuple; the timer is cancelled with time
    // left and the new socket shows up with that port.
    let (mut m, mut s) = in_time_wait();
    s.advance(2 * SEC)
        .state(task(3, "app"), 0x40, "10.0.0.1:0", R, Close, SynSent)
        .tw(0x99, L, R, TwOp::Cancel, TimeWait, 9000)
        .state(swapper(), 0x40, L, R, SynSent, Established)
        .run(&mut m);
    let p = m.pool(&key(), s.now()).unwrap();
    assert_eq!((p.states.get(TimeWait), p.states.get(Established)), (0, 1));
    assert_eq!((p.closes.tw_reused, p.closes.tw_ended_early), (1, 1));
    assert_eq!(m.counters().tw_reused, 1);
    m.tick(s.now() + SEC);
    assert_eq!(m.counters().tw_ended_early, 1, "not counted twice");
    assert_consistent(&m);
}

#[test]
fn start_without_a_live_socket_is_classified_by_tuple() {
    let mut m = Model::default();
    let mut s = Seq::new();
    s.listen(task(100, "srv"), 0x10, "0.0.0.0:8080")
        .tw(
            0x97,
            "10.0.0.1:8080",
            "10.0.0.2:5000",
            TwOp::Start,
            TimeWait,
            15000,
        )
        .tw(0x98, L, R, TwOp::Start, TimeWait, 15000)
        .run(&mut m);
    assert_eq!(m.counters().odd.tw_without_socket, 2);
    assert_eq!(
        m.listeners(10, 10)[0].states.get(TimeWait),
        1,
        "server-side TIME_WAIT"
    );
    assert_eq!(
        tw_count(&m, s.now()),
        1,
        "client-side TIME_WAIT in its pool"
    );
    assert_consistent(&m);
}

#[test]
fn reused_tw_address_ends_the_old_entry() {
    let (mut m, mut s) = in_time_wait();
    s.advance(SEC)
        .tw(0x99, "10.0.0.1:40001", R, TwOp::Start, TimeWait, 15000)
        .run(&mut m);
    assert_eq!(tw_count(&m, s.now()), 1);
    assert_eq!(m.counters().tw_ended_early, 1);
    assert_consistent(&m);
}

/// The kernel re-arms a FIN_WAIT2-substate timer on the peer's FIN without a trace most of the
/// time (same timer-wheel bucket): a local peer's LAST_ACK says the FIN was sent.
#[test]
fn fin_wait2_substate_becomes_time_wait_when_the_local_peer_sends_its_fin() {
    const LOCAL: &str = "127.0.0.1:40000";
    const SERVER: &str = "127.0.0.1:8080";
    let mut m = Model::default();
    let mut s = Seq::new();
    s.connect(task(1, "app"), 0x20, "127.0.0.1", 40000, SERVER)
        .accept(swapper(), 0x30, SERVER, LOCAL)
        .state(swapper(), 0x20, LOCAL, SERVER, SynSent, Established)
        .active_close(task(1, "app"), 0x20, 0x99, LOCAL, SERVER)
        .state(swapper(), 0x30, SERVER, LOCAL, Established, CloseWait)
        .run(&mut m);
    let key = PoolKey {
        netns: NETNS,
        src: "127.0.0.1".parse().unwrap(),
        dst: addr(SERVER),
    };
    let p = m.pool(&key, s.now()).unwrap();
    assert_eq!((p.states.get(FinWait2), p.states.get(TimeWait)), (1, 0));
    s.advance(SEC)
        .state(task(2, "server"), 0x30, SERVER, LOCAL, CloseWait, LastAck)
        .state(swapper(), 0x30, SERVER, LOCAL, LastAck, Close)
        .run(&mut m);
    let p = m.pool(&key, s.now()).unwrap();
    assert_eq!((p.states.get(FinWait2), p.states.get(TimeWait)), (0, 1));
    assert_eq!(m.counters().tw_fin_wait2_ended_by_peer, 1);
    s.advance(60 * SEC)
        .tw_expire(0x99, LOCAL, SERVER)
        .run(&mut m);
    assert_eq!(m.pool(&key, s.now()).map_or(0, |p| p.states.total()), 0);
    assert_consistent(&m);
}
