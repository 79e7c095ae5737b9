//! Reads a recording back, chunk by chunk, checking every checksum and bound.
//!
//! - A file cut short (killed writer, power loss, full disk) yields every complete chunk and
//!   then ends; [`Reader::integrity`] says where and why it stopped.
//! - A damaged chunk yields one `Err` naming its offset; reading then resumes at the next
//!   intact chunk frame after it (found by its sync bytes and frame checksum).
//! - Nothing allocates more than a chunk's bounded size; every step moves forward in the
//!   file, so reading always ends.

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use super::{
    Error, Item,
    chunk::ChunkReader,
    format::{
        self, EndSummary, FRAME_LEN, Frame, FrameError, HEADER_FIXED, Header, MAGIC,
        MAX_HEADER_JSON, chunk_type, flags,
    },
    integrity::{Damage, Integrity, Truncation},
};

pub struct Reader<R = BufReader<File>> {
    src: R,
    path: PathBuf,
    header: Header,
    minor: u16,
    /// Offset of the next chunk frame.
    offset: u64,
    len: u64,
    items: VecDeque<Item>,
    /// The data chunk being decoded, and where it starts.
    chunk: Option<(ChunkReader, u64)>,
    /// An error to yield once the items decoded before it are out.
    pending_error: Option<Error>,
    integrity: Integrity,
    done: bool,
    /// Set under fuzzing: checksum mismatches are ignored so that the decoder gets exercised.
    verify: bool,
}

impl Reader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
        Reader::from_reader(BufReader::with_capacity(1 << 16, file), path)
    }
}

/// Reads as much of `buf` as the source has; returns how many bytes were read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why a chunk could not be used: either the file ends inside it, or it is damaged.
enum Bad {
    Truncated(String),
    Corrupt { reason: String, resume: Resume },
}

/// Where to look for the next chunk after a damaged one.
enum Resume {
    /// The frame is intact, so the chunk's extent is known: continue after it.
    After(u64),
    /// The frame itself is damaged: scan for the next frame from this offset.
    Scan(u64),
}

