//! The Pools tab of a NAT router whose masquerade rule is out of its ten ports: the NAT pool
//! under the pools, with its capacity from the rule, conntrack's drops and the client behind
//! it (the model's NAT unit tests' readings, fed as the session feeds them).

use crossterm::event::{KeyCode, KeyEvent};

use super::fixtures::screen;
use crate::{
    model::{
        Input,
        nat::tests::{pod, reading},
        testutil::SEC,
    },
    snapshot::{Limits, LostEvents, Snapshot},
    tui::{App, Options, SourceInfo, ViewData, on_key},
};

#[test]
fn a_full_nat_pool_shows_under_the_pools() {
    let mut m = pod();
    m.feed(&Input::Conntrack(Box::new(reading(2 * SEC, 10, 0, 0))));
    m.feed(&Input::Conntrack(Box::new(reading(3 * SEC, 10, 0, 5))));
    let mut app = App::new(Options::default());
    app.update(ViewData {
        snapshot: Snapshot::build(
            &m,
            3 * SEC,
            &Limits::screen(50),
            LostEvents::default(),
            Vec::new(),
        ),
        source: SourceInfo::Live,
        drill: None,
    });
    on_key(&mut app, KeyEvent::from(KeyCode::Char('2')));
    for (w, h) in [(80, 24), (200, 50)] {
        let s = screen(&app, w, h);
        let row = (s.lines())
            .skip_while(|l| !l.contains("NAT pools"))
            .find(|l| l.contains("198.18.2.2:80"))
            .unwrap_or_else(|| panic!("no NAT pool row at {w}×{h}:\n{s}"));
        for want in ["10/10", "100%", "OUT", " 5"] {
            assert!(row.contains(want), "{want} missing at {w}×{h}: {row}");
        }
        if w >= 100 {
            assert!(row.contains("python3(7) 198.18.1.2"), "{row}");
        }
        insta::assert_snapshot!(format!("nat_pools_{w}x{h}"), s);
    }
}
