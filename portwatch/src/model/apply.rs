//! State transitions and syscall results.
//!
//! Owner rules (docs/kernel-facts.md "What the tracepoint shows"): CLOSE → SYN_SENT,
//! CLOSE → LISTEN, `bind()`, a failed `connect()` and one in progress (`EINPROGRESS`, which
//! also tells the source port) run in the caller's context and set the owner; every other
//! transition runs in softirq context and never changes it.

use super::{
    Model, NOPORT_SLOTS, NS,
    addr::{Ip, Tuple},
    socket::{Closer, NONE, Role, Sock, flag},
};
use crate::event::{CallKind, Errno, Event, SockCall, StateChange, TcpState};

use TcpState::*;

impl Model {
    pub(super) fn on_state(&mut self, ev: &Event, s: &StateChange) {
        let tuple = Tuple::new(ev.netns, s.local, s.remote);
        match (s.old, s.new) {
            (Close, SynSent) => self.on_connect(ev, s.sk, tuple),
            (Close, Listen) => self.on_listen(ev, s.sk, tuple),
            (Listen, SynRecv) => self.on_child(ev, s.sk, tuple),
            _ => self.on_transition(ev, s, tuple),
        }
        if s.new == LastAck {
            self.peer_sent_fin(&tuple, ev.ts_ns);
        }
    }

    fn new_sock(&mut self, sk: u64, tuple: Tuple, state: TcpState, role: Role) -> Sock {
        Sock {
            sk,
            since_ns: self.now_ns,
            tuple,
            owner: NONE,
            link: NONE,
            flags: flag::COUNTED,
            ns: self.ns(tuple.netns),
            state,
            role,
            closer: Closer::None,
        }
    }

    /// `connect()`: the caller owns the socket. The source address is known, the port usually
    /// not yet (0: chosen right after this event); a non-zero port here was set by `bind()`.
    fn on_connect(&mut self, ev: &Event, sk: u64, tuple: Tuple) {
        self.make_room();
        let owner = self.owner_of(&ev.task);
        let mut bound = tuple.lport != 0;
        let mut bind_any = false;
        if let Some(i) = self.socks.find_sk(sk) {
            let old = *self.socks.get(i);
            if old.role == Role::Bound && old.tuple.lport == tuple.lport {
                bound = old.has(flag::BOUND_PORT);
                bind_any = old.has(flag::BIND_ANY);
            } else {
                self.counters.odd.stale_replaced += 1;
            }
            self.drop_sock(i);
        }
        let mut s = self.new_sock(sk, tuple, SynSent, Role::Outbound);
        s.owner = owner;
        s.link = self.out_link(owner, &tuple, s.ns);
        if bound {
            s.flags |= flag::BOUND_PORT;
        }
        if bind_any {
            s.flags |= flag::BIND_ANY;
        }
        if self.consumes(&s) {
            s.flags |= flag::CONSUMES;
        }
        let i = self.add(s);
        if owner != NONE {
            self.procs.get_mut(owner).connects += 1;
        }
        if let Some(p) = self.pool_of(self.socks.get(i)) {
            let sec = self.now_ns / NS;
            if let Some(slot) = self.pools.get_mut(p).rates.slot(sec) {
                slot.opened += 1;
            }
        }
    }

    /// Drops what the socket table still holds at `sk` before a new role takes it over: its
    /// own `bind()` (expected) or a stale socket whose end was missed (counted).
    fn replace_unless_bound(&mut self, sk: u64) {
        if let Some(i) = self.socks.find_sk(sk) {
            if self.socks.get(i).role != Role::Bound {
                self.counters.odd.stale_replaced += 1;
            }
            self.drop_sock(i);
        }
    }

    /// `listen()`: the caller owns the listener; its port leaves every pool.
    fn on_listen(&mut self, ev: &Event, sk: u64, tuple: Tuple) {
        self.make_room();
        let owner = self.owner_of(&ev.task);
        self.replace_unless_bound(sk);
        let mut s = self.new_sock(sk, tuple, Listen, Role::Listener);
        s.owner = owner;
        s.link = self.listener_entry(&tuple, owner);
        if tuple.lport != 0 {
            s.flags |= flag::BOUND_PORT;
        }
        self.add(s);
    }

