//! The payload of a data chunk: items (events and context records) in a columnar layout.
//!
//! Each field goes to its own column (a byte stream), so that zstd sees runs of similar
//! bytes: kinds next to kinds, timestamp deltas next to timestamp deltas. Repeated values
//! (namespaces, tasks, sockets, 4-tuples, addresses) are interned per chunk (see `intern`),
//! so a chunk decodes on its own, without any earlier chunk. The byte layout is specified
//! in docs/recording-format.md; `Col` lists the columns in their file order.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use super::{
    Item,
    codec::{ChunkError, Cursor, bad, put_ivar, put_uvar},
    context::ContextRecord,
    intern::{Interner, MAX_TABLE, Table},
};
use crate::event::{
    CallKind, Comm, Errno, Event, EventKind, SockCall, StateChange, Task, TcpState, TimeWait, TwOp,
};

/// Item kinds, the values of the `kind` column.
pub(crate) mod kind {
    pub const STATE: u8 = 0;
    pub const CALL: u8 = 1;
    pub const TIMEWAIT: u8 = 2;
    pub const CONTEXT: u8 = 3;
}

/// The columns, in file order. New columns may only be appended (see the versioning rules).
#[derive(Clone, Copy)]
#[repr(usize)]
enum Col {
    Kind,
    Detail,
    Ts,
    Netns,
    NetnsNew,
    Task,
    TaskNew,
    Sk,
    SkNew,
    Tuple,
    Ip,
    IpNew,
    Port,
    Fd,
    Errno,
    Jiffies,
    Context,
}

const NCOLS: usize = 17;

pub(crate) const COLUMN_NAMES: [&str; NCOLS] = [
    "kind",
    "detail",
    "ts",
    "netns",
    "netns_new",
    "task",
    "task_new",
    "sk",
    "sk_new",
    "tuple",
    "ip",
    "ip_new",
    "port",
    "fd",
    "errno",
    "jiffies",
    "context",
];

/// A task as interned: pid, tid, ppid, comm.
type TaskKey = (u32, u32, u32, [u8; 16]);

/// Builds one chunk's payload, item by item.
#[derive(Default)]
pub(crate) struct ChunkEncoder {
    cols: [Vec<u8>; NCOLS],
    netns: Interner<u32>,
    tasks: Interner<TaskKey>,
    sks: Interner<u64>,
    tuples: Interner<(SocketAddr, SocketAddr)>,
    ips: Interner<IpAddr>,
    prev_ts: u64,
    prev_sk: u64,
    pub(crate) items: u32,
    pub(crate) events: u32,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
}

impl ChunkEncoder {
    #[inline]
    fn col(&mut self, c: Col) -> &mut Vec<u8> {
        &mut self.cols[c as usize]
    }

    /// Bytes buffered so far (the payload before compression, less a few header bytes).
    pub(crate) fn raw_len(&self) -> usize {
        self.cols.iter().map(Vec::len).sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items == 0
    }

    fn sk(&mut self, sk: u64) {
        let code = self.sks.code(sk);
        put_uvar(self.col(Col::Sk), code);
        if code == 0 {
            // Slab addresses: the difference to the previous new one is smaller than 8 bytes.
            let d = sk.wrapping_sub(self.prev_sk) as i64;
            put_ivar(self.col(Col::SkNew), d);
            self.prev_sk = sk;
        }
    }

