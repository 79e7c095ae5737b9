//! The byte layout of a recording: the file header and the chunk frame. Everything
//! fixed-width is little-endian. See docs/recording-format.md.
//!
//! ```text
//! file   = header chunk*
//! header = magic[8] major:u16 minor:u16 json_len:u32 crc:u32 json[json_len]
//! chunk  = frame[48] payload[stored_len]
//! ```

use serde::{Deserialize, Serialize};

use super::context::Host;

/// `\x89` (not text, not UTF-8) `PWREC`, then `\r\n` (damaged by text-mode transfers).
pub const MAGIC: [u8; 8] = *b"\x89PWREC\r\n";
/// Incompatible changes bump the major version: a reader refuses a newer major.
pub const VERSION_MAJOR: u16 = 2;
/// Compatible additions bump the minor version (new context types, chunk types, columns).
pub const VERSION_MINOR: u16 = 2;
/// Fixed part of the file header, before its JSON.
pub const HEADER_FIXED: usize = 20;
/// Bound on the header's JSON, so that a corrupt length cannot allocate much.
pub const MAX_HEADER_JSON: u32 = 1 << 20;

/// First bytes of every chunk frame; the reader looks for them to resynchronise.
pub const SYNC: [u8; 4] = *b"PWCK";
pub const FRAME_LEN: usize = 48;
/// Bounds on a chunk's stored (compressed) and raw (decompressed) sizes: the writer stays
/// far below them, and a reader allocates no more than this for one chunk.
pub const MAX_STORED: u32 = 64 << 20;
pub const MAX_RAW: u32 = 64 << 20;

/// Chunk types. A reader skips types it does not know (they are framed and checksummed).
pub mod chunk_type {
    /// Events and context records, columnar (`chunk.rs`).
    pub const DATA: u8 = 1;
    /// The last chunk of a finished recording: a JSON [`super::EndSummary`].
    pub const END: u8 = 2;
}

/// Frame flags.
pub mod flags {
    /// The payload is one zstd frame; otherwise it is stored as is.
    pub const ZSTD: u8 = 1;
}

/// The JSON part of the file header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `portwatch-recording`.
    pub format: String,
    /// `major.minor`, as in the fixed part.
    pub version: String,
    pub host: Host,
    /// A description of the encoding for people and other tools; readers do not depend on it.
    #[serde(default)]
    pub schema: serde_json::Value,
}

/// The payload of the END chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EndSummary {
    pub events: u64,
    pub contexts: u64,
    /// Data chunks before the END chunk.
    pub chunks: u64,
}

/// CRC-32 (IEEE 802.3, as in zlib/gzip/PNG) of several slices.
pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// The fixed part of the header, with its checksum over itself and the JSON.
pub fn encode_header(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_FIXED + json.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    let c = crc(&[&out, json]);
    out.extend_from_slice(&c.to_le_bytes());
    out.extend_from_slice(json);
    out
}

/// A chunk frame: everything about the chunk but its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frame {
    pub chunk_type: u8,
    pub flags: u8,
    pub stored_len: u32,
    pub raw_len: u32,
    /// Items (events + context records) in the chunk.
    pub items: u32,
    pub events: u32,
    /// Smallest and largest event timestamp (0, 0 without events).
    pub min_ts: u64,
    pub max_ts: u64,
    pub payload_crc: u32,
}

/// Why 48 bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    NoSync,
    HeaderCrc,
    Invalid(String),
}

impl Frame {
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0..4].copy_from_slice(&SYNC);
        b[4] = self.chunk_type;
        b[5] = self.flags;
        // 6..8 reserved, zero.
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.items.to_le_bytes());
        b[20..24].copy_from_slice(&self.events.to_le_bytes());
        b[24..32].copy_from_slice(&self.min_ts.to_le_bytes());
        b[32..40].copy_from_slice(&self.max_ts.to_le_bytes());
        b[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        let c = crc(&[&b[..44]]);
        b[44..48].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Checks the sync bytes, the frame's own checksum (unless `verify` is false: fuzzing)
    /// and the bounds.
    pub fn parse(b: &[u8; FRAME_LEN], verify: bool) -> Result<Frame, FrameError> {
        if b[0..4] != SYNC {
            return Err(FrameError::NoSync);
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if verify && crc(&[&b[..44]]) != u32_at(44) {
            return Err(FrameError::HeaderCrc);
        }
        let f = Frame {
            chunk_type: b[4],
            flags: b[5],
            stored_len: u32_at(8),
            raw_len: u32_at(12),
            items: u32_at(16),
            events: u32_at(20),
            min_ts: u64_at(24),
            max_ts: u64_at(32),
            payload_crc: u32_at(40),
        };
        let invalid = |m: String| Err(FrameError::Invalid(m));
        if f.stored_len > MAX_STORED {
            return invalid(format!("stored length {} > {MAX_STORED}", f.stored_len));
        }
        if f.raw_len > MAX_RAW {
            return invalid(format!("raw length {} > {MAX_RAW}", f.raw_len));
        }
        if f.flags & !flags::ZSTD != 0 {
            return invalid(format!("unknown flags {:#x}", f.flags));
        }
        if f.flags & flags::ZSTD == 0 && f.raw_len != f.stored_len {
            return invalid("uncompressed chunk with raw length != stored length".into());
        }
        if f.events > f.items || f.items > f.raw_len {
            return invalid(format!(
                "{} events, {} items in {} bytes",
                f.events, f.items, f.raw_len
            ));
        }
        Ok(f)
    }
}

/// A description of the encoding, stored in the header for people and tools.
pub fn schema() -> serde_json::Value {
    use crate::event::TcpState;
    let states: serde_json::Map<String, serde_json::Value> = TcpState::ALL
        .iter()
        .map(|s| ((*s as u8).to_string(), s.name().into()))
        .collect();
    serde_json::json!({
        "doc": "docs/recording-format.md",
        "checksum": "crc32 (IEEE 802.3)",
        "compression": "zstd (frame flag bit 0)",
        "chunk_types": {"1": "data", "2": "end"},
        "data_chunk": {
            "columns": super::chunk::COLUMN_NAMES,
            "item_kinds": {"0": "state", "1": "call", "2": "timewait", "3": "context"},
            "detail": {
                "state": "old << 4 | new",
                "call": "bit0 bind, bit1 has sk, bit2 has errno, bit3 has bound_port",
                "timewait": "op (0 start, 1 cancel, 2 expire) | substate << 2"
            },
            "interning": "code 0 new, 1..=16 move-to-front position, 17+i table entry i",
        },
        "tcp_states": states,
        "context_types": ["startup", "reconcile", "loss", "warning", "workloads", "executables", "conntrack", "tick", "note"],
    })
}
