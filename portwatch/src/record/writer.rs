//! Writes a recording: the header, then a chunk whenever the buffered items reach the size
//! bound or have waited the flush interval, then an END chunk on [`Writer::finish`].
//!
//! A chunk reaches the file in one piece or, on failure, is cut off again (ftruncate needs no
//! free space), so the file on disk is always a valid recording up to its last chunk.

use std::{
    fs::{File, OpenOptions},
    io::{self, Seek, SeekFrom, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    Error,
    chunk::ChunkEncoder,
    context::{self, ContextRecord, Host},
    format::{self, EndSummary, Frame, Header, chunk_type, flags},
};
use crate::{event::Event, model::Input};

#[derive(Debug, Clone)]
pub struct Options {
    /// Replace an existing regular file (never a symlink or anything else).
    pub force: bool,
    /// Longest time an item waits in memory before its chunk is written
    /// (see [`Writer::flush_if_due`]).
    pub flush_interval: Duration,
    /// Cut a chunk when its encoded (uncompressed) size reaches this. Bigger chunks compress
    /// better; a reader holds one chunk in memory.
    pub chunk_bytes: usize,
    /// zstd level; 0 stores chunks uncompressed.
    pub zstd_level: i32,
    /// `fdatasync` after every chunk: survives power loss, costs a disk flush a second.
    pub sync: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            force: false,
            flush_interval: Duration::from_secs(1),
            chunk_bytes: 4 << 20,
            zstd_level: 3,
            sync: false,
        }
    }
}

/// What a finished recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Summary {
    pub events: u64,
    pub contexts: u64,
    /// Data chunks.
    pub chunks: u64,
    /// File size.
    pub bytes: u64,
}

