//! Tracked sockets: one compact record per socket in a slab, found by kernel address (`sk`,
//! the identity every later event carries) and by namespace + 4-tuple (how TIME_WAIT and
//! snapshot sockets are matched). Both indexes store only a `u32` slot number
//! (`hashbrown::HashTable`), so a tracked socket costs its 72-byte record plus ~10 bytes of
//! index at full load.

use hashbrown::HashTable;
use serde::Serialize;

use super::addr::{Tuple, hash_sk};
use crate::event::TcpState;

/// "No id" for `owner`/`link` fields.
pub(crate) const NONE: u32 = u32::MAX;

/// What a socket is to the model, which decides where it is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Role {
    /// Made by `connect()`: takes an ephemeral port in its pool.
    Outbound,
    /// Accepted from a listener: uses the listener's port, takes no ephemeral port.
    Inbound,
    Listener,
    /// Bound (`bind()`), neither connected nor listening yet.
    Bound,
}

/// Which side closed the connection first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Closer {
    /// Not closing (or not known).
    None,
    /// This host sent the first FIN (ESTABLISHED → FIN_WAIT1): it gets the TIME_WAIT.
    Local,
    /// The peer did (ESTABLISHED → CLOSE_WAIT).
    Remote,
    /// Aborted: straight to CLOSE without FINs (RST, `SO_LINGER` 0); no TIME_WAIT.
    Reset,
}

pub(crate) mod flag {
    /// Counted in totals, pools, links (false for a socket that handed its 4-tuple to a
    /// timewait socket and only waits for its own CLOSE).
    pub const COUNTED: u16 = 1;
    /// A timewait socket (`sk` is the `inet_timewait_sock`).
    pub const TW: u16 = 2;
    /// Holds its local port through `bind()`/`listen()`: the port leaves every pool.
    pub const BOUND_PORT: u16 = 4;
    /// Takes one of its pool's usable ports (port in the connect range, not bind-held).
    pub const CONSUMES: u16 = 8;
    /// Came from a snapshot: its age is a lower bound.
    pub const SNAPSHOT: u16 = 16;
    /// Timewait timer cancelled early; ends unless re-armed at once.
    pub const TW_CANCEL: u16 = 32;
    pub const IN_SK: u16 = 64;
    pub const IN_TUPLE: u16 = 128;
    /// Slot is free.
    pub const FREE: u16 = 256;
    /// Its port came from `bind()` to port 0 (kernel's choice) before `connect()`, without
    /// `IP_BIND_ADDRESS_NO_PORT`: bind-before-connect, the port is gone for every pool.
    pub const BIND_ANY: u16 = 512;
    /// Indexed among the sockets without a kernel address (`SockTable::find_unadopted`).
    pub const IN_NO_SK: u16 = 1024;
}

/// One tracked socket (72 bytes).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sock {
    /// Kernel address (`sk`, or the timewait socket's); 0 when unknown (snapshot).
    pub sk: u64,
    /// When it entered its current state (CLOCK_MONOTONIC ns).
    pub since_ns: u64,
    pub tuple: Tuple,
    /// Process id in the model's process table, or [`NONE`].
    pub owner: u32,
    /// Outbound/Inbound: link id (owner×pool or listener×remote IP); Listener: listener id.
    pub link: u32,
    pub flags: u16,
    /// Index of the network namespace in the model.
    pub ns: u16,
    pub state: TcpState,
    pub role: Role,
    pub closer: Closer,
}

const _: () = assert!(size_of::<Sock>() <= 72);

impl Sock {
    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }
}

#[derive(Default)]
pub(crate) struct SockTable {
    slots: Vec<Sock>,
    free: Vec<u32>,
    by_sk: HashTable<u32>,
    by_tuple: HashTable<u32>,
    /// The sockets of `by_tuple` without a kernel address (from a snapshot, not yet adopted by
    /// an event): few, and asked about on every new connection and timewait socket.
    no_sk: HashTable<u32>,
    live: usize,
    hand: usize,
}

impl SockTable {
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn get(&self, i: u32) -> &Sock {
        &self.slots[i as usize]
    }

    pub fn get_mut(&mut self, i: u32) -> &mut Sock {
        &mut self.slots[i as usize]
    }

