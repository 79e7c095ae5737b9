//! Per-chunk dictionaries with a move-to-front list of recent entries.
//!
//! A value (a socket address, a 4-tuple, a task, a namespace) is written in full the first
//! time a chunk uses it; after that it is a small code:
//!
//! - `0`: a new value follows in the column's "new values" stream and joins the table;
//! - `1..=RECENT`: the value at that position of the move-to-front list (1 = last used);
//! - `RECENT + 1 + i`: entry `i` of the table.
//!
//! Connection churn touches a handful of sockets at a time, so most codes are 1-4: one byte
//! that zstd squeezes further. The decoder mirrors the encoder step by step.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::codec::{ChunkError, bad};

/// Length of the move-to-front list.
pub(crate) const RECENT: usize = 16;

/// Most entries a table may have: the writer cuts the chunk before, the reader refuses more,
/// so that a crafted chunk cannot make the tables take much memory.
pub(crate) const MAX_TABLE: usize = 1 << 18;

/// The move-to-front list: table indices, most recent first.
#[derive(Default)]
struct Recent {
    idx: [u32; RECENT],
    len: usize,
}

impl Recent {
    /// Moves position `p` to the front.
    #[inline]
    fn promote(&mut self, p: usize) {
        let i = self.idx[p];
        self.idx.copy_within(0..p, 1);
        self.idx[0] = i;
    }

    /// Puts a table index that is not in the list at the front, dropping the oldest.
    #[inline]
    fn push_front(&mut self, i: u32) {
        let n = self.len.min(RECENT - 1);
        self.idx.copy_within(0..n, 1);
        self.idx[0] = i;
        self.len = (self.len + 1).min(RECENT);
    }
}

/// The encoder's move-to-front list holds the values themselves (not table indices), so that
/// the scan that finds most values compares keys in one small array, without an indirection
/// per entry.
struct RecentKeys<K> {
    keys: [K; RECENT],
    idx: [u32; RECENT],
    len: usize,
}

/// Encoder side: value → code.
pub(crate) struct Interner<K> {
    /// Entries in the table (the values themselves live in `map` and, if recent, `recent`).
    len: u32,
    map: FxHashMap<K, u32>,
    recent: RecentKeys<K>,
}

impl<K: Copy + Eq + Hash + Default> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            len: 0,
            map: FxHashMap::default(),
            recent: RecentKeys {
                keys: [K::default(); RECENT],
                idx: [0; RECENT],
                len: 0,
            },
        }
    }
}

impl<K: Copy + Eq + Hash + Default> Interner<K> {
    /// The code for `k`; 0 means new: the caller writes the value itself.
    #[inline]
    pub(crate) fn code(&mut self, k: K) -> u64 {
        let r = &mut self.recent;
        if let Some(p) = r.keys[..r.len].iter().position(|x| *x == k) {
            // Move to the front: the decoder's list does the same (`Recent::promote`).
            let i = r.idx[p];
            r.keys.copy_within(0..p, 1);
            r.idx.copy_within(0..p, 1);
            r.keys[0] = k;
            r.idx[0] = i;
            return p as u64 + 1;
        }
        if let Some(&i) = self.map.get(&k) {
            self.push_front(k, i);
            return (RECENT + 1) as u64 + u64::from(i);
        }
        let i = self.len;
        self.len += 1;
        self.map.insert(k, i);
        self.push_front(k, i);
        0
    }

    /// Puts a value that is not in the list at the front, dropping the oldest
    /// (`Recent::push_front`).
    #[inline]
    fn push_front(&mut self, k: K, i: u32) {
        let r = &mut self.recent;
        let n = r.len.min(RECENT - 1);
        r.keys.copy_within(0..n, 1);
        r.idx.copy_within(0..n, 1);
        r.keys[0] = k;
        r.idx[0] = i;
        r.len = (r.len + 1).min(RECENT);
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.map.clear();
        self.recent.len = 0;
    }
}

/// Decoder side: code → value.
pub(crate) struct Table<K> {
    values: Vec<K>,
    recent: Recent,
}

impl<K: Copy> Default for Table<K> {
    fn default() -> Self {
        Table {
            values: Vec::new(),
            recent: Recent::default(),
        }
    }
}

impl<K: Copy> Table<K> {
    /// `Ok(None)` for code 0: the caller reads the new value and calls [`Table::add`].
    #[inline]
    pub(crate) fn resolve(&mut self, code: u64, what: &str) -> Result<Option<K>, ChunkError> {
        if code == 0 {
            return Ok(None);
        }
        if code <= RECENT as u64 {
            let p = code as usize - 1;
            if p >= self.recent.len {
                return bad(format!(
                    "{what} code {code}: only {} recent",
                    self.recent.len
                ));
            }
            let i = self.recent.idx[p];
            self.recent.promote(p);
            return Ok(Some(self.values[i as usize]));
        }
        let i = code - RECENT as u64 - 1;
        match self.values.get(i as usize) {
            Some(&v) => {
                self.recent.push_front(i as u32);
                Ok(Some(v))
            }
            None => bad(format!(
                "{what} code {code}: table has {} entries",
                self.values.len()
            )),
        }
    }

    #[inline]
    pub(crate) fn add(&mut self, v: K) -> Result<(), ChunkError> {
        if self.values.len() >= MAX_TABLE {
            return bad(format!("more than {MAX_TABLE} table entries"));
        }
        let i = self.values.len() as u32;
        self.values.push(v);
        self.recent.push_front(i);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_mirrors_encoder() {
        let mut enc = Interner::<u64>::default();
        let mut dec = Table::<u64>::default();
        // Recent hits, table hits past the recent list, and new values, interleaved.
        let seq: Vec<u64> = (0..400u64)
            .map(|i| {
                if i % 2 == 0 {
                    i % 5
                } else {
                    100 + (i * 7919) % 37
                }
            })
            .collect();
        let mut codes = Vec::new();
        for &v in &seq {
            codes.push(enc.code(v));
        }
        for (&v, &c) in seq.iter().zip(&codes) {
            match dec.resolve(c, "t").unwrap() {
                Some(got) => assert_eq!(got, v),
                None => dec.add(v).unwrap(),
            }
        }
        assert!(
            codes.iter().any(|&c| c > RECENT as u64),
            "table hits exercised"
        );
        assert!(codes.iter().any(|&c| (1..=RECENT as u64).contains(&c)));
    }

    #[test]
    fn bad_codes_are_errors() {
        let mut dec = Table::<u64>::default();
        assert!(dec.resolve(1, "t").is_err());
        assert!(dec.resolve(RECENT as u64 + 1, "t").is_err());
        assert!(dec.resolve(u64::MAX, "t").is_err());
        dec.add(5).unwrap();
        assert_eq!(dec.resolve(1, "t"), Ok(Some(5)));
        assert_eq!(dec.resolve(RECENT as u64 + 1, "t"), Ok(Some(5)));
    }
}