/// Where chunks go: a file, or a fake disk in tests.
pub(crate) trait Sink: Send {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()>;
    /// Cuts the sink back to `len` bytes and continues writing there.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for File {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        Write::write_all(self, b)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        self.seek(SeekFrom::Start(len)).map(drop)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

pub struct Writer {
    sink: Box<dyn Sink>,
    path: PathBuf,
    opts: Options,
    enc: ChunkEncoder,
    raw: Vec<u8>,
    packed: Vec<u8>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    /// Bytes in the file that form complete chunks.
    offset: u64,
    /// When `flush_if_due` first saw buffered items.
    pending_since: Option<Instant>,
    summary: Summary,
    /// Set after a failed write: the file is kept as it was before it.
    failed: bool,
    finished: bool,
}

/// Opens `path` for a new recording: never through a symlink, mode 0600, and an existing
/// file only with `force` (it is unlinked and created anew, so hard links to it keep theirs).
fn create_file(path: &Path, force: bool) -> Result<File, Error> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::Symlink {
                path: path.to_path_buf(),
            });
        }
        Ok(m) if !force => {
            let _ = m;
            return Err(Error::Exists {
                path: path.to_path_buf(),
            });
        }
        Ok(m) if !m.is_file() => {
            return Err(Error::NotRegular {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => std::fs::remove_file(path).map_err(io_err)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.kind() {
            // Raced with someone creating it (a symlink, maybe) since the check above.
            io::ErrorKind::AlreadyExists => Error::Exists {
                path: path.to_path_buf(),
            },
            _ => io_err(e),
        })?;
    // The umask may only have taken bits away; make it exactly 0600.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_err)?;
    Ok(file)
}

impl Writer {
    /// Creates `path` and writes the header with `host`.
    pub fn create(path: impl AsRef<Path>, host: &Host, opts: Options) -> Result<Writer, Error> {
        let path = path.as_ref();
        let file = create_file(path, opts.force)?;
        Writer::with_sink(Box::new(file), path, host, opts)
    }

    pub(crate) fn with_sink(
        sink: Box<dyn Sink>,
        path: &Path,
        host: &Host,
        opts: Options,
    ) -> Result<Writer, Error> {
        let header = Header {
            format: "portwatch-recording".into(),
            version: format!("{}.{}", format::VERSION_MAJOR, format::VERSION_MINOR),
            host: host.clone(),
            schema: format::schema(),
        };
        let json = serde_json::to_vec(&header).map_err(Error::Json)?;
        let zstd = match opts.zstd_level {
            0 => None,
            level => Some(
                zstd::bulk::Compressor::new(level).map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    cause: source,
                })?,
            ),
        };
        let mut w = Writer {
            sink,
            path: path.to_path_buf(),
            opts: Options {
                chunk_bytes: opts.chunk_bytes.clamp(1, (format::MAX_RAW / 4) as usize),
                ..opts
            },
            enc: ChunkEncoder::default(),
            raw: Vec::new(),
            packed: Vec::new(),
            zstd,
            offset: 0,
            pending_since: None,
            summary: Summary::default(),
            failed: false,
            finished: false,
        };
        w.write(&format::encode_header(&json))?;
        Ok(w)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Buffers one event; writes a chunk when the buffer is full.
    pub fn push(&mut self, event: &Event) -> Result<(), Error> {
        self.check()?;
        self.enc.push_event(event);
        self.summary.events += 1;
        if self.enc.raw_len() >= self.opts.chunk_bytes || self.enc.tables_full() {
            self.cut()?;
        }
        Ok(())
    }

    /// Buffers one model input, in order: an event into the columns, any other input as a
    /// context record of its kind.
    pub fn input(&mut self, input: &Input) -> Result<(), Error> {
        match input {
            Input::Event(e) => self.push(e),
            other => {
                let json = context::input_json(other).map_err(Error::Json)?;
                self.record(other.kind(), &json)
            }
        }
    }

    /// Buffers one context record, in order with the events.
    pub fn context(&mut self, record: &ContextRecord) -> Result<(), Error> {
        let json = record.body_json().map_err(Error::Json)?;
        self.record(record.kind(), &json)
    }

    fn record(&mut self, kind: &str, json: &[u8]) -> Result<(), Error> {
        self.check()?;
        let max = ContextRecord::max_json(kind);
        if json.len() > max || kind.len() > 64 {
            return Err(Error::TooLarge {
                what: format!("{kind} context record"),
                bytes: json.len(),
                max,
            });
        }
        // A big record starts a chunk of its own rather than overflow the current one.
        if !self.enc.is_empty() && self.enc.raw_len() + json.len() > self.opts.chunk_bytes {
            self.cut()?;
        }
        self.enc.push_context(kind, json);
        self.summary.contexts += 1;
        if self.enc.raw_len() >= self.opts.chunk_bytes {
            self.cut()?;
        }
        Ok(())
    }

    /// Writes the buffered items if they have waited `flush_interval` since a previous call
    /// first saw them. Call it at least a few times per interval (e.g. after each ring-buffer
    /// batch and on a timer); `now` is passed in so that tests need no clock. Returns whether
    /// a chunk was written.
    pub fn flush_if_due(&mut self, now: Instant) -> Result<bool, Error> {
        self.check()?;
        if self.enc.is_empty() {
            self.pending_since = None;
            return Ok(false);
        }
        let since = *self.pending_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= self.opts.flush_interval {
            self.cut()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes the buffered items now.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.check()?;
        self.cut()
    }

    /// Counts so far (`bytes`: what is on disk in complete chunks).
    pub fn summary(&self) -> Summary {
        Summary {
            bytes: self.offset,
            ..self.summary
        }
    }

    /// Writes the buffered items and the END chunk, and syncs the file.
    pub fn finish(mut self) -> Result<Summary, Error> {
        self.check()?;
        self.cut()?;
        let end = EndSummary {
            events: self.summary.events,
            contexts: self.summary.contexts,
            chunks: self.summary.chunks,
        };
        let payload = serde_json::to_vec(&end).map_err(Error::Json)?;
        let frame = Frame {
            chunk_type: chunk_type::END,
            stored_len: payload.len() as u32,
            raw_len: payload.len() as u32,
            payload_crc: format::crc(&[&payload]),
            ..Frame::default()
        };
        self.write_chunk(&frame.encode(), &payload)?;
        self.sink.sync().map_err(|e| self.io_error(e))?;
        self.finished = true;
        Ok(self.summary())
    }

    fn check(&self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::Failed {
                path: self.path.clone(),
                kept: self.offset,
            });
        }
        Ok(())
    }

    fn io_error(&mut self, source: io::Error) -> Error {
        self.failed = true;
        // Cut a partly written chunk off again; the file stays valid up to `offset`.
        let _ = self.sink.truncate(self.offset);
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.raw_os_error() == Some(libc::EDQUOT)
        {
            Error::DiskFull {
                path: self.path.clone(),
                kept: self.offset,
            }
        } else {
            Error::Io {
                path: self.path.clone(),
                cause: source,
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self.sink.write_all(bytes) {
            Ok(()) => {
                self.offset += bytes.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn write_chunk(&mut self, frame: &[u8], payload: &[u8]) -> Result<(), Error> {
        let mut buf = std::mem::take(&mut self.packed);
        buf.clear();
        buf.extend_from_slice(frame);
        buf.extend_from_slice(payload);
        let r = self.write(&buf);
        self.packed = buf;
        r?;
        if self.opts.sync {
            self.sink.sync().map_err(|e| self.io_error(e))?;
        }
        Ok(())
    }

    /// Encodes, compresses and writes the buffered items as one chunk.
    fn cut(&mut self) -> Result<(), Error> {
        self.pending_since = None;
        if self.enc.is_empty() {
            return Ok(());
        }
        let mut frame = Frame {
            chunk_type: chunk_type::DATA,
            items: self.enc.items,
            events: self.enc.events,
            min_ts: if self.enc.events > 0 {
                self.enc.min_ts
            } else {
                0
            },
            max_ts: if self.enc.events > 0 {
                self.enc.max_ts
            } else {
                0
            },
            ..Frame::default()
        };
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        self.enc.finish_into(&mut raw);
        frame.raw_len = raw.len() as u32;
        let mut stored: &[u8] = &raw;
        let mut compressed = Vec::new();
        if let Some(z) = &mut self.zstd {
            compressed.reserve(zstd::zstd_safe::compress_bound(raw.len()));
            match z.compress_to_buffer(&raw, &mut compressed) {
                Ok(_) if compressed.len() < raw.len() => {
                    frame.flags = flags::ZSTD;
                    stored = &compressed;
                }
                _ => {}
            }
        }
        frame.stored_len = stored.len() as u32;
        frame.payload_crc = format::crc(&[stored]);
        let r = self.write_chunk(&frame.encode(), stored);
        self.raw = raw;
        r?;
        self.summary.chunks += 1;
        Ok(())
    }
}

impl Drop for Writer {
    /// A writer dropped without `finish` (an error path, a panic) still writes what it
    /// buffered; the file then reads back as cut short (no END chunk).
    fn drop(&mut self) {
        if !self.finished && !self.failed {
            let _ = self.cut();
        }
    }
}

// A recorder may move the writer to a blocking thread, and a reader to a replay task.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Writer>();
    send::<super::Reader>();
};