    /// LISTEN → SYN_RECV: a new child socket, in softirq context. It inherits its listener's
    /// owner (matched by namespace + local address, wildcard listeners included).
    fn on_child(&mut self, ev: &Event, sk: u64, tuple: Tuple) {
        self.make_room();
        if let Some(i) = self.socks.find_sk(sk) {
            self.counters.odd.stale_replaced += 1;
            self.drop_sock(i);
        }
        if let Some(i) = self.find_unadopted(&tuple, false) {
            self.adopt(i, sk);
            self.set_state(i, SynRecv, ev.ts_ns);
            return;
        }
        let mut s = self.new_sock(sk, tuple, SynRecv, Role::Inbound);
        let l = match self.listeners.find_for(tuple.netns, tuple.lip, tuple.lport) {
            Some(l) => l,
            None => {
                self.counters.odd.accept_without_listener += 1;
                self.listener_entry(&tuple, NONE)
            }
        };
        let listener = self.listeners.get_mut(l);
        listener.accepted += 1;
        s.owner = listener.owner;
        s.link = self.in_link(l, tuple.rip);
        self.add(s);
    }

    fn on_transition(&mut self, ev: &Event, e: &StateChange, tuple: Tuple) {
        let i = match self.socks.find_sk(e.sk) {
            Some(i) => i,
            None => match self.find_unadopted(&tuple, false) {
                Some(i) => {
                    self.adopt(i, e.sk);
                    i
                }
                None => return self.on_unknown(e, tuple),
            },
        };
        let cur = *self.socks.get(i);
        if !cur.has(flag::COUNTED) {
            // Handed its 4-tuple to a timewait socket: only its own CLOSE is left to see.
            if e.new == Close {
                self.drop_sock(i);
            } else {
                self.socks.get_mut(i).state = e.new;
            }
            return;
        }
        if cur.state != e.old {
            self.counters.odd.state_mismatch += 1;
        }
        if cur.tuple.lport == 0 && tuple.lport != 0 {
            self.learn_port(i, tuple);
            self.note_chosen_port(i);
        }
        self.note_close(i, e.old, e.new);
        if e.new == Close {
            let s = *self.socks.get(i);
            if s.has(flag::CONSUMES) && s.tuple.lport != 0 {
                self.count_release(&s);
            }
            self.drop_sock(i);
        } else {
            self.set_state(i, e.new, ev.ts_ns);
        }
    }

    /// A socket seen for the first time mid-life: track it from here (owner unknown unless a
    /// listener gives one). A CLOSE of an unknown socket leaves nothing to track.
    fn on_unknown(&mut self, e: &StateChange, tuple: Tuple) {
        if e.new == Close {
            self.counters.odd.unknown_close += 1;
            return;
        }
        self.counters.odd.unknown_socket += 1;
        self.make_room();
        let mut s = self.new_sock(e.sk, tuple, e.new, Role::Outbound);
        let (role, owner, link) = self.classify(&tuple, s.ns);
        s.role = role;
        s.owner = owner;
        s.link = link;
        s.closer = match (e.old, e.new) {
            (Established, FinWait1) => Closer::Local,
            (Established, CloseWait) => Closer::Remote,
            _ => Closer::None,
        };
        if self.consumes(&s) {
            s.flags |= flag::CONSUMES;
        }
        self.add(s);
    }

