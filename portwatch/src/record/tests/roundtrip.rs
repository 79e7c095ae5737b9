//! Everything written reads back identical, in order.

use std::time::{Duration, Instant};

use super::*;
use crate::record::{Info, churn, format};

fn opts(chunk_bytes: usize, zstd_level: i32) -> Options {
    Options {
        chunk_bytes,
        zstd_level,
        ..Options::default()
    }
}

#[test]
fn every_event_and_context_kind_round_trips() {
    let items = sample_items();
    for (chunk_bytes, level) in [(1 << 20, 3), (1 << 20, 0), (1, 3), (64, 0), (200, 19)] {
        let (_d, path) = tmp();
        let s = write(&path, &items, opts(chunk_bytes, level));
        assert_eq!(s.events as usize, sample_events().len());
        assert_eq!(s.contexts as usize, sample_contexts().len());
        let r = read_path(&path);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.items, items, "chunk_bytes {chunk_bytes} level {level}");
        assert!(r.integrity.is_complete(), "{}", r.integrity);
        assert_eq!(r.integrity.chunks, s.chunks);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), s.bytes);
    }
}

#[test]
fn header_carries_host_version_and_schema() {
    let (_d, path) = tmp();
    write(&path, &[], Options::default());
    let r = Reader::open(&path).unwrap();
    assert_eq!(r.header().host, host());
    assert_eq!(r.header().format, "portwatch-recording");
    assert_eq!(r.header().version, "2.2");
    assert!(r.header().schema["data_chunk"]["columns"].is_array());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes[..8], format::MAGIC);
}

#[test]
fn churn_round_trips_across_many_chunks() {
    let events: Vec<Event> = churn::churn(3_000).collect();
    let items: Vec<Item> = events.iter().copied().map(Item::Event).collect();
    let (_d, path) = tmp();
    let s = write(&path, &items, opts(16 << 10, 3));
    assert!(s.chunks > 5, "{s:?}");
    let r = read_path(&path);
    assert!(r.errors.is_empty());
    assert_eq!(r.items, items);
}