    /// Heap bytes held (records, free list, both indexes), for the memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Sock>()
            + self.free.capacity() * 4
            + (self.by_sk.capacity() + self.by_tuple.capacity() + self.no_sk.capacity()) * 5
    }

    pub fn insert(&mut self, mut s: Sock) -> u32 {
        s.flags &= !(flag::IN_SK | flag::IN_TUPLE | flag::IN_NO_SK | flag::FREE);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = s;
                i
            }
            None => {
                self.slots.push(s);
                (self.slots.len() - 1) as u32
            }
        };
        self.live += 1;
        self.index(i);
        i
    }

    /// Indexes a socket by whatever it has: `sk` if known, 4-tuple once the local port is.
    fn index(&mut self, i: u32) {
        let slots = &self.slots;
        let s = &slots[i as usize];
        let mut add = 0;
        if s.sk != 0 && !s.has(flag::IN_SK) {
            self.by_sk
                .insert_unique(hash_sk(s.sk), i, |&j| hash_sk(slots[j as usize].sk));
            add |= flag::IN_SK;
        }
        if s.tuple.lport != 0 && !s.has(flag::IN_TUPLE) {
            self.by_tuple
                .insert_unique(s.tuple.hash(), i, |&j| slots[j as usize].tuple.hash());
            add |= flag::IN_TUPLE;
        }
        if s.sk == 0 && s.tuple.lport != 0 && !s.has(flag::IN_NO_SK) {
            self.no_sk
                .insert_unique(s.tuple.hash(), i, |&j| slots[j as usize].tuple.hash());
            add |= flag::IN_NO_SK;
        }
        self.slots[i as usize].flags |= add;
    }

    fn unindex(&mut self, i: u32) {
        let s = self.slots[i as usize];
        if s.has(flag::IN_SK)
            && let Ok(e) = self.by_sk.find_entry(hash_sk(s.sk), |&j| j == i)
        {
            e.remove();
        }
        if s.has(flag::IN_TUPLE)
            && let Ok(e) = self.by_tuple.find_entry(s.tuple.hash(), |&j| j == i)
        {
            e.remove();
        }
        if s.has(flag::IN_NO_SK)
            && let Ok(e) = self.no_sk.find_entry(s.tuple.hash(), |&j| j == i)
        {
            e.remove();
        }
        self.slots[i as usize].flags &= !(flag::IN_SK | flag::IN_TUPLE | flag::IN_NO_SK);
    }

    pub fn remove(&mut self, i: u32) -> Sock {
        self.unindex(i);
        let s = self.slots[i as usize];
        self.slots[i as usize].flags = flag::FREE;
        self.free.push(i);
        self.live -= 1;
        s
    }

    pub fn find_sk(&self, sk: u64) -> Option<u32> {
        let slots = &self.slots;
        self.by_sk
            .find(hash_sk(sk), |&j| slots[j as usize].sk == sk)
            .copied()
    }

    pub fn find_tuple(&self, t: &Tuple, pred: impl Fn(&Sock) -> bool) -> Option<u32> {
        self.find_tuple_idx(t, |_, s| pred(s))
    }

    /// Like [`Self::find_tuple`], the predicate also seeing the slot number.
    pub fn find_tuple_idx(&self, t: &Tuple, pred: impl Fn(u32, &Sock) -> bool) -> Option<u32> {
        let slots = &self.slots;
        self.by_tuple
            .find(t.hash(), |&j| {
                let s = &slots[j as usize];
                s.tuple == *t && pred(j, s)
            })
            .copied()
    }

    /// Like [`Self::find_tuple`], among the sockets without a kernel address only (the same
    /// answer as `find_tuple` with `sk == 0` in the predicate, from a much smaller index).
    pub fn find_no_sk(&self, t: &Tuple, pred: impl Fn(&Sock) -> bool) -> Option<u32> {
        if self.no_sk.is_empty() {
            return None;
        }
        let slots = &self.slots;
        self.no_sk
            .find(t.hash(), |&j| {
                let s = &slots[j as usize];
                s.tuple == *t && pred(s)
            })
            .copied()
    }

    /// Gives a socket a kernel address (adoption of a snapshot socket) or a new 4-tuple (the
    /// port `connect()` chose), re-indexing it.
    pub fn rekey(&mut self, i: u32, sk: u64, tuple: Tuple) {
        self.unindex(i);
        let s = &mut self.slots[i as usize];
        s.sk = sk;
        s.tuple = tuple;
        self.index(i);
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Sock)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.has(flag::FREE))
            .map(|(i, s)| (i as u32, s))
    }

    /// Picks a socket to evict when the table is full: a clock hand sweeps the slab and, within
    /// a short look-ahead, prefers what loses least information — a socket no longer counted,
    /// then a TIME_WAIT entry (it would expire within 60 s anyway), then anything but a
    /// listener or a bound socket (their ports leave every pool).
    pub fn victim(&mut self) -> Option<u32> {
        if self.live == 0 {
            return None;
        }
        let n = self.slots.len();
        let mut best: Option<(u8, u32)> = None;
        let mut seen = 0;
        let mut steps = 0;
        while seen < 64 && steps < n {
            let i = self.hand % n;
            self.hand = (self.hand + 1) % n;
            steps += 1;
            let s = &self.slots[i];
            if s.has(flag::FREE) {
                continue;
            }
            seen += 1;
            let rank = if !s.has(flag::COUNTED) {
                0
            } else if s.has(flag::TW) {
                1
            } else if matches!(s.role, Role::Outbound | Role::Inbound) {
                2
            } else {
                3
            };
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, i as u32));
            }
            if rank == 0 {
                break;
            }
        }
        best.map(|(_, i)| i)
    }
}
