//! Arbitrary bytes as a recording: the reader must return errors, never panic, loop or
//! allocate without bound. Under `cfg(fuzzing)` the reader skips checksum checks, so that
//! mutated chunks reach the decompressor and the column decoder.

#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use portwatch::record::{
    Item, Reader,
    export::{Clock, Row},
};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Reader::from_reader(Cursor::new(data), "fuzz") else {
        return;
    };
    let clock = Clock::new(&reader.header().host);
    for item in reader.by_ref() {
        if let Ok(Item::Event(e)) = item {
            let _ = Row::new(&e, &clock).fields();
        }
    }
    let _ = reader.integrity().to_string();
});
