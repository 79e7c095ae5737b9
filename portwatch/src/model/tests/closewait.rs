//! CLOSE_WAIT by owner: counts, roles, ages and recent growth.

use crate::model::{Model, testutil::*};

#[test]
fn close_wait_is_grouped_by_owner_with_ages() {
    let mut m = Model::default();
    let app = task(10, "app");
    let srv = task(20, "srv");
    let mut s = Seq::new();
    s.listen(srv, 0x1, "0.0.0.0:8080");
    // Two outbound connections whose peer closed long ago, one recently.
    for (sk, port) in [(0x10u64, 40000u16), (0x11, 40002)] {
        let local = ip_port("10.0.0.1", port);
        s.connect(app, sk, "10.0.0.1", port, "10.0.0.9:5432").state(
            swapper(),
            sk,
            &local,
            "10.0.0.9:5432",
            Established,
            CloseWait,
        );
    }
    s.advance(300 * SEC);
    s.connect(app, 0x12, "10.0.0.1", 40004, "10.0.0.9:5432")
        .state(
            swapper(),
            0x12,
            "10.0.0.1:40004",
            "10.0.0.9:5432",
            Established,
            CloseWait,
        );
    // An accepted connection of srv in CLOSE_WAIT, and one closed properly (not counted).
    s.accept(swapper(), 0x20, "10.0.0.1:8080", "10.0.0.7:51000")
        .state(
            swapper(),
            0x20,
            "10.0.0.1:8080",
            "10.0.0.7:51000",
            Established,
            CloseWait,
        )
        .accept(swapper(), 0x21, "10.0.0.1:8080", "10.0.0.7:51002")
        .passive_close(srv, 0x21, "10.0.0.1:8080", "10.0.0.7:51002")
        .advance(10 * SEC)
        .run(&mut m);
    let cw = m.close_wait(s.now(), 10);
    assert_eq!(cw.len(), 2);
    let a = &cw[0];
    assert_eq!(a.owner.as_ref().unwrap().pid, 10);
    assert_eq!(
        (a.count, a.outbound, a.inbound, a.entered_last_60s),
        (3, 3, 0, 1)
    );
    assert!((a.oldest_s - 310.0).abs() < 0.1, "{}", a.oldest_s);
    let (src, dst, n) = a.top_destination.unwrap();
    assert_eq!(
        (src.to_string(), dst, n),
        ("10.0.0.1".into(), addr("10.0.0.9:5432"), 3)
    );
    assert_eq!(a.top_local, None);
    let b = &cw[1];
    assert_eq!(b.owner.as_ref().unwrap().comm.to_string(), "srv");
    assert_eq!((b.count, b.inbound), (1, 1));
    assert_eq!(b.top_local, Some((addr("10.0.0.1:8080"), 1)));
    assert_consistent(&m);
}
