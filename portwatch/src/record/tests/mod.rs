//! Tests of the recording format: round trips, damaged files, file safety, export schema.

mod damage;
mod export;
mod files;
mod roundtrip;

use std::{
    io::Cursor,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use super::{ContextRecord, Error, Host, Integrity, Item, Note, Options, Reader, Writer};
use crate::{
    event::{CallKind, Comm, Errno, Event, EventKind, SockCall, StateChange, Task, TcpState, TwOp},
    model::{Input, NetnsSnapshot, Owner, SnapSocket, Stamped, Sysctls, SystemSnapshot},
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(super) fn host() -> Host {
    Host {
        hostname: "box".into(),
        kernel_release: "6.8.0-test".into(),
        kernel_version: "#1 SMP".into(),
        machine: "x86_64".into(),
        boot_id: "0e7a".into(),
        start_wall_ns: 1_700_000_000_000_000_000,
        start_mono_ns: 86_400_000_000_000,
        portwatch_version: "0.1.0".into(),
    }
}

fn task(pid: u32, comm: Comm) -> Task {
    Task {
        cgroup: 0x1000 + u64::from(pid),
        pid,
        tid: pid.wrapping_add(1),
        ppid: 1,
        comm,
    }
}

fn ev(ts_ns: u64, netns: u32, task: Task, kind: EventKind) -> Event {
    Event {
        ts_ns,
        netns,
        task,
        kind,
    }
}

/// Every event kind and variant, with edge values.
pub(super) fn sample_events() -> Vec<Event> {
    let curl = task(4242, Comm::new("curl"));
    let full = task(7, Comm(*b"0123456789abcdef")); // 16 bytes, no NUL
    let odd = task(u32::MAX, Comm(*b"a\0b\0\0\0\0\0\0\0\0\0\0\0\0\0"));
    let state = |sk, l: &str, r: &str, old, new| {
        EventKind::State(StateChange {
            sk,
            local: addr(l),
            remote: addr(r),
            old,
            new,
        })
    };
    let call = |call, sk, fd, a: &str, error, bound_port| {
        EventKind::Call(SockCall {
            call,
            sk,
            fd,
            addr: addr(a),
            error,
            bound_port,
        })
    };
    let tw = |op, substate, remaining_jiffies, l: &str| {
        EventKind::TimeWait(crate::event::TimeWait {
            tw: 0xffff_8881_0000_0100,
            local: addr(l),
            remote: addr("127.0.0.1:8080"),
            op,
            substate,
            remaining_jiffies,
        })
    };
    use TcpState::*;
    let mut v = vec![
        ev(
            1_000,
            4026531840,
            curl,
            state(
                0xffff_8880_0000_1000,
                "127.0.0.1:0",
                "127.0.0.1:8080",
                Close,
                SynSent,
            ),
        ),
        ev(
            2_000,
            4026531840,
            curl,
            state(
                0xffff_8880_0000_1000,
                "127.0.0.1:40000",
                "127.0.0.1:8080",
                SynSent,
                Established,
            ),
        ),
        ev(
            1_500,
            7,
            full,
            state(1, "[::1]:40001", "[fe80::1]:443", Established, FinWait1),
        ),
        ev(
            u64::MAX,
            0,
            odd,
            state(u64::MAX, "0.0.0.0:65535", "[::]:0", Listen, BoundInactive),
        ),
        ev(
            0,
            u32::MAX,
            curl,
            state(0, "10.0.0.1:1", "10.0.0.2:2", NewSynRecv, Closing),
        ),
        ev(
            3,
            7,
            curl,
            call(
                CallKind::Connect,
                Some(2),
                5,
                "10.0.0.1:80",
                Some(Errno(libc::EADDRNOTAVAIL)),
                None,
            ),
        ),
        ev(
            4,
            7,
            curl,
            call(CallKind::Connect, None, -1, "[2001:db8::1]:443", None, None),
        ),
        ev(
            5,
            7,
            curl,
            call(CallKind::Bind, None, 6, "[::]:0", None, Some(40001)),
        ),
        ev(
            6,
            7,
            curl,
            call(
                CallKind::Bind,
                Some(9),
                i32::MAX,
                "0.0.0.0:80",
                Some(Errno(libc::EADDRINUSE)),
                None,
            ),
        ),
        ev(
            7,
            7,
            curl,
            call(
                CallKind::Bind,
                Some(9),
                i32::MIN,
                "1.2.3.4:5",
                Some(Errno(i32::MIN)),
                Some(65535),
            ),
        ),
        ev(
            8,
            7,
            full,
            tw(TwOp::Start, FinWait2, 15_000, "127.0.0.1:40000"),
        ),
        ev(
            9,
            7,
            full,
            tw(TwOp::Start, TimeWait, i32::MAX, "[::1]:40000"),
        ),
        ev(
            10,
            7,
            full,
            tw(TwOp::Cancel, TimeWait, -2, "127.0.0.1:40000"),
        ),
        ev(
            11,
            7,
            full,
            tw(TwOp::Cancel, TimeWait, 1234, "127.0.0.1:40000"),
        ),
        ev(
            12,
            7,
            full,
            tw(TwOp::Expire, TimeWait, i32::MIN, "127.0.0.1:40000"),
        ),
    ];
    for s in TcpState::ALL {
        v.push(ev(
            20,
            7,
            curl,
            state(3, "127.0.0.1:1", "127.0.0.1:2", s, s),
        ));
    }
    v
}

/// A snapshot with one socket of every state, owned and not.
pub(super) fn sample_snapshot() -> SystemSnapshot {
    let sockets = TcpState::ALL
        .into_iter()
        .enumerate()
        .map(|(i, state)| SnapSocket {
            netns: 7,
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "[2001:db8::1]:443".parse().unwrap(),
            state,
            inode: i as u64,
            owner: (i % 2 == 0).then(|| Owner {
                pid: 4242,
                comm: "curl ✓".into(),
                cgroup: 77,
            }),
        })
        .collect();
    SystemSnapshot {
        taken_at_ns: 4,
        namespaces: vec![NetnsSnapshot {
            netns: 7,
            sysctls: Some(Sysctls::kernel_defaults()),
            sockets,
        }],
    }
}

/// Every context record kind: each model input but events, a note, and a type from a newer
/// portwatch.
pub(super) fn sample_contexts() -> Vec<ContextRecord> {
    let mut loss = crate::collect::Counters::default();
    loss.state.seen = 10;
    loss.state.lost = 1;
    loss.call.seen = u64::MAX;
    vec![
        ContextRecord::Input(Input::Startup(Stamped::new(5, sample_snapshot()))),
        ContextRecord::Input(Input::Reconcile(Stamped::new(6, sample_snapshot()))),
        ContextRecord::Input(Input::Loss(Box::new(Stamped::new(7, loss)))),
        ContextRecord::Input(Input::warning(7, "reconciliation failed: ✓ \"quoted\"")),
        ContextRecord::Input(Input::Latency(crate::model::LatencyReading {
            taken_at_ns: 7,
            dests: vec![crate::model::LatencyCounts {
                netns: 4026531840,
                dst: "[::1]:8080".parse().unwrap(),
                calls: 3,
                sum_ns: 90_000,
                buckets: vec![0, 0, 1, u64::MAX, 2],
            }],
        })),
        ContextRecord::Input(Input::Tick(u64::MAX)),
        ContextRecord::Note(Note {
            ts_ns: 8,
            level: "info".into(),
            text: "ring buffer full ✓".into(),
        }),
        ContextRecord::Unknown {
            kind: "from_the_future".into(),
            json: crate::record::context::Json::parse(br#"{"x": [1, {"y": null}]}"#).unwrap(),
        },
    ]
}

/// Events interleaved with context records.
pub(super) fn sample_items() -> Vec<Item> {
    let mut items: Vec<Item> = sample_events().into_iter().map(Item::Event).collect();
    for (i, c) in sample_contexts().into_iter().enumerate() {
        items.insert(i * 3, Item::Context(c));
    }
    items
}

pub(super) fn write(path: &Path, items: &[Item], opts: Options) -> super::Summary {
    let mut w = Writer::create(path, &host(), opts).unwrap();
    for i in items {
        match i {
            Item::Event(e) => w.push(e).unwrap(),
            Item::Context(c) => w.context(c).unwrap(),
        }
    }
    w.finish().unwrap()
}

pub(super) struct ReadBack {
    pub items: Vec<Item>,
    pub errors: Vec<Error>,
    pub integrity: Integrity,
}

pub(super) fn read_bytes(bytes: &[u8]) -> Result<ReadBack, Error> {
    let mut r = Reader::from_reader(Cursor::new(bytes), "mem")?;
    let (mut items, mut errors) = (Vec::new(), Vec::new());
    for (n, i) in r.by_ref().enumerate() {
        assert!(n < 10_000_000, "endless iteration");
        match i {
            Ok(i) => items.push(i),
            Err(e) => errors.push(e),
        }
    }
    Ok(ReadBack {
        items,
        errors,
        integrity: r.integrity().clone(),
    })
}

pub(super) fn read_path(path: &Path) -> ReadBack {
    read_bytes(&std::fs::read(path).unwrap()).unwrap()
}

pub(super) fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.pwr");
    (dir, path)
}

/// Writes seed inputs for the `record_reader` fuzz target into `$PORTWATCH_FUZZ_SEEDS`
/// (`fuzz/seeds/record_reader`): small recordings, compressed and not, each also without its
/// file header (`NAME-chunks`: the target puts a valid header in front of such input).
#[test]
#[ignore = "generates fuzz seeds: PORTWATCH_FUZZ_SEEDS=fuzz/seeds/record_reader"]
fn write_fuzz_seeds() {
    let dir =
        PathBuf::from(std::env::var_os("PORTWATCH_FUZZ_SEEDS").expect("PORTWATCH_FUZZ_SEEDS"));
    std::fs::create_dir_all(&dir).unwrap();
    let churn: Vec<Item> = super::churn::churn(8).map(Item::Event).collect();
    let cases: [(&str, Vec<Item>, usize, i32); 5] = [
        ("samples-raw", sample_items(), 1 << 20, 0),
        ("samples-zstd", sample_items(), 1 << 20, 3),
        ("samples-small-chunks-raw", sample_items(), 200, 0),
        ("churn-raw", churn.clone(), 1 << 20, 0),
        ("churn-zstd", churn, 300, 1),
    ];
    for (name, items, chunk_bytes, zstd_level) in cases {
        let path = dir.join(name);
        let opts = Options {
            chunk_bytes,
            zstd_level,
            force: true,
            ..Options::default()
        };
        write(&path, &items, opts);
    }
    write(
        &dir.join("empty"),
        &[],
        Options {
            force: true,
            ..Options::default()
        },
    );
    for name in [
        "samples-raw",
        "samples-zstd",
        "samples-small-chunks-raw",
        "churn-raw",
        "churn-zstd",
        "empty",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let chunks = &bytes[super::format::HEADER_FIXED + json_len..];
        std::fs::write(dir.join(format!("{name}-chunks")), chunks).unwrap();
    }
}
