//! Columns → items, a batch at a time, every read bounds-checked.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use super::{COLUMN_NAMES, Col, NCOLS, NCOLS_1_0, kind};
use crate::{
    event::{
        CallKind, Comm, Errno, Event, EventKind, SockCall, StateChange, Task, TcpState, TimeWait,
        TwOp,
    },
    record::{
        Item,
        codec::{ChunkError, Cursor, bad},
        context::ContextRecord,
        intern::Table,
    },
};

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
        if !(NCOLS_1_0 as u64..=4096).contains(&ncols) {
            return bad(format!("{ncols} columns, expected at least {NCOLS_1_0}"));
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
            dec: Decoder {
                task_cgroups: ncols as usize > Col::TaskCgroup as usize,
                ..Decoder::default()
            },
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
    /// The chunk has the `task_cgroup` column (1.1 and later).
    task_cgroups: bool,
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
        let cgroup = if self.task_cgroups {
            cols[Col::TaskCgroup as usize].uvar()?
        } else {
            0
        };
        let t = Task {
            cgroup,
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
