//! Exact accounting under a churn flood: every transition the generator causes is either
//! received or counted lost — with the default ring at a bounded flood (nothing lost), at the
//! benchmark's minimal churn (as fast as the cores go: losses, if any, all counted), and with a
//! one-page ring and a slow consumer (much lost, all of it counted). Root only.

use std::{sync::Mutex, thread, time::Duration};

use portwatch::{collect::Options, netns::Netns};
use portwatch_lab::churn::{self, ChurnOpts, Closer};
use portwatch_tests::{
    incident::{Recorder, report_file},
    live::{LiveReport, portwatch_release_bin},
    *,
};

/// One flood at a time: they measure the machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// State transitions of one loopback connection whose client closes first and whose server
/// closes after reading EOF: client CLOSE→SYN_SENT→ESTABLISHED→FIN_WAIT1→FIN_WAIT2→CLOSE,
/// server child LISTEN→SYN_RECV→ESTABLISHED→CLOSE_WAIT→LAST_ACK→CLOSE.
const TRANSITIONS_PER_CONNECTION: u64 = 10;
/// The listener's CLOSE→LISTEN and LISTEN→CLOSE.
const LISTENER_TRANSITIONS: u64 = 2;

/// How hard a flood churns.
#[derive(Clone, Copy)]
struct Load {
    /// Client threads and server acceptors (0: one per CPU).
    threads: usize,
    /// Destination ports (a port pool each, so that TIME_WAIT never runs one dry).
    destinations: u32,
    max_connections: u64,
}

/// The benchmark's minimal churn (bench/src/main.rs): a client thread and an acceptor per CPU,
/// connect and close and nothing else, to 16 destinations.
const MINIMAL: Load = Load {
    threads: 0,
    destinations: 16,
    max_connections: 200_000,
};

/// A bounded flood: 3 client threads to one destination, 20,000 connections (~200,000
/// transitions in about a second on a quiet 2-vCPU machine).
const BOUNDED: Load = Load {
    threads: 3,
    destinations: 1,
    max_connections: 20_000,
};

fn flood(
    ring_bytes: u32,
    consumer_delay: Option<Duration>,
    load: Load,
) -> (u64, u64, portwatch::collect::Counters, f64) {
    let ns = Netns::create().unwrap();
    ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
    let tracer = Tracer::start_with_delay(
        Options {
            netns: Some(ns.inode),
            ring_bytes,
            ..Options::default()
        },
        consumer_delay,
    );
    let (caused, secs) = churn_load(&ns, load);
    let n = (caused - LISTENER_TRANSITIONS) / TRANSITIONS_PER_CONNECTION;
    // Let the last ACKs land, then account.
    // Let the last transitions land: with a roomy ring, until every one caused has arrived;
    // with a lossy one, until the namespace has no socket left in a closing state.
    let t0 = std::time::Instant::now();
    let all = tracer.wait_for(Duration::from_secs(10), |ev| {
        states(ev).count() as u64 == caused
    });
    if !all {
        settle_closing(&ns);
    }
    eprintln!("settled after {:?} (all received: {all})", t0.elapsed());
    let (events, c, reader) = tracer.stop_with_reader();
    eprintln!("reader: {reader:?}");
    let received = states(&events).count() as u64;
    eprintln!(
        "flood ring={ring_bytes} delay={consumer_delay:?}: {n} connections in {secs:.2} s = {:.0} transitions/s; \
         received {received}, lost {}, skipped {}, counters {c:?}",
        caused as f64 / secs,
        c.state.lost,
        c.skipped.state
    );
    assert_eq!(c.state.received, received);
    let mut hist = std::collections::BTreeMap::new();
    for (_, s) in states(&events) {
        *hist.entry((s.old, s.new)).or_insert(0u64) += 1;
    }
    eprintln!("transitions received: {hist:?}");
    if c.state.seen - c.state.duplicates + c.skipped.state != caused {
        let ss = ns
            .run(|| {
                std::process::Command::new("ss")
                    .args(["-tan"])
                    .output()
                    .unwrap()
                    .stdout
            })
            .unwrap();
        let ss = String::from_utf8_lossy(&ss);
        let mut by_state = std::collections::BTreeMap::new();
        for l in ss.lines().skip(1) {
            *by_state
                .entry(l.split_whitespace().next().unwrap_or("").to_string())
                .or_insert(0) += 1;
        }
        eprintln!("MISMATCH n={n} caused={caused} hist={hist:?} counters={c:?} ss={by_state:?}");
    }
    (caused, received, c, caused as f64 / secs)
}

