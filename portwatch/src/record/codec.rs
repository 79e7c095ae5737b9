//! Varints and a bounds-checked cursor: the primitives of the chunk encoding.
//!
//! Unsigned integers are LEB128 (7 bits a byte, low first); signed ones are zigzag-mapped
//! first so that small negative deltas stay small. Every read checks its bounds and returns
//! an error naming the column, never panics.

use std::fmt;

/// An error inside one chunk's payload; the reader adds the file offset of the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub String);

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn bad<T>(msg: impl Into<String>) -> Result<T, ChunkError> {
    Err(ChunkError(msg.into()))
}

#[inline]
pub(crate) fn put_uvar(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub(crate) fn put_ivar(buf: &mut Vec<u8>, v: i64) {
    put_uvar(buf, zigzag(v));
}

/// Reads one column of a chunk.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    name: &'static str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8], name: &'static str) -> Self {
        Cursor { buf, pos: 0, name }
    }

    /// Bytes read so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos.min(self.buf.len())..]
    }

    fn ended(&self) -> ChunkError {
        ChunkError(format!(
            "column {} ends early (at byte {} of {})",
            self.name,
            self.pos,
            self.buf.len()
        ))
    }

    #[inline]
    pub(crate) fn u8(&mut self) -> Result<u8, ChunkError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.ended())?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    pub(crate) fn uvar(&mut self) -> Result<u64, ChunkError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        bad(format!(
            "column {}: varint longer than 64 bits at byte {}",
            self.name, self.pos
        ))
    }

    #[inline]
    pub(crate) fn ivar(&mut self) -> Result<i64, ChunkError> {
        self.uvar().map(unzigzag)
    }

    /// A varint that must fit a `u32`.
    pub(crate) fn u32var(&mut self) -> Result<u32, ChunkError> {
        let v = self.uvar()?;
        u32::try_from(v).or_else(|_| bad(format!("column {}: {v} exceeds 32 bits", self.name)))
    }

    /// A varint that must fit an `i32` (zigzag).
    pub(crate) fn i32var(&mut self) -> Result<i32, ChunkError> {
        let v = self.ivar()?;
        i32::try_from(v).or_else(|_| bad(format!("column {}: {v} exceeds 32 bits", self.name)))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.ended())?;
        let s = self.buf.get(self.pos..end).ok_or_else(|| self.ended())?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ChunkError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        let values = [
            0,
            1,
            127,
            128,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut buf = Vec::new();
        for v in values {
            put_uvar(&mut buf, v);
        }
        let signed = [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX];
        for v in signed {
            put_ivar(&mut buf, v);
        }
        let mut c = Cursor::new(&buf, "t");
        for v in values {
            assert_eq!(c.uvar(), Ok(v));
        }
        for v in signed {
            assert_eq!(c.ivar(), Ok(v));
        }
        assert!(c.rest().is_empty());
        assert!(c.uvar().is_err());
    }

    #[test]
    fn overlong_varints_are_errors() {
        let mut c = Cursor::new(&[0xff; 11], "t");
        assert!(c.uvar().is_err());
        // Ten bytes whose last carries more than the 64th bit.
        let mut b = [0xffu8; 10];
        b[9] = 0x02;
        assert!(Cursor::new(&b, "t").uvar().is_err());
        b[9] = 0x01;
        assert_eq!(Cursor::new(&b, "t").uvar(), Ok(u64::MAX));
    }

    #[test]
    fn byte_reads_check_bounds() {
        let mut c = Cursor::new(&[1, 2, 3], "t");
        assert!(c.bytes(usize::MAX).is_err());
        assert_eq!(c.array::<2>(), Ok([1, 2]));
        assert!(c.array::<2>().is_err());
    }
}
