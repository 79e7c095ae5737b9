//! Size and speed of the recording format on the synthetic churn stream. Not a timed test:
//! it prints figures (`cargo test --release -p portwatch record::bench -- --ignored
//! --nocapture`), and `cargo xtask bench` may call [`run`].

use std::{
    io,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{Host, Item, Options, Reader, Writer, churn, writer::Sink};
use crate::event::Event;

/// An in-memory file.
#[derive(Clone, Default)]
pub(crate) struct MemSink(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Sink for MemSink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.0.lock().expect("unpoisoned").extend_from_slice(b);
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.lock().expect("unpoisoned").truncate(len as usize);
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `events` to memory with `opts`; returns the file's bytes. With `live`, calls
/// `flush_if_due` after every event with the time the event happened, as a recorder does
/// (so chunks are cut every `flush_interval` of event time).
pub(crate) fn write_mem(events: &[Event], opts: Options, live: bool) -> Vec<u8> {
    let sink = MemSink::default();
    let mut w = Writer::with_sink(
        Box::new(sink.clone()),
        Path::new("mem"),
        &Host::default(),
        opts,
    )
    .expect("memory writer");
    let base = Instant::now();
    let t0 = events.first().map_or(0, |e| e.ts_ns);
    for e in events {
        w.push(e).expect("push");
        if live {
            let now = base + Duration::from_nanos(e.ts_ns - t0);
            w.flush_if_due(now).expect("flush");
        }
    }
    w.finish().expect("finish");
    sink.0.lock().expect("unpoisoned").clone()
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub connections: usize,
    /// New connections per second of event time.
    pub rate: u64,
    /// Chunks cut every second of event time (as when recording live), or only by size.
    pub live: bool,
    pub events: usize,
    pub file_bytes: usize,
    pub chunks: u64,
    pub bytes_per_event: f64,
    /// Events/s through `Writer::push` + `finish` (encode, compress, checksum) into memory.
    pub encode_per_s: f64,
    /// Events/s through `Reader` (checksum, decompress, decode) from memory.
    pub decode_per_s: f64,
}

/// Encodes and decodes `connections` connections of churn at `rate` connections/s, best of
/// three runs each.
pub fn run(connections: usize, rate: u64, live: bool) -> Report {
    let cfg = churn::Config {
        rate,
        ..churn::Config::new(connections)
    };
    let events: Vec<Event> = churn::Churn::new(cfg).collect();
    let mut bytes = Vec::new();
    let mut encode = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = write_mem(&events, Options::default(), live);
        encode = encode.min(t.elapsed().as_secs_f64());
    }
    let mut decode = f64::MAX;
    let mut chunks = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut r = Reader::from_reader(io::Cursor::new(&bytes), "mem").expect("header");
        let n = r
            .by_ref()
            .filter(|i| matches!(i, Ok(Item::Event(_))))
            .count();
        decode = decode.min(t.elapsed().as_secs_f64());
        assert_eq!(n, events.len());
        assert!(r.integrity().is_complete(), "{}", r.integrity());
        chunks = r.integrity().chunks;
    }
    Report {
        connections,
        rate,
        live,
        events: events.len(),
        file_bytes: bytes.len(),
        chunks,
        bytes_per_event: bytes.len() as f64 / events.len() as f64,
        encode_per_s: events.len() as f64 / encode,
        decode_per_s: events.len() as f64 / decode,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[ignore = "benchmark: run with --release --ignored --nocapture"]
    fn churn_100k_connections() {
        for (rate, live) in [(400, true), (4_000, true), (40_000, true), (4_000, false)] {
            let r = super::run(100_000, rate, live);
            println!(
                "{} connections at {}/s, {}: {} events, {} bytes in {} chunks = {:.2} bytes/event; \
                 encode {:.2} M events/s, decode {:.2} M events/s",
                r.connections,
                r.rate,
                if r.live {
                    "chunk per second"
                } else {
                    "chunks cut by size"
                },
                r.events,
                r.file_bytes,
                r.chunks,
                r.bytes_per_event,
                r.encode_per_s / 1e6,
                r.decode_per_s / 1e6
            );
        }
    }
}