    /// SYN_SENT → ESTABLISHED (or → CLOSE) reveals the port `connect()` picked.
    pub(super) fn learn_port(&mut self, i: u32, tuple: Tuple) {
        self.account(i, -1);
        let old = *self.socks.get(i);
        if old.has(flag::BOUND_PORT) {
            let ports = &mut self.netns[old.ns as usize].ports;
            ports.release(old.tuple.lport);
            ports.hold(tuple.lport);
        }
        self.socks.rekey(i, old.sk, tuple);
        let s = *self.socks.get(i);
        let consumes = self.consumes(&s);
        let m = self.socks.get_mut(i);
        m.flags = (m.flags & !flag::CONSUMES) | if consumes { flag::CONSUMES } else { 0 };
        self.account(i, 1);
        // A timewait socket with this 4-tuple whose timer was just cancelled was taken over
        // (tcp_tw_reuse): its end is a reuse.
        if let Some(j) = self
            .socks
            .find_tuple(&tuple, |s| s.has(flag::TW) && s.has(flag::TW_CANCEL))
        {
            self.end_tw(j, super::timewait::TwEnd::Reused);
        }
    }

    /// A port `connect()`'s own search just chose (the socket had none before): counted by
    /// parity in its pool, for the share of the parity the kernel scans second
    /// (docs/early-warning.md).
    fn note_chosen_port(&mut self, i: u32) {
        let s = *self.socks.get(i);
        if s.role != Role::Outbound {
            return;
        }
        if let Some(p) = self.pool_of(&s) {
            let sec = self.now_ns / NS;
            if let Some(slot) = self.pools.get_mut(p).rates.slot(sec) {
                slot.chosen[usize::from(s.tuple.lport & 1)] += 1;
            }
        }
    }

    /// Who closed first, and how connections end, per pool or listener.
    fn note_close(&mut self, i: u32, old: TcpState, new: TcpState) {
        let s = *self.socks.get(i);
        let closer = match (old, new) {
            (Established | SynRecv, FinWait1) => Some(Closer::Local),
            (Established, CloseWait) => Some(Closer::Remote),
            (Established | SynRecv, Close) => Some(Closer::Reset),
            _ => None,
        };
        if let Some(c) = closer {
            self.socks.get_mut(i).closer = c;
        }
        let Some(cs) = self.close_stats(&s) else {
            return;
        };
        match (old, new) {
            (Established | SynRecv, FinWait1) => cs.local_first += 1,
            (Established, CloseWait) => cs.remote_first += 1,
            (Established | SynRecv, Close) => cs.reset += 1,
            (FinWait1 | FinWait2 | Closing, Close) => cs.active_close_without_tw += 1,
            (SynSent, Close) if s.tuple.lport != 0 => cs.connect_aborted += 1,
            _ => {}
        }
        if (old, new) == (SynSent, Close) && s.tuple.lport == 0 {
            self.note_noport(&s);
        }
    }

    pub(super) fn close_stats(&mut self, s: &Sock) -> Option<&mut super::CloseStats> {
        if let Some(p) = self.pool_of(s) {
            return Some(&mut self.pools.get_mut(p).closes);
        }
        let l = self.listener_of(s)?;
        Some(&mut self.listeners.get_mut(l).closes)
    }

    pub(super) fn count_release(&mut self, s: &Sock) {
        if let Some(p) = self.pool_of(s) {
            let sec = self.now_ns / NS;
            if let Some(slot) = self.pools.get_mut(p).rates.slot(sec) {
                slot.released += 1;
            }
        }
    }

    /// SYN_SENT → CLOSE with source port 0: the port search failed (docs/kernel-facts.md). Remember
    /// the pool until `connect()` returns EADDRNOTAVAIL for this socket.
    fn note_noport(&mut self, s: &Sock) {
        let key = Model::pool_key(&s.tuple);
        if let Some(p) = self.pool_of(s) {
            let sec = self.now_ns / NS;
            if let Some(slot) = self.pools.get_mut(p).rates.slot(sec) {
                slot.failed += 1;
            }
        }
        if self.noport.len() < NOPORT_SLOTS {
            self.noport.push((s.sk, key));
        } else {
            self.noport[self.noport_pos] = (s.sk, key);
            self.noport_pos = (self.noport_pos + 1) % NOPORT_SLOTS;
        }
    }

    pub(super) fn on_call(&mut self, ev: &Event, c: &SockCall) {
        match (c.call, c.error) {
            (CallKind::Bind, None) => self.on_bind(ev, c),
            (_, Some(e)) => self.on_call_failed(ev, c, e),
            (CallKind::Connect, None) => self.on_connect_in_progress(ev, c),
        }
    }

