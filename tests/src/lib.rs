//! Helpers for the privileged integration tests: a fresh network namespace per test, a tracer
//! that runs the real collector on a thread, and small socket utilities.
//!
//! These tests load BPF programs and create namespaces: they need root, and they fail —
//! never skip — without it.

pub mod daemons;
pub mod findings;
pub mod incident;
pub mod live;
pub mod netns;
pub mod pty;
pub mod serve;
pub mod sockets;
pub mod ss;

use std::{
    net::SocketAddr,
    process::Command,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use portwatch::{
    collect::{Collector, Counters, Options, ReadStats},
    event::{Event, EventKind, StateChange, TcpState, TimeWait},
};

/// Panics (fails the test) unless running as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "privileged integration test: must run as root (sudo -E cargo xtask test); \
         it loads BPF programs and creates network namespaces"
    );
}

/// Runs a command and panics with its output if it fails.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The calling thread's id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// A network namespace made for one test (`ip netns add`), deleted on drop.
pub use netns::NetnsGuard as Netns;

/// The real collector, running on its own thread with its own tokio runtime, gathering every
/// event it receives.
pub struct Tracer {
    events: Arc<Mutex<Vec<Event>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<thread::JoinHandle<(Counters, ReadStats)>>,
}

impl Tracer {
    /// Loads and attaches the programs; returns once they are attached. Panics (fails the
    /// test) if the collector cannot start or any hook is not attached.
    pub fn start(opts: Options) -> Tracer {
        Tracer::start_with_delay(opts, None)
    }

    /// `consumer_delay`: sleep this long after each batch (a slow consumer).
    pub fn start_with_delay(opts: Options, consumer_delay: Option<Duration>) -> Tracer {
        require_root();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sink = events.clone();
        let handle = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut c = match Collector::start(&opts) {
                    Ok(c) => c,
                    Err(e) => {
                        ready_tx.send(Err(format!("{e:#}"))).unwrap();
                        return Default::default();
                    }
                };
                let failed: Vec<String> = c
                    .attached()
                    .iter()
                    .filter_map(|a| {
                        a.result
                            .as_ref()
                            .err()
                            .filter(|e| !e.starts_with("disabled by"))
                            .map(|e| format!("{}: {e}", a.hook.attach_point()))
                    })
                    .collect();
                if !failed.is_empty() {
                    ready_tx.send(Err(failed.join("; "))).unwrap();
                    return Default::default();
                }
                ready_tx.send(Ok(())).unwrap();
                let mut batch = Vec::new();
                loop {
                    tokio::select! {
                        r = c.next_batch(&mut batch) => r.expect("read ring buffer"),
                        _ = &mut stop_rx => break,
                    }
                    sink.lock().unwrap().append(&mut batch);
                    if let Some(d) = consumer_delay {
                        tokio::time::sleep(d).await;
                    }
                }
                c.stop();
                c.drain(&mut batch);
                sink.lock().unwrap().append(&mut batch);
                if let Some(e) = c.first_decode_error() {
                    panic!("undecodable record: {e}");
                }
                (c.counters(), c.read_stats())
            })
        });
        match ready_rx.recv().expect("tracer thread died") {
            Ok(()) => {}
            Err(e) => panic!("portwatch could not attach everything: {e}"),
        }
        Tracer {
            events,
            stop: Some(stop_tx),
            handle: Some(handle),
        }
    }

    /// A copy of the events received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the events received so far (true), or `timeout` (false).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Event]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.events.lock().unwrap()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Detaches, drains what is left, and returns every event and the final counters.
    pub fn stop(self) -> (Vec<Event>, Counters) {
        let (events, counters, _) = self.stop_with_reader();
        (events, counters)
    }

    /// [`Tracer::stop`], with how the collector's ring reader fared.
    pub fn stop_with_reader(mut self) -> (Vec<Event>, Counters, ReadStats) {
        let _ = self.stop.take().unwrap().send(());
        let (counters, reader) = self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("tracer thread panicked");
        let events = std::mem::take(&mut *self.events.lock().unwrap());
        (events, counters, reader)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The state changes of one socket, in order.
pub fn transitions_of(events: &[Event], sk: u64) -> Vec<(TcpState, TcpState)> {
    states(events)
        .filter(|(_, s)| s.sk == sk)
        .map(|(_, s)| (s.old, s.new))
        .collect()
}

/// Every state change, with its event.
pub fn states(events: &[Event]) -> impl Iterator<Item = (&Event, &StateChange)> {
    events.iter().filter_map(|e| match &e.kind {
        EventKind::State(s) => Some((e, s)),
        _ => None,
    })
}

/// Every timewait event, with its event.
pub fn timewaits(events: &[Event]) -> impl Iterator<Item = (&Event, &TimeWait)> {
    events.iter().filter_map(|e| match &e.kind {
        EventKind::TimeWait(t) => Some((e, t)),
        _ => None,
    })
}

/// The events of one namespace.
pub fn in_netns(events: &[Event], netns: u32) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.netns == netns)
        .copied()
        .collect()
}

