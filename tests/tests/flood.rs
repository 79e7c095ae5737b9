//! Exact accounting under a churn flood: every transition the generator causes is either
//! received or counted lost — with a roomy ring (nothing lost) and with a one-page ring and a
//! slow consumer (much lost, all of it counted). Root only.

use std::{
    io::Read,
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use portwatch::{collect::Options, event::TcpState};
use portwatch_tests::*;

/// One flood at a time: they measure the machine.
static SERIAL: Mutex<()> = Mutex::new(());

/// State transitions of one loopback connection whose client closes first and whose server
/// closes after reading EOF: client CLOSE→SYN_SENT→ESTABLISHED→FIN_WAIT1→FIN_WAIT2→CLOSE,
/// server child LISTEN→SYN_RECV→ESTABLISHED→CLOSE_WAIT→LAST_ACK→CLOSE.
const TRANSITIONS_PER_CONNECTION: u64 = 10;
/// The listener's CLOSE→LISTEN and LISTEN→CLOSE.
const LISTENER_TRANSITIONS: u64 = 2;

/// Churns connections to 127.0.0.1:8080 in `ns` from `clients` threads for `duration` (at
/// most `max` connections); returns how many it made.
fn churn(ns: &Netns, clients: usize, duration: Duration, max: usize) -> usize {
    let dst: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    // A deep accept queue: an overflow drops the SYN and stalls that client for a second.
    let listener = ns.run(move || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&dst.into()).unwrap();
        s.listen(4096).unwrap();
        TcpListener::from(s)
    });
    listener.set_nonblocking(true).unwrap();
    let made = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let server = {
        let (made, done) = (made.clone(), done.clone());
        thread::spawn(move || {
            let mut served = 0;
            loop {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 16];
                        while s.read(&mut buf).unwrap() > 0 {}
                        served += 1;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if done.load(Ordering::SeqCst) && served == made.load(Ordering::SeqCst) {
                            return served;
                        }
                        thread::sleep(Duration::from_micros(50));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        })
    };
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let made = made.clone();
            ns.spawn(move || {
                while Instant::now() < deadline {
                    if made.fetch_add(1, Ordering::SeqCst) >= max {
                        made.fetch_sub(1, Ordering::SeqCst);
                        break;
                    }
                    drop(TcpStream::connect(dst).expect("connect"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let served = server.join().unwrap();
    assert_eq!(served, made.load(Ordering::SeqCst));
    served
}

fn flood(
    ring_bytes: u32,
    consumer_delay: Option<Duration>,
) -> (u64, u64, portwatch::collect::Counters, f64) {
    let ns = Netns::new("flood");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let tracer = Tracer::start_with_delay(
        Options {
            netns: Some(ns.inode),
            ring_bytes,
            ..Options::default()
        },
        consumer_delay,
    );
    let t = Instant::now();
    let n = churn(&ns, 3, Duration::from_secs(3), 20_000) as u64;
    let secs = t.elapsed().as_secs_f64();
    let caused = n * TRANSITIONS_PER_CONNECTION + LISTENER_TRANSITIONS;
    // Let the last ACKs land, then account.
    let _ = tracer.wait_for(Duration::from_secs(5), |ev| {
        states(ev)
            .filter(|(_, s)| (s.old, s.new) == (TcpState::LastAck, TcpState::Close))
            .count() as u64
            == n
    });
    thread::sleep(Duration::from_millis(200));
    let (events, c) = tracer.stop();
    let received = states(&events).count() as u64;
    eprintln!(
        "flood ring={ring_bytes} delay={consumer_delay:?}: {n} connections in {secs:.2} s = {:.0} transitions/s; \
         received {received}, lost {}, skipped {}, counters {c:?}",
        caused as f64 / secs,
        c.state.lost,
        c.skipped.state
    );
    assert_eq!(c.state.received, received);
    (caused, received, c, caused as f64 / secs)
}

#[test]
fn roomy_ring_loses_nothing_and_counts_every_transition() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (caused, received, c, _) = flood(4 << 20, None);
    assert!(
        caused >= 10_000,
        "the flood made too few connections to mean anything: {caused}"
    );
    // Exact accounting: the kernel saw what we caused, except runs it skipped (which it
    // counts, without knowing their namespace), and we received all it saw.
    assert!(
        c.state.seen <= caused && c.state.seen + c.skipped.state >= caused,
        "{caused}: {c:?}"
    );
    assert_eq!(c.state.lost, 0, "{c:?}");
    assert_eq!(received + c.state.lost, c.state.seen);
    assert_eq!(c.timewait.received + c.timewait.lost, c.timewait.seen);
    assert_eq!(c.decode_errors, 0);
}

#[test]
fn tiny_ring_and_slow_consumer_count_every_loss() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let page = portwatch::collect::page_size();
    let (caused, received, c, _) = flood(page, Some(Duration::from_millis(2)));
    assert!(
        c.state.lost > 0,
        "a one-page ring and a slow consumer must overflow: {c:?}"
    );
    assert!(received > 0);
    // Nothing silent: received + counted lost == seen == caused (less skipped runs).
    assert_eq!(received + c.state.lost, c.state.seen, "{c:?}");
    assert!(
        c.state.seen <= caused && c.state.seen + c.skipped.state >= caused,
        "{caused}: {c:?}"
    );
    assert_eq!(c.timewait.received + c.timewait.lost, c.timewait.seen);
    assert_eq!(c.call.received + c.call.lost, c.call.seen);
}