#[test]
fn default_ring_loses_nothing_and_counts_every_transition() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (caused, received, c, _) = flood(portwatch::collect::DEFAULT_RING_BYTES, None, BOUNDED);
    assert!(
        caused >= 10_000,
        "the flood made too few connections to mean anything: {caused}"
    );
    // The kernel saw what we caused, except runs it skipped and could not rescue (nested on one
    // CPU; counted), and we received all it saw, less the rare rescued record that repeated
    // the primary's (dropped and counted). One gap remains: in some floods, up to ~0.15 % of
    // the transitions (always an active closer's FIN_WAIT1->FIN_WAIT2 and FIN_WAIT2->CLOSE,
    // with its timewait start, for a batch of connections) reach no program at all: a counter
    // bumped first thing in the primary, before any filter, misses them too, and no
    // recursion miss is counted. Not explained yet; bounded here so that a regression beyond
    // it fails.
    let accounted = c.state.seen - c.state.duplicates + c.skipped.state;
    assert!(
        accounted <= caused,
        "more than caused: {accounted} > {caused}: {c:?}"
    );
    assert!(
        caused - accounted <= caused / 200,
        "{} unaccounted of {caused}: {c:?}",
        caused - accounted
    );
    assert_eq!(c.state.lost, 0, "{c:?}");
    assert_eq!(received + c.state.lost + c.state.duplicates, c.state.seen);
    assert_eq!(
        c.timewait.received + c.timewait.lost + c.timewait.duplicates,
        c.timewait.seen
    );
    assert_eq!(c.decode_errors, 0);
}

/// The minimal churn with the default ring, consumed by the collector inside this test binary
/// (a debug build: on a quiet 2-vCPU machine it fell behind the 425,000-460,000 transitions/s
/// and lost records in one run of two). What must hold whatever the build: every record is
/// received or counted lost. That users' builds lose nothing at this churn is asserted below,
/// on the release `portwatch record` and `portwatch report`.
#[test]
fn minimal_churn_with_the_default_ring_counts_every_loss() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (caused, received, c, rate) = flood(portwatch::collect::DEFAULT_RING_BYTES, None, MINIMAL);
    eprintln!(
        "minimal churn: {rate:.0} transitions/s, {} of {} state records lost",
        c.state.lost, c.state.seen
    );
    assert!(
        caused >= 10_000,
        "too few connections to mean anything: {caused}"
    );
    every_record_accounted(caused, received, &c);
    assert_eq!(c.decode_errors, 0);
}

/// What users run, as they run it — the release build, the default ring — at the minimal
/// churn (as fast as both CPUs go): `portwatch record` loses nothing (issue 14).
#[test]
fn record_loses_nothing_at_minimal_churn() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::create().unwrap();
    ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
    let bin = portwatch_release_bin();
    let rec = Recorder::start_bin(&bin, ns.inode, "flood", Duration::from_secs(120));
    let (caused, secs) = churn_load(&ns, MINIMAL);
    settle_closing(&ns);
    let file = rec.finish();
    let report = report_file(&file);
    let _ = std::fs::remove_file(&file);
    kept_up("portwatch record", &report, caused, secs);
}

/// Like [`record_loses_nothing_at_minimal_churn`], for the live `portwatch report`.
#[test]
fn report_loses_nothing_at_minimal_churn() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::create().unwrap();
    ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
    let bin = portwatch_release_bin();
    let live = LiveReport::start_bin(&bin, ns.inode, Duration::from_secs(120));
    let (caused, secs) = churn_load(&ns, MINIMAL);
    settle_closing(&ns);
    kept_up("portwatch report", &live.finish(), caused, secs);
}