/// The socket that made the first `old -> new` transition with this local or remote address.
pub fn sk_with(
    events: &[Event],
    old: TcpState,
    new: TcpState,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
) -> Option<u64> {
    states(events)
        .find(|(_, s)| {
            s.old == old
                && s.new == new
                && local.is_none_or(|l| s.local == l)
                && remote.is_none_or(|r| s.remote == r)
        })
        .map(|(_, s)| s.sk)
}

/// Asserts that the timewait events of one 4-tuple are a single timewait socket scheduled in
/// `first_substate`, possibly re-armed once the peer's FIN arrives (the kernel moves the timer
/// with `mod_timer`: a cancel with time left and a new start — silent when the new expiry
/// falls in the same timer-wheel bucket), and not ended. Returns the timewait socket address.
pub fn assert_one_timewait(
    events: &[Event],
    local: SocketAddr,
    remote: SocketAddr,
    first_substate: TcpState,
) -> u64 {
    use portwatch::event::TwOp;
    let tws: Vec<&TimeWait> = timewaits(events)
        .map(|(_, t)| t)
        .filter(|t| t.local == local && t.remote == remote)
        .collect();
    assert!(!tws.is_empty(), "no timewait for {local} > {remote}");
    let addr = tws[0].tw;
    assert!(
        tws.iter().all(|t| t.tw == addr),
        "one timewait socket: {tws:#?}"
    );
    assert_eq!(
        (tws[0].op, tws[0].substate),
        (TwOp::Start, first_substate),
        "{tws:#?}"
    );
    assert!(tws[0].remaining_jiffies > 0, "a fresh timer: {tws:#?}");
    for pair in tws[1..].chunks(2) {
        assert_eq!(pair.len(), 2, "a re-arm is a cancel and a start: {tws:#?}");
        assert_eq!(pair[0].op, TwOp::Cancel, "{tws:#?}");
        assert!(pair[0].remaining_jiffies > 0, "{tws:#?}");
        assert_eq!(pair[1].op, TwOp::Start, "{tws:#?}");
    }
    addr
}

/// Asserts that nothing of this tracer's namespace was lost on the way: no record dropped for
/// a full ring, unreadable or undecodable. (Skipped program runs are not part of it: the
/// kernel counts them for every namespace on the machine, so a busy machine can show some
/// that concern other traffic; tests that need them assert the exact events instead.)
pub fn assert_nothing_lost(c: &Counters) {
    assert_eq!(
        (c.state.lost, c.call.lost, c.timewait.lost, c.decode_errors),
        (0, 0, 0, 0),
        "{c:?}"
    );
    for (name, k) in c.kinds() {
        assert_eq!(k.received + k.duplicates, k.seen, "{name}: {c:?}");
    }
}
