//! Fixture models built with the model's test DSL, and findings built by hand (the explain
//! rules are written elsewhere): a shell loop of `curl`s that runs a 10-port pool out of ports
//! through TIME_WAIT, next to a healthy database client and an nginx that leaks CLOSE_WAIT.

use std::collections::BTreeMap;

use ratatui::{Terminal, backend::TestBackend};

use crate::{
    event::{CallKind, Event, TwOp},
    explain::finding::{Cause, Finding, Remedy, Severity},
    model::{Model, PoolKey, testutil::*},
    snapshot::{self, Limits, LostEvents, Snapshot},
    tui::{
        App, Options, ViewData,
        data::{DrillTarget, ReplayInfo, SourceInfo},
    },
};

pub const CURL_DST: &str = "10.0.0.5:443";

/// The incident: the model, every event it was fed, the time of the last one, and the
/// snapshot after each step (once a second, as a session refreshes), the last one included.
pub struct Incident {
    pub model: Model,
    pub events: Vec<Event>,
    pub now: u64,
    pub snapshots: Vec<Snapshot>,
}

impl Incident {
    pub fn curl_pool(&self) -> PoolKey {
        PoolKey {
            netns: NETNS,
            src: "10.0.0.1".parse().unwrap(),
            dst: addr(CURL_DST),
        }
    }
}

/// Applies what `s` holds, keeping a copy of the events, then ticks the model at `s.now()` and
/// takes a snapshot there.
fn step(s: &mut Seq, m: &mut Model, all: &mut Vec<Event>, snaps: &mut Vec<Snapshot>) {
    all.extend_from_slice(&s.events);
    s.run(m);
    m.tick(s.now());
    snaps.push(screen_snapshot(m, s.now()));
}

/// A snapshot as the console takes it, with the findings written out here, so that the
/// screens do not change with the rules' words.
fn screen_snapshot(m: &Model, now: u64) -> Snapshot {
    let mut snapshot = Snapshot::build(
        m,
        now,
        &Limits::screen(50),
        LostEvents::default(),
        Vec::new(),
    );
    snapshot.findings = findings();
    snapshot
}

pub fn incident() -> Incident {
    let mut m = Model::default();
    m.set_sysctls(NETNS, sysctls((40000, 40009), &[], 0));
    let mut all = Vec::new();
    let mut snaps = Vec::new();
    let mut s = Seq::new();

    // nginx on :443: three clients, two connections the peer closed and nginx never did.
    let nginx = task(800, "nginx");
    s.listen(nginx, 0x800, "0.0.0.0:443");
    let peers = [
        ("10.1.0.7:51000", 0x901),
        ("10.1.0.7:51001", 0x902),
        ("10.1.0.7:51002", 0x903),
        ("10.1.0.8:52000", 0x904),
        ("10.1.0.9:53000", 0x905),
    ];
    for (remote, sk) in peers {
        s.accept(nginx, sk, "10.0.0.1:443", remote);
    }
    for (remote, sk) in &peers[..2] {
        s.state(
            swapper(),
            *sk,
            "10.0.0.1:443",
            remote,
            Established,
            CloseWait,
        );
    }
    // A database client with three long-lived connections.
    let java = task(2100, "java");
    for (i, port) in (40000..40003u16).enumerate() {
        s.connect(java, 0x700 + i as u64, "10.0.0.1", port, "10.0.0.9:5432");
    }
    step(&mut s, &mut m, &mut all, &mut snaps);

    // A shell loop: one curl a second, each closing first, so each port sits in TIME_WAIT.
    for (i, port) in (40000..40010u16).enumerate() {
        s.advance(SEC);
        let curl = child_task(3001 + i as u32, 1500, "curl");
        let (sk, tw) = (0x1000 + i as u64, 0x2000 + i as u64);
        let local = format!("10.0.0.1:{port}");
        s.connect(curl, sk, "10.0.0.1", port, CURL_DST)
            .active_close(curl, sk, tw, &local, CURL_DST)
            // The server's FIN: the timer is re-armed for TIME_WAIT.
            .tw(tw, &local, CURL_DST, TwOp::Cancel, FinWait2, 59 * 250)
            .tw(tw, &local, CURL_DST, TwOp::Start, TimeWait, 60 * 250);
        step(&mut s, &mut m, &mut all, &mut snaps);
    }
    // Out of ports: the next curls fail.
    for i in 0..3u32 {
        s.advance(SEC);
        let curl = child_task(3011 + i, 1500, "curl");
        s.exhausted(curl, 0x3000 + u64::from(i), "10.0.0.1", CURL_DST);
        step(&mut s, &mut m, &mut all, &mut snaps);
    }
    s.advance(SEC / 2);
    s.call_err(
        task(900, "haproxy"),
        CallKind::Bind,
        None,
        "0.0.0.0:443",
        libc::EADDRINUSE,
    )
    .call_err(
        task(2200, "python3"),
        CallKind::Connect,
        None,
        "10.0.0.12:8080",
        libc::ECONNREFUSED,
    );
    step(&mut s, &mut m, &mut all, &mut snaps);
    Incident {
        model: m,
        events: all,
        now: s.now(),
        snapshots: snaps,
    }
}

fn remedy(id: &str, helps: bool, action: &str, why: &str) -> Remedy {
    Remedy {
        id: id.into(),
        action: action.into(),
        helps,
        why: why.into(),
        source: None,
    }
}

