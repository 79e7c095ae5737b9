//! Items → columns.

use std::net::{IpAddr, SocketAddr};

use super::{Col, NCOLS, TaskKey, kind};
use crate::{
    event::{CallKind, Event, EventKind, TwOp},
    record::{
        codec::{put_ivar, put_uvar},
        intern::{Interner, MAX_TABLE},
    },
};

/// An IP address as the recording writes it: family and bytes, in one word that compares and
/// hashes at once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
struct IpKey(u128, bool);

impl IpKey {
    #[inline]
    fn of(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey(u32::from(v4).into(), false),
            IpAddr::V6(v6) => IpKey(u128::from(v6), true),
        }
    }
}

/// A 4-tuple as the recording writes it (families, IPs, ports: `SocketAddrV6`'s flow info and
/// scope id are not recorded, so they are not compared either), packed into five words: the
/// interner's scan compares the first word and nearly always stops there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
struct TupleKey([u64; 5]);

impl TupleKey {
    #[inline]
    fn of(local: SocketAddr, remote: SocketAddr) -> TupleKey {
        let (l, r) = (IpKey::of(local.ip()), IpKey::of(remote.ip()));
        let ports = u64::from(local.port()) << 16 | u64::from(remote.port());
        let meta = ports << 2 | u64::from(l.1) << 1 | u64::from(r.1);
        // Ports first: they differ between the connections of one pool.
        TupleKey([
            meta ^ (l.0 as u64) << 34,
            (l.0 >> 64) as u64,
            l.0 as u64,
            (r.0 >> 64) as u64,
            r.0 as u64,
        ])
    }
}

/// Builds one chunk's payload, item by item.
#[derive(Default)]
pub(crate) struct ChunkEncoder {
    cols: [Vec<u8>; NCOLS],
    netns: Interner<u32>,
    tasks: Interner<TaskKey>,
    sks: Interner<u64>,
    tuples: Interner<TupleKey>,
    ips: Interner<IpKey>,
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
        let code = self.ips.code(IpKey::of(a.ip()));
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
        let code = self.tuples.code(TupleKey::of(local, remote));
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
        let code = self.tasks.code((t.pid, t.tid, t.ppid, t.comm.0, t.cgroup));
        put_uvar(self.col(Col::Task), code);
        if code == 0 {
            let c = self.col(Col::TaskNew);
            put_uvar(c, t.pid.into());
            put_uvar(c, t.tid.into());
            put_uvar(c, t.ppid.into());
            let n = 16 - t.comm.0.iter().rev().take_while(|&&b| b == 0).count();
            c.push(n as u8);
            c.extend_from_slice(&t.comm.0[..n]);
            put_uvar(self.col(Col::TaskCgroup), t.cgroup);
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