#[test]
fn inputs_decode_into_their_types() {
    let items = sample_contexts();
    for c in &items {
        let json = c.body_json().unwrap();
        assert_eq!(&ContextRecord::from_parts(c.kind(), &json).unwrap(), c);
    }
    let Some(ContextRecord::Input(Input::Startup(s))) = items.first() else {
        panic!()
    };
    assert_eq!(s.value, super::sample_snapshot());
    // Events have columns of their own: never a context record.
    let ev = Input::Event(sample_events()[0]);
    assert!(super::super::context::input_json(&ev).is_err());
    // A record type from a newer portwatch is kept, not an error.
    let r = ContextRecord::from_parts("gpu", br#"{"n":1}"#).unwrap();
    assert_eq!(r.kind(), "gpu");
    assert!(
        ContextRecord::from_parts("gpu", b"{").is_err(),
        "but it must be JSON"
    );
    // Known types ignore fields they do not know, and default those they miss.
    let r = ContextRecord::from_parts("note", br#"{"text":"x","extra":1}"#).unwrap();
    assert!(matches!(r, ContextRecord::Note(n) if n.text == "x" && n.ts_ns == 0));
    let r = ContextRecord::from_parts("tick", br#"{"at_ns":3,"extra":1}"#).unwrap();
    assert_eq!(r, ContextRecord::Input(Input::Tick(3)));
    // An input that does not decode is an error, not a silent default.
    assert!(ContextRecord::from_parts("loss", br#"{"at_ns":"x"}"#).is_err());
}

#[test]
fn flush_if_due_writes_within_the_interval_and_the_live_file_reads() {
    let (_d, path) = tmp();
    let mut w = Writer::create(&path, &host(), Options::default()).unwrap();
    let t0 = Instant::now();
    assert!(!w.flush_if_due(t0).unwrap(), "nothing buffered");
    let events = sample_events();
    w.push(&events[0]).unwrap();
    assert!(!w.flush_if_due(t0).unwrap());
    assert!(!w.flush_if_due(t0 + Duration::from_millis(999)).unwrap());
    assert!(w.flush_if_due(t0 + Duration::from_secs(1)).unwrap());
    assert_eq!(w.summary().chunks, 1);
    // While the writer is still open, the file reads back as cut short.
    let r = read_path(&path);
    assert_eq!(r.items, vec![Item::Event(events[0])]);
    assert!(r.integrity.truncated.is_some());
    assert_eq!(r.integrity.status(), crate::record::Status::Truncated);
    w.push(&events[1]).unwrap();
    // The wait restarts after each chunk.
    assert!(!w.flush_if_due(t0 + Duration::from_secs(2)).unwrap());
    assert!(w.flush_if_due(t0 + Duration::from_secs(3)).unwrap());
    let s = w.finish().unwrap();
    assert_eq!((s.events, s.chunks), (2, 2));
}

#[test]
fn size_cut_bounds_chunks() {
    let (_d, path) = tmp();
    let items: Vec<Item> = churn::churn(500).map(Item::Event).collect();
    let s = write(&path, &items, opts(4096, 3));
    let r = read_path(&path);
    assert_eq!(r.items.len(), items.len());
    assert!(s.chunks >= 10, "{s:?}");
}

#[test]
fn a_dropped_writer_keeps_what_it_buffered() {
    let (_d, path) = tmp();
    {
        let mut w = Writer::create(&path, &host(), Options::default()).unwrap();
        for e in sample_events() {
            w.push(&e).unwrap();
        }
    }
    let r = read_path(&path);
    assert_eq!(r.items.len(), sample_events().len());
    assert!(r.integrity.truncated.is_some(), "no end marker: cut short");
}

#[test]
fn info_summarises_the_file() {
    let (_d, path) = tmp();
    let mut items = sample_items();
    let mut loss = crate::collect::Counters::default();
    loss.state.lost = 5;
    items.push(Item::Context(ContextRecord::Input(Input::Loss(Box::new(
        Stamped::new(99, loss),
    )))));
    write(&path, &items, Options::default());
    let info = Info::open(&path).unwrap();
    assert_eq!(info.events as usize, sample_events().len());
    assert_eq!(info.by_kind.state, 5 + TcpState::ALL.len() as u64);
    assert_eq!(info.by_kind.connect_failed, 1);
    assert_eq!(info.by_kind.connect_ok, 1);
    assert_eq!(info.by_kind.bind_ok, 1);
    assert_eq!(info.by_kind.bind_failed, 2);
    assert_eq!(
        (
            info.by_kind.tw_start,
            info.by_kind.tw_cancel,
            info.by_kind.tw_expire
        ),
        (2, 2, 1)
    );
    assert_eq!(info.contexts["loss"], 2);
    assert_eq!(info.contexts["from_the_future"], 1);
    assert_eq!(info.loss.unwrap().state.lost, 5);
    assert_eq!(info.warnings.len(), 1);
    assert_eq!(
        (info.first_ts_ns, info.last_ts_ns),
        (Some(0), Some(u64::MAX))
    );
    assert!(info.integrity.is_complete());
    assert!(info.errors.is_empty());
    assert_eq!(info.header.host.hostname, "box");
    serde_json::to_string(&info).unwrap();
}

#[test]
fn big_context_records_get_a_chunk_and_oversized_ones_are_refused() {
    let (_d, path) = tmp();
    let mut w = Writer::create(&path, &host(), opts(64 << 10, 3)).unwrap();
    let mut big = super::sample_snapshot();
    let one = big.namespaces[0].sockets[0].clone();
    big.namespaces[0].sockets = vec![one; 2_000];
    let snap = ContextRecord::Input(Input::Startup(Stamped::new(1, big)));
    let events = sample_events();
    for e in &events {
        w.push(e).unwrap();
    }
    w.context(&snap).unwrap();
    let note = ContextRecord::Note(Note {
        text: "x".repeat(2 << 20),
        ..Note::default()
    });
    let e = w.context(&note).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    w.push(&events[0]).unwrap();
    let s = w.finish().unwrap();
    assert_eq!((s.chunks, s.contexts), (3, 1));
    let mut expect: Vec<Item> = events.iter().copied().map(Item::Event).collect();
    expect.push(Item::Context(snap));
    expect.push(Item::Event(events[0]));
    assert_eq!(read_path(&path).items, expect);
}
