//! The model and the recording on synthetic streams: replay throughput on one core, memory per
//! tracked socket with millions of live sockets, and recording bytes per event.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Instant,
};

use portwatch::{
    event::{Comm, Event, EventKind, StateChange, Task, TcpState},
    model::Model,
    record::{bench as record_bench, churn},
};

use crate::{
    alloc,
    figures::{Figure, Target, num, spread_of, stats},
};

pub struct Sizes {
    /// Connections of synthetic churn replayed (13 events each).
    pub replay_connections: usize,
    pub replay_runs: usize,
    /// Live sockets fed to the model for the memory figure.
    pub live_sockets: usize,
    /// Connections of churn encoded for bytes/event.
    pub record_connections: usize,
}

/// Events/s of `Model::apply` (and a `tick` every 250 ms of event time, as a live session
/// does) over the synthetic churn stream, on this thread.
pub fn throughput(sizes: &Sizes) -> Vec<Figure> {
    let cfg = churn::Config {
        rate: 10_000,
        ..churn::Config::new(sizes.replay_connections)
    };
    let events: Vec<Event> = churn::Churn::new(cfg).collect();
    let mut rates = Vec::new();
    for _ in 0..sizes.replay_runs {
        let mut m = Model::default();
        let t = Instant::now();
        let mut next_tick = 0;
        for e in &events {
            m.apply(e);
            if e.ts_ns >= next_tick {
                m.tick(e.ts_ns);
                next_tick = e.ts_ns + 250_000_000;
            }
        }
        std::hint::black_box(m.counters());
        rates.push(events.len() as f64 / t.elapsed().as_secs_f64());
    }
    vec![
        Figure::new(
            "model.events_per_s",
            "model replay, one core",
            stats(&rates).0,
            "ev/s",
        )
        .target(Target::AtLeast(5e6))
        .spread(spread_of(&rates, "runs"))
        .note(format!(
            "{} events of synthetic churn (10k conn/s, TIME_WAIT 60 s)",
            num(events.len() as f64)
        )),
    ]
}

/// `n` outbound connections, CLOSE→SYN_SENT→ESTABLISHED, from 4 processes, spread over
/// destinations so that each pool stays inside the default port range.
fn live_socket_events(n: usize) -> impl Iterator<Item = Event> {
    const PER_POOL: usize = 28_000;
    let t0 = 86_400_000_000_000u64;
    (0..n).flat_map(move |i| {
        let pid = 4000 + (i % 4) as u32;
        let task = Task {
            cgroup: 0,
            pid,
            tid: pid,
            ppid: 1,
            comm: Comm::new("client"),
        };
        let pool = (i / PER_POOL) as u32;
        let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a09_0000 + pool)), 443);
        let src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let port = 32768 + (i % PER_POOL) as u16;
        let sk = 0xffff_8881_0000_0000 + i as u64 * 2368;
        let ts = t0 + i as u64 * 1_000;
        let ev = |ts, local, old, new| Event {
            ts_ns: ts,
            netns: 4026531840,
            task,
            kind: EventKind::State(StateChange {
                sk,
                local,
                remote: dst,
                old,
                new,
            }),
        };
        [
            ev(
                ts,
                SocketAddr::new(src, 0),
                TcpState::Close,
                TcpState::SynSent,
            ),
            ev(
                ts + 500,
                SocketAddr::new(src, port),
                TcpState::SynSent,
                TcpState::Established,
            ),
        ]
    })
}

/// Heap bytes per tracked socket with `n` live sockets (the allocator's count of what the
/// model holds, after an empty model's own).
pub fn memory(n: usize) -> Vec<Figure> {
    let mut m = Model::default();
    let before = alloc::live_bytes();
    for e in live_socket_events(n) {
        m.apply(&e);
    }
    let after = alloc::live_bytes();
    let c = m.counters();
    let per = (after - before) as f64 / c.sockets_tracked.max(1) as f64;
    let f = Figure::new(
        "model.bytes_per_socket.synthetic",
        "model memory / socket, synthetic",
        per,
        "B",
    )
    .target(Target::AtMost(160.0))
    .spread(format!(
        "{} sockets tracked, {} MB",
        num(c.sockets_tracked as f64),
        (after - before) >> 20
    ))
    .note(format!(
        "socket table {:.0} B/socket, {} pools, {} evicted",
        c.socket_table_bytes as f64 / c.sockets_tracked.max(1) as f64,
        c.pools_tracked,
        c.sockets_evicted
    ));
    drop(m);
    vec![f]
}

/// Recording size and speed on synthetic churn, chunks cut every second of event time as a
/// live recorder cuts them.
pub fn recording(connections: usize) -> Vec<Figure> {
    let r = record_bench::run(connections, 4_000, true);
    vec![
        Figure::new(
            "record.bytes_per_event.synthetic",
            "recording bytes / event, synthetic",
            r.bytes_per_event,
            "B",
        )
        .target(Target::AtMost(12.0))
        .spread(format!(
            "{} events, {} chunks",
            num(r.events as f64),
            r.chunks
        ))
        .note(format!(
            "4k conn/s; encode {:.1} M ev/s, decode {:.1} M ev/s",
            r.encode_per_s / 1e6,
            r.decode_per_s / 1e6
        )),
    ]
}