/// One SIGINT (a Ctrl-C) ends a session at once, even while the minimal churn keeps it
/// busy: `portwatch events --json`, the busiest, three times, the signal sent in mid-flood.
/// Before the fix one run in three ran on until a second SIGINT.
#[test]
fn one_sigint_stops_a_busy_session() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bin = portwatch_release_bin();
    for round in 0..3 {
        let ns = Netns::create().unwrap();
        ns.sysctl("net/ipv4/tcp_tw_reuse", "0").unwrap();
        let mut child = std::process::Command::new(&bin)
            .args(["events", "--json", "--netns", &ns.inode.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn portwatch events");
        let mut out = child.stdout.take().unwrap();
        let lines = thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut said = String::new();
        while !said.contains("tracing") {
            let mut l = String::new();
            let n = std::io::BufRead::read_line(&mut err, &mut l).unwrap();
            assert!(n > 0, "portwatch events did not start: {said}");
            said.push_str(&l);
        }
        let pid = child.id() as i32;
        let signal = thread::spawn(move || {
            thread::sleep(Duration::from_millis(1500));
            // SAFETY: a signal to our own child, not reaped yet (it is waited for below).
            unsafe { libc::kill(pid, libc::SIGINT) };
            std::time::Instant::now()
        });
        let (caused, _) = churn_load(&ns, MINIMAL);
        let sent = signal.join().unwrap();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if sent.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("round {round}: still running 20 s after one SIGINT ({caused} transitions)");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let took = sent.elapsed();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        let _ = lines.join();
        eprintln!(
            "round {round}: stopped {took:?} after SIGINT ({status}); {}",
            rest.trim()
        );
        assert!(status.success(), "{status}: {rest}");
        assert!(rest.contains("events received"), "{rest}");
    }
}

/// Nothing was lost for want of room or time (ring full, a record that did not decode), and
/// the model saw at least the transitions the load caused. Runs the kernel skipped because
/// the program was already running on that CPU (an interrupt nested in it) are not userspace
/// falling behind; they are counted and bounded here.
fn kept_up(what: &str, report: &serde_json::Value, caused: u64, secs: f64) {
    let lost = &report["lost_events"];
    let n = |k: &str| {
        lost[k]
            .as_u64()
            .unwrap_or_else(|| panic!("lost_events.{k} in {lost}"))
    };
    let events = report["model"]["events"].as_u64().expect("model.events");
    eprintln!(
        "{what}: {caused} transitions in {secs:.2} s = {:.0}/s; model events {events}; \
         lost_events {lost}",
        caused as f64 / secs
    );
    assert!(
        caused >= 100_000,
        "the flood made too few transitions to mean anything: {caused}"
    );
    for k in [
        "state",
        "call",
        "timewait",
        "decode_errors",
        "untracked_calls",
    ] {
        assert_eq!(n(k), 0, "{what} lost {k} records: {lost}");
    }
    assert!(
        n("skipped_state") <= caused / 10_000,
        "{what}: the kernel skipped too many nested runs: {lost}"
    );
    assert!(
        events >= caused - caused / 200,
        "{what} saw {events} events of {caused} transitions caused: {lost}"
    );
}

#[test]
fn tiny_ring_and_slow_consumer_count_every_loss() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let page = portwatch::collect::page_size();
    let (caused, received, c, _) = flood(page, Some(Duration::from_millis(2)), MINIMAL);
    assert!(
        c.state.lost > 0,
        "a one-page ring and a slow consumer must overflow: {c:?}"
    );
    assert!(received > 0);
    every_record_accounted(caused, received, &c);
    assert_eq!(c.call.received + c.call.lost, c.call.seen);
}

/// Nothing silent: received + counted lost (+ dropped repeats) == seen == caused (less
/// skipped runs, and the gap described above), for state and timewait records. With records
/// dropped for a full ring, a rescued repeat whose twin was dropped (or that was dropped
/// itself) cannot be recognised: each rescue may count once too many.
fn every_record_accounted(caused: u64, received: u64, c: &portwatch::collect::Counters) {
    assert_eq!(
        received + c.state.lost + c.state.duplicates,
        c.state.seen,
        "{c:?}"
    );
    let accounted = c.state.seen - c.state.duplicates + c.skipped.state;
    assert!(
        accounted <= caused + c.rescued && caused.saturating_sub(accounted) <= caused / 200,
        "{caused}: {c:?}"
    );
    assert_eq!(
        c.timewait.received + c.timewait.lost + c.timewait.duplicates,
        c.timewait.seen
    );
}

/// Runs `load` in `ns`: a server and client threads churning connect/close for 3 s. Returns
/// the transitions it caused and how long it took.
fn churn_load(ns: &Netns, load: Load) -> (u64, f64) {
    let cpus = thread::available_parallelism().map_or(2, |n| n.get());
    let threads = if load.threads == 0 {
        cpus
    } else {
        load.threads
    };
    let listen = "0.0.0.0:8080".parse().unwrap();
    let acceptors = if load.threads == 0 { cpus } else { 1 };
    let server = churn::Server::start(ns, listen, Closer::Client, acceptors).unwrap();
    let dst = "127.0.0.1:8080".parse().unwrap();
    let report = churn::churn_to(
        ns,
        &ChurnOpts {
            dst,
            threads,
            duration: Duration::from_secs(3),
            max_connections: Some(load.max_connections),
            closer: Closer::Client,
            backoff_on_error: Duration::from_millis(1),
        },
        &churn::spread(dst, load.destinations),
    )
    .unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    let n = report.connections;
    assert_eq!(
        server.stop_after(n, Duration::from_secs(10)),
        n,
        "the server handled every connection"
    );
    (
        n * TRANSITIONS_PER_CONNECTION + LISTENER_TRANSITIONS,
        report.elapsed_s,
    )
}

/// Waits (up to 5 s) until `ns` has no socket left in a closing state: every transition the
/// load caused has happened.
fn settle_closing(ns: &Netns) {
    for _ in 0..100 {
        let ss = ns
            .run(|| {
                std::process::Command::new("ss")
                    .args([
                        "-tanH",
                        "state",
                        "fin-wait-1",
                        "state",
                        "fin-wait-2",
                        "state",
                        "last-ack",
                        "state",
                        "close-wait",
                    ])
                    .output()
                    .unwrap()
                    .stdout
            })
            .unwrap();
        if ss.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