/// What the explain rules would say about [`incident`].
pub fn findings() -> Vec<Finding> {
    let churn = Finding {
        cause: Cause::TimeWaitChurn,
        severity: Severity::Critical,
        issue: None,
        title: "TIME_WAIT churn: out of source ports toward 10.0.0.5:443".into(),
        ppid: Some(1),
        pid: Some(3013),
        comm: Some("curl".into()),
        exe: None,
        process_count: 13,
        workload: None,
        netns: NETNS,
        src_ip: Some("10.0.0.1".parse().unwrap()),
        dst: Some(CURL_DST.parse().unwrap()),
        in_use: Some(10),
        capacity: Some(10),
        states: BTreeMap::from([("TIME_WAIT".into(), 10)]),
        errors: BTreeMap::from([("EADDRNOTAVAIL".into(), 3)]),
        rate_per_s: Some(1.0),
        eta_s: Some(0.0),
        evidence: "curl closes first, so each connection leaves its port in TIME_WAIT for 60 s: \
                   10 of 10 ports toward 10.0.0.5:443 are held and connect() failed 3 times \
                   with EADDRNOTAVAIL."
            .into(),
        remedies: vec![
            remedy(
                "connection_pooling",
                true,
                "Reuse connections (HTTP keep-alive, one client for many requests)",
                "one connection instead of one per second: nothing left in TIME_WAIT.",
            ),
            remedy(
                "widen_port_range",
                true,
                "sysctl -w net.ipv4.ip_local_port_range=\"10000 65000\"",
                "55 000 ports instead of 10: at 1 new/s TIME_WAIT holds about 60.",
            ),
            remedy(
                "tcp_tw_reuse",
                true,
                "sysctl -w net.ipv4.tcp_tw_reuse=1",
                "connect() may take over a TIME_WAIT 4-tuple older than 1 s (timestamps on).",
            ),
            remedy(
                "tcp_fin_timeout",
                false,
                "sysctl -w net.ipv4.tcp_fin_timeout=15",
                "bounds orphaned FIN_WAIT2 only; TIME_WAIT lasts 60 s whatever it says.",
            ),
        ],
        nat_netns: None,
        episode: None,
        score: 3.0,
    };
    let leak = Finding {
        cause: Cause::CloseWaitLeak,
        severity: Severity::Warning,
        issue: None,
        title: "CLOSE_WAIT leak: nginx never closes connections the peer closed".into(),
        ppid: Some(1),
        pid: Some(800),
        comm: Some("nginx".into()),
        exe: None,
        process_count: 1,
        workload: None,
        netns: NETNS,
        src_ip: None,
        dst: Some("10.0.0.1:443".parse().unwrap()),
        in_use: None,
        capacity: None,
        states: BTreeMap::from([("CLOSE_WAIT".into(), 2), ("ESTABLISHED".into(), 3)]),
        errors: BTreeMap::new(),
        rate_per_s: None,
        eta_s: None,
        evidence: "2 connections on :443 were closed by 10.1.0.7 and never by nginx \
                   (CLOSE_WAIT)."
            .into(),
        remedies: vec![remedy(
            "fix_close_path",
            true,
            "Find the code path in nginx that drops a connection without close()",
            "CLOSE_WAIT ends only when the process closes its socket.",
        )],
        nat_netns: None,
        episode: None,
        score: 2.0,
    };
    let config = Finding {
        cause: Cause::Config,
        severity: Severity::Info,
        issue: Some(crate::explain::finding::ConfigIssue::ListenersInRange),
        title: "Configuration: ip_local_port_range leaves 10 ports per destination".into(),
        ppid: None,
        pid: None,
        comm: None,
        exe: None,
        process_count: 0,
        workload: None,
        netns: NETNS,
        src_ip: None,
        dst: None,
        in_use: None,
        capacity: Some(10),
        states: BTreeMap::new(),
        errors: BTreeMap::new(),
        rate_per_s: None,
        eta_s: None,
        evidence: "ip_local_port_range 40000–40009 leaves 10 ports per destination (default: \
                   28 232)."
            .into(),
        remedies: vec![remedy(
            "widen_port_range",
            true,
            "sysctl -w net.ipv4.ip_local_port_range=\"32768 60999\"",
            "the kernel default.",
        )],
        nat_netns: None,
        episode: None,
        score: 1.0,
    };
    vec![churn, leak, config]
}

pub fn view(inc: &Incident, source: SourceInfo) -> ViewData {
    ViewData {
        snapshot: screen_snapshot(&inc.model, inc.now),
        source,
        drill: None,
    }
}

pub fn replay_source() -> SourceInfo {
    SourceInfo::Replay(ReplayInfo {
        file: "incident-2026-11-26.pwrec".into(),
        position_s: 14.0,
        duration_s: Some(600.0),
        speed: 2.0,
        paused: true,
        ended: false,
    })
}

/// The App after the incident, in colour or not, live: its timeline sampled every second of
/// the incident (the charts' history; sampled alone, so that the selection starts at the
/// end's most urgent rows, as in an App opened then), then the incident's end.
pub fn app_with(color: bool) -> (App, Incident) {
    let inc = incident();
    let mut app = App::new(Options {
        color,
        ..Options::default()
    });
    app.push_events(&inc.events);
    for snapshot in &inc.snapshots {
        app.sample(&ViewData {
            snapshot: snapshot.clone(),
            source: SourceInfo::Live,
            drill: None,
        });
    }
    app.update(view(&inc, SourceInfo::Live));
    (app, inc)
}

pub fn app() -> App {
    app_with(true).0
}

/// Answers the App's drill-down request the way the session does.
pub fn answer_drill(app: &mut App, inc: &Incident) {
    let mut v = view(inc, app.source().clone());
    v.drill = app
        .drill_request()
        .map(|t: DrillTarget| snapshot::drill(&inc.model, &t, inc.now));
    app.update(v);
}

/// The screen as text.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    terminal(app, w, h).backend().to_string()
}

pub fn terminal(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| crate::tui::draw(f, app)).unwrap();
    t
}
