//! The console on a recording: a small incident written with `record::Writer` (the inputs a
//! real recording carries: start-up snapshot with the namespace's sysctls, events, loss
//! counters), played into the App through `Player`, with the replay keys going through
//! `on_key` as in the terminal loop. Time is passed in: no clock, no sleeps.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::{Terminal, backend::TestBackend};

use super::{Frames, Player, Source};
use crate::{
    collect::Counters,
    explain::finding::{Cause, Severity},
    model::{Input, NetnsSnapshot, Stamped, SystemSnapshot, testutil::*},
    record::{Host, Options, Writer},
    tui::{self, Action, App, SourceInfo, on_key},
};

const SRC: &str = "10.0.0.1";
const DST: &str = "10.0.0.5:443";
/// Connections per second, and for how long: 10 ports run out after 2 s.
const RATE: u64 = 5;
const SECS: u64 = 20;

/// Writes the incident; returns the recording's start (CLOCK_MONOTONIC ns).
fn write_recording(path: &std::path::Path) -> u64 {
    let mut s = Seq::new();
    let start = s.now();
    let gw = task(300, "gateway");
    let mut sk = 0x1000;
    // Even ports first, then odd, as connect() picks them; none expires within 20 s.
    let mut free: Vec<u16> = (40000..=40009)
        .step_by(2)
        .chain((40001..=40009).step_by(2))
        .collect();
    free.reverse();
    for _ in 0..RATE * SECS {
        s.advance(SEC / RATE);
        sk += 0x40;
        match free.pop() {
            Some(port) => {
                let local = ip_port(SRC, port);
                s.connect(gw, sk, SRC, port, DST)
                    .active_close(gw, sk, sk + 1, &local, DST)
                    .tw(
                        sk + 1,
                        &local,
                        DST,
                        crate::event::TwOp::Start,
                        TimeWait,
                        60 * 250,
                    );
            }
            None => {
                s.exhausted(gw, sk, SRC, DST);
            }
        }
    }
    let host = Host {
        start_mono_ns: start,
        ..Host::current()
    };
    let mut w = Writer::create(path, &host, Options::default()).unwrap();
    let snap = SystemSnapshot {
        taken_at_ns: start,
        namespaces: vec![NetnsSnapshot {
            netns: NETNS,
            sysctls: Some(sysctls((40000, 40009), &[], 0)),
            sockets: Vec::new(),
        }],
    };
    w.input(&Input::Startup(Stamped::new(start, snap))).unwrap();
    for e in &s.events {
        w.push(e).unwrap();
    }
    let end = s.events.last().unwrap().ts_ns;
    w.input(&Input::Loss(Box::new(Stamped::new(
        end,
        Counters::default(),
    ))))
    .unwrap();
    w.finish().unwrap();
    start
}

struct Console {
    player: Player,
    app: App,
    frames: Frames,
    /// The wall clock the test moves.
    now: Instant,
}

impl Console {
    fn open(path: &std::path::Path) -> Console {
        let now = Instant::now();
        let mut player = Player::open(path, 1.0, now).unwrap();
        player.wait_for_length();
        let mut c = Console {
            player,
            app: App::new(tui::Options {
                color: false,
                ..Default::default()
            }),
            frames: Frames::default(),
            now,
        };
        c.refresh();
        c
    }

    /// One frame `secs` of wall time after the last.
    fn wait(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        self.refresh();
    }

    fn refresh(&mut self) {
        let mut out = Vec::new();
        self.player.tick_at(self.now, &mut out).unwrap();
        self.app.push_events(&out);
        let v = self.frames.view(&self.player, &self.app, self.now);
        self.app.update(v);
    }

    /// A key through `on_key`, replay actions to the player, as the terminal loop does.
    fn press(&mut self, c: char) -> Action {
        let a = on_key(&mut self.app, KeyEvent::from(KeyCode::Char(c)));
        if matches!(a, Action::TogglePause | Action::Speed(_) | Action::Seek(_)) {
            let mut out = Vec::new();
            self.player.control_at(a, self.now, &mut out).unwrap();
            self.frames.invalidate();
            self.refresh();
        }
        a
    }

