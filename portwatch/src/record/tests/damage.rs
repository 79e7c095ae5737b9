//! Cut-short, damaged and hostile files: read what is intact, name offsets, never panic.

use super::*;
use crate::record::{
    Status, churn,
    codec::put_uvar,
    format::{self, FRAME_LEN, Frame, chunk_type, flags},
};

/// (start, end, items) of every chunk, by walking the frames.
fn chunks(bytes: &[u8]) -> (usize, Vec<(usize, usize, usize)>) {
    let json_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let data = format::HEADER_FIXED + json_len;
    let (mut at, mut out) = (data, Vec::new());
    while at < bytes.len() {
        let f = Frame::parse(bytes[at..at + FRAME_LEN].try_into().unwrap(), true).unwrap();
        let end = at + FRAME_LEN + f.stored_len as usize;
        out.push((at, end, f.items as usize));
        at = end;
    }
    (data, out)
}

/// A small file of many chunks: churn with context records between.
fn fixture() -> (Vec<u8>, Vec<Item>) {
    let mut items: Vec<Item> = churn::churn(40).map(Item::Event).collect();
    for (i, c) in sample_contexts().into_iter().enumerate() {
        items.insert(i * 50, Item::Context(c));
    }
    let (_d, path) = tmp();
    let opts = Options {
        chunk_bytes: 600,
        ..Options::default()
    };
    write(&path, &items, opts);
    (std::fs::read(&path).unwrap(), items)
}

/// Items of chunks `..k`.
fn prefix(items: &[Item], chunks: &[(usize, usize, usize)], k: usize) -> Vec<Item> {
    let n: usize = chunks[..k].iter().map(|c| c.2).sum();
    items[..n].to_vec()
}

#[test]
fn truncation_at_every_chunk_boundary_reads_the_complete_chunks() {
    let (bytes, items) = fixture();
    let (data, chunks) = chunks(&bytes);
    assert!(chunks.len() > 8, "{} chunks", chunks.len());
    for k in 0..chunks.len() {
        let cut = chunks[k].0;
        let r = read_bytes(&bytes[..cut]).unwrap();
        assert!(r.errors.is_empty(), "cut at {cut}: {:?}", r.errors);
        assert_eq!(r.items, prefix(&items, &chunks, k), "cut at {cut}");
        let t = r.integrity.truncated.as_ref().expect("truncated");
        assert_eq!(t.offset, cut as u64);
        assert!(t.reason.contains("end marker"), "{}", t.reason);
        assert_eq!(r.integrity.status(), Status::Truncated);
        assert!(r.integrity.to_string().contains(&format!("offset {cut}")));
    }
    assert_eq!(chunks[0].0, data);
}

#[test]
fn truncation_mid_chunk_reads_the_chunks_before() {
    let (bytes, items) = fixture();
    let (_, chunks) = chunks(&bytes);
    for (k, &(start, end, _)) in chunks.iter().enumerate() {
        let mid = start + FRAME_LEN + (end - start - FRAME_LEN) / 2;
        for cut in [
            start + 1,
            start + 20,
            start + 47,
            start + FRAME_LEN,
            mid,
            end - 1,
        ] {
            let r = read_bytes(&bytes[..cut]).unwrap();
            assert!(r.errors.is_empty(), "cut at {cut}: {:?}", r.errors);
            assert_eq!(r.items, prefix(&items, &chunks, k), "cut at {cut}");
            assert_eq!(r.integrity.truncated.as_ref().unwrap().offset, start as u64);
            assert_eq!(r.integrity.chunks, k as u64);
        }
    }
}

