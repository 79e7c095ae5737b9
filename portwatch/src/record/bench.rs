//! Size and speed of the recording format on the synthetic churn stream. Not a timed test:
//! it prints figures (`cargo test --release -p portwatch record::bench -- --ignored
//! --nocapture`), and `cargo xtask bench` may call [`run`].

use std::{
    io,
    path::Path,
    sync::{Arc, Mutex},
    time::Instant,
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

/// Writes `events` to memory with `opts`; returns the file's bytes.
pub(crate) fn write_mem(events: &[Event], opts: Options) -> Vec<u8> {
    let sink = MemSink::default();
    let mut w = Writer::with_sink(
        Box::new(sink.clone()),
        Path::new("mem"),
        &Host::default(),
        opts,
    )
    .expect("memory writer");
    for e in events {
        w.push(e).expect("push");
    }
    w.finish().expect("finish");
    let bytes = sink.0.lock().expect("unpoisoned").clone();
    bytes
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub connections: usize,
    pub events: usize,
    pub file_bytes: usize,
    pub chunks: u64,
    pub bytes_per_event: f64,
    /// Events/s through `Writer::push` + `finish` (encode, compress, checksum) into memory.
    pub encode_per_s: f64,
    /// Events/s through `Reader` (checksum, decompress, decode) from memory.
    pub decode_per_s: f64,
}

/// Encodes and decodes `connections` connections of churn, best of three runs each.
pub fn run(connections: usize) -> Report {
    let events: Vec<Event> = churn::churn(connections).collect();
    let mut bytes = Vec::new();
    let mut encode = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = write_mem(&events, Options::default());
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
        let r = super::run(100_000);
        println!("{r:#?}");
    }
}
