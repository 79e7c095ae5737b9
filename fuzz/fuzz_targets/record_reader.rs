//! Arbitrary bytes as a recording: the reader must return errors, never panic, loop or
//! allocate without bound. Under `cfg(fuzzing)` the reader skips checksum checks, so that
//! mutated chunks reach the decompressor and the column decoder.
//!
//! Input that starts with the magic is read as is. Any other input gets a valid file header
//! in front, so that mutations spend their time on chunks rather than on the header's JSON
//! (a header that is not a recording's is one early error, covered by the unit tests).

#![no_main]

use std::{io::Cursor, sync::OnceLock};

use libfuzzer_sys::fuzz_target;
use portwatch::record::{
    Header, Host, Item, Reader,
    export::{Clock, Row},
    format,
};

fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let h = Header {
            format: "portwatch-recording".into(),
            version: "2.2".into(),
            host: Host::default(),
            schema: serde_json::Value::Null,
        };
        format::encode_header(&serde_json::to_vec(&h).unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let owned;
    let bytes = if data.starts_with(&format::MAGIC) {
        data
    } else {
        owned = [header(), data].concat();
        &owned[..]
    };
    let Ok(mut reader) = Reader::from_reader(Cursor::new(bytes), "fuzz") else {
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