#[test]
fn truncation_inside_the_header_is_an_error() {
    let (bytes, _) = fixture();
    let (data, _) = chunks(&bytes);
    for cut in 0..data {
        assert!(read_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_flipped_byte_anywhere_is_found_and_only_its_chunk_is_lost() {
    let (bytes, items) = fixture();
    let (data, chunks) = chunks(&bytes);
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x20;
        let r = match read_bytes(&b) {
            Err(e) => {
                assert!(at < data, "flip at {at} failed the open: {e}");
                continue;
            }
            Ok(r) => r,
        };
        assert!(at >= data, "flip at {at} in the header went unnoticed");
        let k = chunks
            .iter()
            .position(|c| (c.0..c.1).contains(&at))
            .unwrap();
        let (start, end, _) = chunks[k];
        assert_eq!(r.errors.len(), 1, "flip at {at}: {:?}", r.errors);
        match &r.errors[0] {
            Error::Corrupt { offset, reason, .. } => {
                assert_eq!(*offset, start as u64, "flip at {at}: {reason}")
            }
            e => panic!("flip at {at}: {e}"),
        }
        let d = &r.integrity.damage;
        assert_eq!(
            (d[0].offset, d[0].skipped),
            (start as u64, (end - start) as u64)
        );
        let mut expect = prefix(&items, &chunks, k);
        if k + 1 < chunks.len() {
            let after: usize = chunks[..=k].iter().map(|c| c.2).sum();
            expect.extend_from_slice(&items[after..]);
        }
        assert_eq!(r.items, expect, "flip at {at}");
        assert_eq!(r.integrity.status(), Status::Corrupt);
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_damage_never_panics_and_names_offsets() {
    let (bytes, items) = fixture();
    let (data, _) = chunks(&bytes);
    let mut rng = Rng(0x1234_5678);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = data + (rng.next() as usize) % (b.len() - data);
            let n = (1 + rng.next() % 64) as usize;
            for x in b.iter_mut().skip(at).take(n) {
                *x = rng.next() as u8;
            }
        }
        if rng.next().is_multiple_of(2) {
            b.truncate(data + (rng.next() as usize) % (b.len() - data));
        }
        let r = read_bytes(&b).unwrap();
        assert!(r.items.len() <= items.len());
        for e in &r.errors {
            let Error::Corrupt { offset, .. } = e else {
                panic!("{e}")
            };
            assert!(*offset < b.len() as u64);
        }
    }
}

#[test]
fn empty_and_garbage_files_are_errors() {
    assert!(matches!(read_bytes(b""), Err(Error::NotARecording { .. })));
    assert!(matches!(
        read_bytes(b"hello, world\n"),
        Err(Error::NotARecording { .. })
    ));
    let mut b = format::MAGIC.to_vec();
    b.extend((0..1000u32).map(|i| (i * 7919 % 251) as u8));
    assert!(read_bytes(&b).is_err());
    let mut b = format::MAGIC.to_vec();
    b.extend_from_slice(&9u16.to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    assert!(matches!(
        read_bytes(&b),
        Err(Error::Version { major: 9, .. })
    ));
}

#[test]
fn garbage_after_a_valid_header_reads_nothing_and_ends() {
    let (bytes, _) = fixture();
    let (data, _) = chunks(&bytes);
    let mut rng = Rng(99);
    let mut b = bytes[..data].to_vec();
    b.extend((0..100_000).map(|_| rng.next() as u8));
    b.extend_from_slice(b"PWCKPWCKPWCK");
    let r = read_bytes(&b).unwrap();
    assert!(r.items.is_empty());
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.integrity.damage[0].offset, data as u64);
}

#[test]
fn a_zero_filled_tail_is_a_truncation() {
    let (bytes, items) = fixture();
    let (_, chunks) = chunks(&bytes);
    let last = chunks.last().unwrap().0; // the END chunk
    let mut b = bytes[..last].to_vec();
    b.extend_from_slice(&[0; 8192]);
    let r = read_bytes(&b).unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(r.items, items);
    let t = r.integrity.truncated.unwrap();
    assert_eq!(t.offset, last as u64);
    assert!(t.reason.contains("zeros"), "{}", t.reason);
}

/// A chunk with a valid frame and checksum around `payload`.
fn chunk(mut f: Frame, payload: &[u8]) -> Vec<u8> {
    f.payload_crc = format::crc(&[payload]);
    let mut b = f.encode().to_vec();
    b.extend_from_slice(payload);
    b
}

fn header_only() -> Vec<u8> {
    let (bytes, _) = fixture();
    let (data, _) = chunks(&bytes);
    bytes[..data].to_vec()
}

#[test]
fn huge_lengths_are_refused_without_allocating() {
    let head = header_only();
    let data = head.len() as u64;
    // Header length field.
    let mut b = head.clone();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        read_bytes(&b),
        Err(Error::Corrupt { offset: 12, .. })
    ));
    // Frame lengths beyond the bounds, with valid checksums.
    for (stored_len, raw_len) in [(u32::MAX, 10), (10, u32::MAX), (format::MAX_STORED + 1, 1)] {
        let f = Frame {
            chunk_type: chunk_type::DATA,
            flags: flags::ZSTD,
            stored_len,
            raw_len,
            ..Frame::default()
        };
        let mut b = head.clone();
        b.extend_from_slice(&f.encode());
        let r = read_bytes(&b).unwrap();
        assert!(matches!(&r.errors[..], [Error::Corrupt { offset, .. }] if *offset == data));
    }
    // A bounded length past the end of the file: cut short, nothing allocated.
    let f = Frame {
        chunk_type: chunk_type::DATA,
        flags: flags::ZSTD,
        stored_len: format::MAX_STORED,
        raw_len: format::MAX_RAW,
        ..Frame::default()
    };
    let mut b = head.clone();
    b.extend_from_slice(&f.encode());
    let r = read_bytes(&b).unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(r.integrity.truncated.unwrap().offset, data);
    // zstd data claiming a huge raw size.
    let z = zstd::bulk::compress(&[0u8; 1000], 1).unwrap();
    let f = Frame {
        chunk_type: chunk_type::DATA,
        flags: flags::ZSTD,
        stored_len: z.len() as u32,
        raw_len: 10,
        items: 1,
        ..Frame::default()
    };
    let mut b = head.clone();
    b.extend(chunk(f, &z));
    assert_eq!(read_bytes(&b).unwrap().errors.len(), 1);
    // Column lengths and counts inside an uncompressed payload.
    let mut p = Vec::new();
    put_uvar(&mut p, 1);
    put_uvar(&mut p, 1);
    put_uvar(&mut p, 17);
    put_uvar(&mut p, u64::MAX);
    for _ in 1..17 {
        put_uvar(&mut p, 0);
    }
    let f = Frame {
        chunk_type: chunk_type::DATA,
        stored_len: p.len() as u32,
        raw_len: p.len() as u32,
        items: 1,
        events: 1,
        ..Frame::default()
    };
    let mut b = head.clone();
    b.extend(chunk(f, &p));
    let r = read_bytes(&b).unwrap();
    assert!(
        matches!(&r.errors[..], [Error::Corrupt { reason, .. }] if reason.contains("overruns")),
        "{:?}",
        r.errors
    );
}