    fn addr(&mut self, a: SocketAddr) {
        let code = self.ips.code(a.ip());
        put_uvar(self.col(Col::Ip), code);
        if code == 0 {
            let c = self.col(Col::IpNew);
            match a.ip() {
                IpAddr::V4(ip) => {
                    c.push(4);
                    c.extend_from_slice(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    c.push(6);
                    c.extend_from_slice(&ip.octets());
                }
            }
        }
        self.col(Col::Port)
            .extend_from_slice(&a.port().to_be_bytes());
    }

    fn tuple(&mut self, local: SocketAddr, remote: SocketAddr) {
        let code = self.tuples.code((local, remote));
        put_uvar(self.col(Col::Tuple), code);
        if code == 0 {
            self.addr(local);
            self.addr(remote);
        }
    }

    pub(crate) fn push_event(&mut self, e: &Event) {
        let (k, detail) = match &e.kind {
            EventKind::State(s) => (kind::STATE, (s.old as u8) << 4 | s.new as u8),
            EventKind::Call(c) => (
                kind::CALL,
                (c.call == CallKind::Bind) as u8
                    | (c.sk.is_some() as u8) << 1
                    | (c.error.is_some() as u8) << 2
                    | (c.bound_port.is_some() as u8) << 3,
            ),
            EventKind::TimeWait(t) => (
                kind::TIMEWAIT,
                match t.op {
                    TwOp::Start => 0,
                    TwOp::Cancel => 1,
                    TwOp::Expire => 2,
                } | (t.substate as u8) << 2,
            ),
        };
        self.col(Col::Kind).push(k);
        self.col(Col::Detail).push(detail);
        let d = e.ts_ns.wrapping_sub(self.prev_ts) as i64;
        put_ivar(self.col(Col::Ts), d);
        self.prev_ts = e.ts_ns;
        if self.events == 0 {
            (self.min_ts, self.max_ts) = (e.ts_ns, e.ts_ns);
        } else {
            self.min_ts = self.min_ts.min(e.ts_ns);
            self.max_ts = self.max_ts.max(e.ts_ns);
        }

        let code = self.netns.code(e.netns);
        put_uvar(self.col(Col::Netns), code);
        if code == 0 {
            put_uvar(self.col(Col::NetnsNew), e.netns.into());
        }
        let t = &e.task;
        let code = self.tasks.code((t.pid, t.tid, t.ppid, t.comm.0));
        put_uvar(self.col(Col::Task), code);
        if code == 0 {
            let c = self.col(Col::TaskNew);
            put_uvar(c, t.pid.into());
            put_uvar(c, t.tid.into());
            put_uvar(c, t.ppid.into());
            let n = 16 - t.comm.0.iter().rev().take_while(|&&b| b == 0).count();
            c.push(n as u8);
            c.extend_from_slice(&t.comm.0[..n]);
        }

        match &e.kind {
            EventKind::State(s) => {
                self.sk(s.sk);
                self.tuple(s.local, s.remote);
            }
            EventKind::Call(c) => {
                if let Some(sk) = c.sk {
                    self.sk(sk);
                }
                put_ivar(self.col(Col::Fd), c.fd.into());
                self.addr(c.addr);
                if let Some(err) = c.error {
                    put_ivar(self.col(Col::Errno), err.0.into());
                }
                if let Some(p) = c.bound_port {
                    self.col(Col::Port).extend_from_slice(&p.to_be_bytes());
                }
            }
            EventKind::TimeWait(t) => {
                self.sk(t.tw);
                self.tuple(t.local, t.remote);
                put_ivar(self.col(Col::Jiffies), t.remaining_jiffies.into());
            }
        }
        self.items += 1;
        self.events += 1;
    }

    /// A context record: its type name and JSON (see `ContextRecord::body_json`).
    pub(crate) fn push_context(&mut self, kind_name: &str, json: &[u8]) {
        self.col(Col::Kind).push(kind::CONTEXT);
        let c = self.col(Col::Context);
        put_uvar(c, kind_name.len() as u64);
        c.extend_from_slice(kind_name.as_bytes());
        put_uvar(c, json.len() as u64);
        c.extend_from_slice(json);
        self.items += 1;
    }

    /// Whether a table is close to [`MAX_TABLE`]: the chunk must be cut.
    pub(crate) fn tables_full(&self) -> bool {
        let n = self
            .netns
            .len()
            .max(self.tasks.len())
            .max(self.sks.len())
            .max(self.tuples.len())
            .max(self.ips.len());
        n + 4 >= MAX_TABLE
    }

    /// Appends the payload to `out` and resets the encoder for the next chunk.
    pub(crate) fn finish_into(&mut self, out: &mut Vec<u8>) {
        put_uvar(out, self.items.into());
        put_uvar(out, self.events.into());
        put_uvar(out, NCOLS as u64);
        for c in &self.cols {
            put_uvar(out, c.len() as u64);
        }
        for c in &mut self.cols {
            out.extend_from_slice(c);
            c.clear();
        }
        self.netns.clear();
        self.tasks.clear();
        self.sks.clear();
        self.tuples.clear();
        self.ips.clear();
        self.prev_ts = 0;
        self.prev_sk = 0;
        self.items = 0;
        self.events = 0;
    }
}

/// Decodes one chunk's payload in batches: memory stays bounded by the payload and the
/// tables, however many items the payload packs.
pub(crate) struct ChunkReader {
    raw: Vec<u8>,
    /// (read position, end) of each column in `raw`.
    cols: [(usize, usize); NCOLS],
    dec: Decoder,
    left: u32,
    events: u32,
    seen_events: u32,
}

impl ChunkReader {
    /// Parses the payload's header; `items` is the count from the chunk's frame.
    pub(crate) fn new(raw: Vec<u8>, items: u32) -> Result<ChunkReader, ChunkError> {
        let mut head = Cursor::new(&raw, "chunk header");
        let n_items = head.u32var()?;
        let events = head.u32var()?;
        if n_items != items {
            return bad(format!("{n_items} items, the frame says {items}"));
        }
        if events > items {
            return bad(format!("{events} events in {items} items"));
        }
        let ncols = head.uvar()?;
        if !(NCOLS as u64..=4096).contains(&ncols) {
            return bad(format!("{ncols} columns, expected at least {NCOLS}"));
        }
        let mut lens = Vec::with_capacity(ncols as usize);
        for _ in 0..ncols {
            lens.push(head.uvar()?);
        }
        let mut at = raw.len() - head.rest().len();
        let mut cols = [(0, 0); NCOLS];
        for (i, &len) in lens.iter().enumerate() {
            let left = raw.len() - at;
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > left {
                return bad(format!("column {i} of {len} bytes overruns the chunk"));
            }
            // Columns past NCOLS come from a newer minor version: skipped.
            if i < NCOLS {
                cols[i] = (at, at + len);
            }
            at += len;
        }
        if at != raw.len() {
            return bad(format!("{} bytes after the last column", raw.len() - at));
        }
        Ok(ChunkReader {
            raw,
            cols,
            dec: Decoder::default(),
            left: items,
            events,
            seen_events: 0,
        })
    }