    /// A non-blocking `connect()` returned `EINPROGRESS`: the port it chose, which the state
    /// transitions have not shown (SYN_SENT is traced before the port search) and, for a
    /// connect that never completes, never will. Still in the caller's context.
    fn on_connect_in_progress(&mut self, ev: &Event, c: &SockCall) {
        let (Some(sk), Some(port)) = (c.sk, c.bound_port) else {
            return;
        };
        let Some(i) = self.socks.find_sk(sk) else {
            return;
        };
        let s = *self.socks.get(i);
        if s.role != Role::Outbound || !s.has(flag::COUNTED) {
            return;
        }
        if s.tuple.lport == 0 {
            let tuple = Tuple {
                lport: port,
                ..s.tuple
            };
            self.learn_port(i, tuple);
            self.note_chosen_port(i);
        }
        if s.owner == NONE {
            let owner = self.owner_of(&ev.task);
            if owner != NONE {
                self.reown(i, owner);
            }
        }
    }

    /// A successful `bind()`: the socket holds its port (unless `IP_BIND_ADDRESS_NO_PORT`
    /// deferred the choice: port 0) for every pool until it closes.
    fn on_bind(&mut self, ev: &Event, c: &SockCall) {
        let Some(sk) = c.sk else {
            self.counters.odd.bind_without_sk += 1;
            return;
        };
        self.make_room();
        let owner = self.owner_of(&ev.task);
        self.replace_unless_bound(sk);
        let lip = Ip::new(c.addr.ip());
        let port = c.bound_port.unwrap_or(0);
        let tuple = Tuple {
            netns: ev.netns,
            lport: port,
            rport: 0,
            lip,
            rip: if lip.is_v4() { Ip::V4_ANY } else { Ip::V6_ANY },
        };
        let mut s = self.new_sock(sk, tuple, BoundInactive, Role::Bound);
        s.owner = owner;
        if port != 0 {
            s.flags |= flag::BOUND_PORT;
            if c.addr.port() == 0 {
                s.flags |= flag::BIND_ANY;
            }
        }
        self.add(s);
    }

    fn on_call_failed(&mut self, ev: &Event, c: &SockCall, errno: Errno) {
        let owner = self.owner_of(&ev.task);
        if owner != NONE {
            self.procs.get_mut(owner).failures += 1;
        }
        let mut src = None;
        let mut pool = None;
        if let Some(sk) = c.sk {
            if let Some(i) = self.socks.find_sk(sk) {
                let s = *self.socks.get(i);
                src = (!s.tuple.lip.is_unspecified()).then(|| s.tuple.lip.get());
                if s.role == Role::Outbound {
                    pool = Some(Model::pool_key(&s.tuple));
                }
                if s.owner == NONE && owner != NONE {
                    self.reown(i, owner);
                }
            } else if let Some(&(_, key)) = self.noport.iter().find(|(k, _)| *k == sk) {
                src = Some(key.src.get());
                pool = Some(key);
            }
        }
        if c.call == CallKind::Connect
            && errno == Errno(libc::EADDRNOTAVAIL)
            && let Some(id) = pool.and_then(|k| self.pools.find(&k))
        {
            let p = self.pools.get_mut(id);
            p.eaddrnotavail += 1;
            p.last_failure_ns = ev.ts_ns;
            self.episode_on_failure(id);
        }
        let rec = super::FailureRecord {
            at_ns: ev.ts_ns,
            netns: ev.netns,
            pid: ev.task.pid,
            ppid: ev.task.ppid,
            comm: ev.task.comm,
            call: c.call,
            errno,
            addr: c.addr,
            src,
            pool: pool.map(|k| k.public()),
            sk: c.sk,
            cgroup: ev.task.cgroup,
            workload: None,
        };
        self.failures
            .record(rec, self.cfg.max_failure_keys, self.cfg.failure_log_len);
    }
}