#[test]
fn items_before_a_bad_item_are_kept_and_the_error_names_the_chunk() {
    let mut enc = crate::record::chunk::ChunkEncoder::default();
    let events = sample_events();
    enc.push_event(&events[0]);
    enc.push_event(&events[1]);
    let mut p = Vec::new();
    enc.finish_into(&mut p);
    // items, events, column count, 18 column lengths: one byte each; then the kind column
    // (2 bytes), then the detail column: make the second event's new state 0.
    assert_eq!(&p[21..23], &[0, 0]);
    p[24] = 0x70;
    let f = Frame {
        chunk_type: chunk_type::DATA,
        stored_len: p.len() as u32,
        raw_len: p.len() as u32,
        items: 2,
        events: 2,
        ..Frame::default()
    };
    let head = header_only();
    let mut b = head.clone();
    b.extend(chunk(f, &p));
    let r = read_bytes(&b).unwrap();
    assert_eq!(r.items, vec![Item::Event(events[0])]);
    assert!(
        matches!(&r.errors[..], [Error::Corrupt { offset, reason, .. }]
            if *offset == head.len() as u64 && reason.contains("unknown TCP state 0")),
        "{:?}",
        r.errors
    );
    assert_eq!(r.integrity.status(), Status::Corrupt);
}

#[test]
fn a_1_0_chunk_without_the_task_cgroup_column_reads_back_with_cgroup_0() {
    let mut enc = crate::record::chunk::ChunkEncoder::default();
    let events = sample_events();
    enc.push_event(&events[0]);
    enc.push_event(&events[1]);
    let mut p = Vec::new();
    enc.finish_into(&mut p);
    // items, events, column count, 18 column lengths (one byte each here): drop the last
    // column (task_cgroup) and its length, as a 1.0 writer would have written the chunk.
    assert_eq!(p[2], 18);
    let cgroup_len = p[3 + 17] as usize;
    assert!(cgroup_len > 0);
    p[2] = 17;
    p.remove(3 + 17);
    p.truncate(p.len() - cgroup_len);
    let f = Frame {
        chunk_type: chunk_type::DATA,
        stored_len: p.len() as u32,
        raw_len: p.len() as u32,
        items: 2,
        events: 2,
        ..Frame::default()
    };
    let mut b = header_only();
    b.extend(chunk(f, &p));
    let r = read_bytes(&b).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let want: Vec<Item> = events[..2]
        .iter()
        .map(|e| {
            let mut e = *e;
            e.task.cgroup = 0;
            Item::Event(e)
        })
        .collect();
    assert_ne!(events[0].task.cgroup, 0);
    assert_eq!(r.items, want);
}

#[test]
fn unknown_chunk_types_are_skipped() {
    let (bytes, items) = fixture();
    let (_, chunks) = chunks(&bytes);
    let at = chunks[1].0;
    let f = Frame {
        chunk_type: 77,
        stored_len: 5,
        raw_len: 5,
        ..Frame::default()
    };
    let mut b = bytes[..at].to_vec();
    b.extend(chunk(f, b"hello"));
    b.extend_from_slice(&bytes[at..]);
    let r = read_bytes(&b).unwrap();
    assert!(r.errors.is_empty());
    assert_eq!(r.items, items);
    assert!(r.integrity.is_complete());
}