    /// Items not decoded yet.
    pub(crate) fn left(&self) -> u32 {
        self.left
    }

    /// Decodes up to `max` items into `out`. After the last one, checks the event count
    /// and that every column was used up.
    pub(crate) fn decode(
        &mut self,
        max: usize,
        out: &mut VecDeque<Item>,
    ) -> Result<(), ChunkError> {
        let ChunkReader { raw, cols, dec, .. } = self;
        let mut cur: [Cursor; NCOLS] =
            std::array::from_fn(|i| Cursor::new(&raw[cols[i].0..cols[i].1], COLUMN_NAMES[i]));
        let n = (self.left as usize).min(max);
        let mut result = Ok(());
        for _ in 0..n {
            match dec.item(&mut cur) {
                Ok(item) => {
                    self.seen_events += matches!(item, Item::Event(_)) as u32;
                    self.left -= 1;
                    out.push_back(item);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        for (c, cur) in cols.iter_mut().zip(&cur) {
            c.0 += cur.pos();
        }
        result?;
        if self.left == 0 {
            if self.seen_events != self.events {
                return bad(format!(
                    "{} events, the chunk header says {}",
                    self.seen_events, self.events
                ));
            }
            if let Some(c) = self.cols.iter().position(|c| c.0 != c.1) {
                return bad(format!("column {} has bytes left over", COLUMN_NAMES[c]));
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Decoder {
    netns: Table<u32>,
    tasks: Table<Task>,
    sks: Table<u64>,
    tuples: Table<(SocketAddr, SocketAddr)>,
    ips: Table<IpAddr>,
    prev_ts: u64,
    prev_sk: u64,
}

fn state(v: u8) -> Result<TcpState, ChunkError> {
    TcpState::try_from(v).or_else(|v| bad(format!("unknown TCP state {v}")))
}

impl Decoder {
    fn sk(&mut self, cols: &mut [Cursor; NCOLS]) -> Result<u64, ChunkError> {
        let code = cols[Col::Sk as usize].uvar()?;
        if let Some(sk) = self.sks.resolve(code, "socket")? {
            return Ok(sk);
        }
        let d = cols[Col::SkNew as usize].ivar()?;
        let sk = self.prev_sk.wrapping_add(d as u64);
        self.prev_sk = sk;
        self.sks.add(sk)?;
        Ok(sk)
    }

    fn addr(&mut self, cols: &mut [Cursor; NCOLS]) -> Result<SocketAddr, ChunkError> {
        let code = cols[Col::Ip as usize].uvar()?;
        let ip = match self.ips.resolve(code, "address")? {
            Some(ip) => ip,
            None => {
                let c = &mut cols[Col::IpNew as usize];
                let ip = match c.u8()? {
                    4 => IpAddr::V4(Ipv4Addr::from(c.array::<4>()?)),
                    6 => IpAddr::V6(Ipv6Addr::from(c.array::<16>()?)),
                    f => return bad(format!("unknown address family tag {f}")),
                };
                self.ips.add(ip)?;
                ip
            }
        };
        let port = u16::from_be_bytes(cols[Col::Port as usize].array()?);
        Ok(SocketAddr::new(ip, port))
    }

    fn tuple(
        &mut self,
        cols: &mut [Cursor; NCOLS],
    ) -> Result<(SocketAddr, SocketAddr), ChunkError> {
        let code = cols[Col::Tuple as usize].uvar()?;
        if let Some(t) = self.tuples.resolve(code, "4-tuple")? {
            return Ok(t);
        }
        let t = (self.addr(cols)?, self.addr(cols)?);
        self.tuples.add(t)?;
        Ok(t)
    }

    fn task(&mut self, cols: &mut [Cursor; NCOLS]) -> Result<Task, ChunkError> {
        let code = cols[Col::Task as usize].uvar()?;
        if let Some(t) = self.tasks.resolve(code, "task")? {
            return Ok(t);
        }
        let c = &mut cols[Col::TaskNew as usize];
        let (pid, tid, ppid) = (c.u32var()?, c.u32var()?, c.u32var()?);
        let n = c.u8()? as usize;
        if n > 16 {
            return bad(format!("comm of {n} bytes"));
        }
        let mut comm = [0u8; 16];
        comm[..n].copy_from_slice(c.bytes(n)?);
        let t = Task {
            pid,
            tid,
            ppid,
            comm: Comm(comm),
        };
        self.tasks.add(t)?;
        Ok(t)
    }

    fn item(&mut self, cols: &mut [Cursor; NCOLS]) -> Result<Item, ChunkError> {
        let k = cols[Col::Kind as usize].u8()?;
        if k == kind::CONTEXT {
            let c = &mut cols[Col::Context as usize];
            let len = usize::try_from(c.uvar()?).unwrap_or(usize::MAX);
            if len > 64 {
                return bad(format!("context type name of {len} bytes"));
            }
            let name = std::str::from_utf8(c.bytes(len)?)
                .or_else(|_| bad("context type name is not UTF-8"))?;
            let len = usize::try_from(c.uvar()?).unwrap_or(usize::MAX);
            let json = c.bytes(len)?;
            return ContextRecord::from_parts(name, json)
                .map(Item::Context)
                .map_err(ChunkError);
        }
        if k > kind::CONTEXT {
            return bad(format!("unknown item kind {k}"));
        }
        let detail = cols[Col::Detail as usize].u8()?;
        let d = cols[Col::Ts as usize].ivar()?;
        let ts_ns = self.prev_ts.wrapping_add(d as u64);
        self.prev_ts = ts_ns;
        let code = cols[Col::Netns as usize].uvar()?;
        let netns = match self.netns.resolve(code, "netns")? {
            Some(n) => n,
            None => {
                let n = cols[Col::NetnsNew as usize].u32var()?;
                self.netns.add(n)?;
                n
            }
        };
        let task = self.task(cols)?;
        let kind = match k {
            kind::STATE => {
                let sk = self.sk(cols)?;
                let (local, remote) = self.tuple(cols)?;
                EventKind::State(StateChange {
                    sk,
                    local,
                    remote,
                    old: state(detail >> 4)?,
                    new: state(detail & 0xf)?,
                })
            }
            kind::CALL => {
                if detail & !0xf != 0 {
                    return bad(format!("call flags {detail:#x}"));
                }
                let sk = if detail & 2 != 0 {
                    Some(self.sk(cols)?)
                } else {
                    None
                };
                let fd = cols[Col::Fd as usize].i32var()?;
                let addr = self.addr(cols)?;
                let error = match detail & 4 {
                    0 => None,
                    _ => Some(Errno(cols[Col::Errno as usize].i32var()?)),
                };
                let bound_port = match detail & 8 {
                    0 => None,
                    _ => Some(u16::from_be_bytes(cols[Col::Port as usize].array()?)),
                };
                EventKind::Call(SockCall {
                    call: if detail & 1 != 0 {
                        CallKind::Bind
                    } else {
                        CallKind::Connect
                    },
                    sk,
                    fd,
                    addr,
                    error,
                    bound_port,
                })
            }
            _ => {
                let op = match detail & 3 {
                    0 => TwOp::Start,
                    1 => TwOp::Cancel,
                    2 => TwOp::Expire,
                    _ => return bad("timewait operation 3"),
                };
                let tw = self.sk(cols)?;
                let (local, remote) = self.tuple(cols)?;
                EventKind::TimeWait(TimeWait {
                    tw,
                    local,
                    remote,
                    op,
                    substate: state(detail >> 2)?,
                    remaining_jiffies: cols[Col::Jiffies as usize].i32var()?,
                })
            }
        };
        Ok(Item::Event(Event {
            ts_ns,
            netns,
            task,
            kind,
        }))
    }
}