impl<R: Read + Seek> Reader<R> {
    /// Reads the header from `src`; `path` names the source in errors.
    pub fn from_reader(mut src: R, path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io {
            path: path.clone(),
            cause: source,
        };
        let len = src.seek(SeekFrom::End(0)).map_err(io)?;
        src.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut fixed = [0u8; HEADER_FIXED];
        let n = read_full(&mut src, &mut fixed).map_err(io)?;
        if n < MAGIC.len() || fixed[..MAGIC.len()] != MAGIC {
            return Err(Error::NotARecording { path });
        }
        if n < HEADER_FIXED {
            return Err(Error::Corrupt {
                path,
                offset: n as u64,
                reason: "the file ends inside its header".into(),
            });
        }
        let major = u16::from_le_bytes([fixed[8], fixed[9]]);
        let minor = u16::from_le_bytes([fixed[10], fixed[11]]);
        if major != format::VERSION_MAJOR {
            return Err(Error::Version { path, major, minor });
        }
        let json_len = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes"));
        let stored_crc = u32::from_le_bytes(fixed[16..20].try_into().expect("4 bytes"));
        if json_len > MAX_HEADER_JSON || u64::from(json_len) > len - HEADER_FIXED as u64 {
            return Err(Error::Corrupt {
                path,
                offset: 12,
                reason: format!("header length {json_len} (file has {len} bytes)"),
            });
        }
        let mut json = vec![0u8; json_len as usize];
        let n = read_full(&mut src, &mut json).map_err(io)?;
        if n < json.len() {
            return Err(Error::Corrupt {
                path,
                offset: (HEADER_FIXED + n) as u64,
                reason: "the file ends inside its header".into(),
            });
        }
        let verify = !cfg!(fuzzing);
        if verify && format::crc(&[&fixed[..16], &json]) != stored_crc {
            return Err(Error::Corrupt {
                path,
                offset: 16,
                reason: "header checksum mismatch".into(),
            });
        }
        let header: Header = serde_json::from_slice(&json).map_err(|e| Error::Corrupt {
            path: path.clone(),
            offset: HEADER_FIXED as u64,
            reason: format!("header JSON: {e}"),
        })?;
        Ok(Reader {
            src,
            path,
            header,
            minor,
            offset: (HEADER_FIXED + json.len()) as u64,
            len,
            items: VecDeque::new(),
            chunk: None,
            pending_error: None,
            integrity: Integrity::default(),
            done: false,
            verify,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's minor format version (features from newer minors are skipped).
    pub fn minor_version(&self) -> u16 {
        self.minor
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file when it was opened.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    /// What has been read so far: complete only once iteration has ended.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }

    /// The END chunk's counts, once read.
    pub fn end_summary(&self) -> Option<EndSummary> {
        self.integrity.end
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.src.seek(SeekFrom::Start(offset))?;
        read_full(&mut self.src, buf)
    }

    /// Reads the chunk at `self.offset` into `self.items`.
    fn chunk(&mut self) -> io::Result<Result<(), Bad>> {
        let at = self.offset;
        let mut fb = [0u8; FRAME_LEN];
        let n = self.read_at(at, &mut fb)?;
        if n < FRAME_LEN {
            return Ok(Err(Bad::Truncated(format!(
                "the file ends {n} bytes into a chunk frame"
            ))));
        }
        let frame = match Frame::parse(&fb, self.verify) {
            Ok(f) => f,
            Err(e) => {
                let reason = match e {
                    FrameError::NoSync => "no chunk frame here".to_string(),
                    FrameError::HeaderCrc => "chunk frame checksum mismatch".to_string(),
                    FrameError::Invalid(m) => format!("invalid chunk frame: {m}"),
                };
                return Ok(Err(corrupt_frame(at, reason)));
            }
        };
        let end = at + FRAME_LEN as u64 + u64::from(frame.stored_len);
        if end > self.len {
            return Ok(Err(Bad::Truncated(format!(
                "the file ends {} bytes into a chunk of {} bytes",
                self.len - at,
                end - at
            ))));
        }
        let mut stored = vec![0u8; frame.stored_len as usize];
        if read_full(&mut self.src, &mut stored)? < stored.len() {
            return Ok(Err(Bad::Truncated("the file shrank while reading".into())));
        }
        let skip = |reason: String| {
            Ok(Err(Bad::Corrupt {
                reason,
                resume: Resume::After(end),
            }))
        };
        if self.verify && format::crc(&[&stored]) != frame.payload_crc {
            // The frame checked out, so its length is right: skip just this chunk.
            return skip("chunk payload checksum mismatch".into());
        }
        let raw = if frame.flags & flags::ZSTD != 0 {
            match zstd::bulk::decompress(&stored, frame.raw_len as usize) {
                Ok(r) if r.len() == frame.raw_len as usize => r,
                Ok(r) => {
                    return skip(format!(
                        "{} bytes decompressed, {} expected",
                        r.len(),
                        frame.raw_len
                    ));
                }
                Err(e) => return skip(format!("zstd: {e}")),
            }
        } else {
            stored
        };
        self.offset = end;
        match frame.chunk_type {
            chunk_type::DATA => match ChunkReader::new(raw, frame.items) {
                Ok(c) => self.chunk = Some((c, at)),
                Err(e) => return skip(format!("chunk payload: {e}")),
            },
            chunk_type::END => match serde_json::from_slice::<EndSummary>(&raw) {
                Ok(s) => self.integrity.end = Some(s),
                Err(e) => return skip(format!("end chunk: {e}")),
            },
            _ => {} // A chunk type from a newer minor version: skipped.
        }
        Ok(Ok(()))
    }

    /// The offset of the next intact frame at or after `from`, if any.
    fn scan(&mut self, from: u64) -> io::Result<Option<u64>> {
        const BLOCK: usize = 1 << 16;
        let mut buf = vec![0u8; BLOCK + FRAME_LEN];
        let mut pos = from;
        while pos < self.len {
            let n = self.read_at(pos, &mut buf)?;
            if n < FRAME_LEN {
                return Ok(None);
            }
            for i in memchr_all(&buf[..n], format::SYNC[0]) {
                if i + FRAME_LEN > n {
                    break;
                }
                let fb: &[u8; FRAME_LEN] = buf[i..i + FRAME_LEN].try_into().expect("len");
                if Frame::parse(fb, self.verify).is_ok() {
                    return Ok(Some(pos + i as u64));
                }
            }
            // Frames starting in the last FRAME_LEN - 1 bytes are looked at in the next block.
            pos += (n - FRAME_LEN + 1) as u64;
        }
        Ok(None)
    }

    fn next_item(&mut self) -> Option<Result<Item, Error>> {
        /// Items decoded at a time: bounds memory whatever a chunk holds.
        const BATCH: usize = 4096;
        loop {
            if let Some(item) = self.items.pop_front() {
                return Some(Ok(item));
            }
            if let Some((c, at)) = &mut self.chunk {
                let at = *at;
                let r = c.decode(BATCH, &mut self.items);
                if c.left() == 0 || r.is_err() {
                    self.chunk = None;
                }
                match r {
                    Ok(()) if self.chunk.is_none() => self.integrity.chunks += 1,
                    Ok(()) => {}
                    Err(e) => {
                        // What decoded before the error is yielded first, then the error.
                        let reason = format!("chunk payload: {e}");
                        let skipped = self.offset - at;
                        log::warn!(
                            "{}: corrupt chunk at offset {at}: {reason}",
                            self.path.display()
                        );
                        self.integrity.damage.push(Damage {
                            offset: at,
                            skipped,
                            reason: reason.clone(),
                        });
                        let err = Error::Corrupt {
                            path: self.path.clone(),
                            offset: at,
                            reason: format!("{reason}; skipped the rest of the chunk"),
                        };
                        if self.items.is_empty() {
                            return Some(Err(err));
                        }
                        self.pending_error = Some(err);
                    }
                }
                continue;
            }
            if let Some(e) = self.pending_error.take() {
                return Some(Err(e));
            }
            if self.done {
                return None;
            }
            let at = self.offset;
            if at >= self.len {
                self.done = true;
                if self.integrity.end.is_none() {
                    self.truncated(at, "the file ends without an end marker (the writer did not finish: killed, or still running)".into());
                }
                return None;
            }
            let bad = match self.chunk() {
                Ok(Ok(())) => continue,
                Ok(Err(bad)) => bad,
                Err(source) => {
                    self.done = true;
                    return Some(Err(Error::Io {
                        path: self.path.clone(),
                        cause: source,
                    }));
                }
            };
            match bad {
                Bad::Truncated(reason) => {
                    self.done = true;
                    let reason = if self.zeros_from(at) {
                        "the rest of the file is zeros (unwritten blocks after a crash)".into()
                    } else {
                        reason
                    };
                    self.truncated(at, reason);
                    return None;
                }
                Bad::Corrupt { reason, resume } => {
                    if matches!(resume, Resume::Scan(_)) && self.zeros_from(at) {
                        self.done = true;
                        self.truncated(
                            at,
                            "the rest of the file is zeros (unwritten blocks after a crash)".into(),
                        );
                        return None;
                    }
                    let next = match resume {
                        Resume::After(end) => Ok(Some(end)),
                        Resume::Scan(from) => self.scan(from),
                    };
                    let next = match next {
                        Ok(n) => n,
                        Err(source) => {
                            self.done = true;
                            return Some(Err(Error::Io {
                                path: self.path.clone(),
                                cause: source,
                            }));
                        }
                    };
                    let resumed = next.unwrap_or(self.len);
                    self.offset = resumed;
                    if next.is_none() {
                        self.done = true;
                    }
                    self.integrity.damage.push(Damage {
                        offset: at,
                        skipped: resumed - at,
                        reason: reason.clone(),
                    });
                    log::warn!(
                        "{}: corrupt at offset {at}: {reason}; skipped {} bytes",
                        self.path.display(),
                        resumed - at
                    );
                    return Some(Err(Error::Corrupt {
                        path: self.path.clone(),
                        offset: at,
                        reason: format!(
                            "{reason}; skipped {} bytes to offset {resumed}",
                            resumed - at
                        ),
                    }));
                }
            }
        }
    }

    fn truncated(&mut self, offset: u64, reason: String) {
        log::warn!(
            "{}: cut short at offset {offset} ({reason}); read {} complete chunks",
            self.path.display(),
            self.integrity.chunks
        );
        self.integrity.truncated = Some(Truncation { offset, reason });
    }

    /// Whether everything from `from` to the end is zero bytes.
    fn zeros_from(&mut self, from: u64) -> bool {
        let mut buf = [0u8; 1 << 14];
        let mut pos = from;
        while pos < self.len {
            match self.read_at(pos, &mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) if buf[..n].iter().any(|&b| b != 0) => return false,
                Ok(n) => pos += n as u64,
            }
        }
        true
    }
}

fn corrupt_frame(at: u64, reason: String) -> Bad {
    Bad::Corrupt {
        reason,
        resume: Resume::Scan(at + 1),
    }
}

/// Positions of `b` in `hay`.
fn memchr_all(hay: &[u8], b: u8) -> impl Iterator<Item = usize> + '_ {
    hay.iter()
        .enumerate()
        .filter_map(move |(i, &c)| (c == b).then_some(i))
}

impl<R: Read + Seek> Iterator for Reader<R> {
    type Item = Result<Item, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item()
    }
}