    fn info(&self) -> tui::ReplayInfo {
        match self.app.source() {
            SourceInfo::Replay(r) => r.clone(),
            SourceInfo::Live => panic!("a replay shows as live"),
        }
    }

    fn screen(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| tui::draw(f, &self.app)).unwrap();
        let buf = t.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn churn_finding(p: &Player) -> Option<crate::explain::finding::Finding> {
    crate::explain::explain(p.model(), p.now_ns())
        .into_iter()
        .find(|f| f.cause == Cause::TimeWaitChurn)
}

#[test]
fn replay_shows_the_finding_and_obeys_pause_speed_and_seek() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incident.pwr");
    write_recording(&path);
    let mut c = Console::open(&path);
    let i = c.info();
    assert_eq!(
        (i.position_s, i.speed, i.paused, i.ended),
        (0.0, 1.0, false, false)
    );
    let dur = i.duration_s.expect("length scanned");
    assert!((dur - SECS as f64).abs() < 0.01, "duration {dur}");
    assert!(churn_finding(&c.player).is_none(), "nothing happened yet");

    // Real time: 5 s in, the 10 ports have run out (2 s) and connect() fails.
    c.wait(5.0);
    assert!((c.info().position_s - 5.0).abs() < 1e-6, "{:?}", c.info());
    let s = c.screen();
    let line = s
        .lines()
        .find(|l| l.contains("CRIT"))
        .unwrap_or_else(|| panic!("{s}"));
    for want in ["time_wait_churn", "gateway", DST, "10/10"] {
        assert!(line.contains(want), "{want} missing from {line}\n{s}");
    }
    assert!(s.contains("▶ replay"), "{s}");

    // Pause: the clock stops.
    assert_eq!(c.press('p'), Action::TogglePause);
    c.wait(3.0);
    let i = c.info();
    assert!(i.paused && (i.position_s - 5.0).abs() < 1e-6, "{i:?}");
    assert!(c.screen().contains("PAUSED"));
    c.press('p');
    assert!(!c.info().paused);

    // Faster: ×2 from now on.
    assert_eq!(c.press('+'), Action::Speed(2.0));
    c.wait(1.0);
    let i = c.info();
    assert!(i.speed == 2.0 && (i.position_s - 7.0).abs() < 1e-6, "{i:?}");

    // Seek forward 10 s, then back 10 s: the same picture as when first played there.
    let at_7 = churn_finding(&c.player).unwrap();
    assert_eq!(at_7.severity, Severity::Critical);
    c.press(']');
    assert!((c.info().position_s - 17.0).abs() < 1e-6, "{:?}", c.info());
    let at_17 = churn_finding(&c.player).unwrap();
    assert!(at_17.errors["EADDRNOTAVAIL"] > at_7.errors["EADDRNOTAVAIL"] + 40);
    c.press('[');
    assert!((c.info().position_s - 7.0).abs() < 1e-6, "{:?}", c.info());
    assert_eq!(churn_finding(&c.player).unwrap(), at_7);

    // Back past the start: position 0, the model rebuilt from nothing.
    c.press('{');
    assert_eq!(c.info().position_s, 0.0);
    assert!(churn_finding(&c.player).is_none());
    assert!(!c.screen().contains("CRIT"));

    // Forward past the end: the replay ends there and stays.
    c.press('}');
    c.wait(10.0);
    let i = c.info();
    assert!(i.ended, "{i:?}");
    assert!((i.position_s - dur).abs() < 0.01, "{i:?}");
    assert!(c.screen().contains("CRIT"));
    // A seek back from the end lands 10 s before it.
    c.press('[');
    let i = c.info();
    assert!(
        !i.ended && (i.position_s - (dur - 10.0)).abs() < 0.01,
        "{i:?}"
    );
}
