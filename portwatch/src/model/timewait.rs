//! TIME_WAIT, from the timewait socket's timer (docs/kernel-facts.md "TIME_WAIT": it is invisible
//! to the state tracepoint; `tcp_time_wait()` hands the 4-tuple to a separate timewait socket).
//!
//! - START: a timewait socket now holds the 4-tuple. It arrives *before* the full socket's
//!   CLOSE, so the connection it came from is found by namespace + 4-tuple among live sockets;
//!   the entry keeps that connection's owner, pool and bind-held port (the timewait socket
//!   keeps the bind bucket). The full socket is then no longer counted.
//! - CANCEL with time left: an early end (tcp_tw_reuse takeover, RST) — unless a START for the
//!   same timewait socket follows at once (a re-arm, e.g. FIN_WAIT2 substate → TIME_WAIT on the
//!   peer's FIN), so the end is confirmed after [`super::TW_REARM_GRACE_NS`].
//! - CANCEL with no time left, then EXPIRE: the timer fired after 60 s; the port is free.
//! - A local peer's CLOSE_WAIT → LAST_ACK (it sent its FIN): the entry, if still in its
//!   FIN_WAIT2 substate, is now in TIME_WAIT — the kernel's re-arm is usually untraced
//!   ([`Model::peer_sent_fin`]).
//!
//! An RST close (ESTABLISHED → CLOSE) or a `tcp_max_tw_buckets` overflow has no START and so
//! creates no entry.

use super::{
    Model,
    addr::Tuple,
    socket::{Closer, Sock, flag},
};
use crate::event::{Event, TcpState, TimeWait, TwOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TwEnd {
    Expired,
    Early,
    Reused,
}

fn tw_state(substate: TcpState) -> TcpState {
    if substate == TcpState::FinWait2 {
        TcpState::FinWait2
    } else {
        TcpState::TimeWait
    }
}

impl Model {
    pub(super) fn on_timewait(&mut self, ev: &Event, t: &TimeWait) {
        let tuple = Tuple::new(ev.netns, t.local, t.remote);
        match t.op {
            TwOp::Start => self.tw_start(ev.ts_ns, t, tuple),
            TwOp::Cancel => {
                let Some(i) = self.tw_lookup(t.tw, &tuple) else {
                    self.counters.odd.tw_unknown += 1;
                    return;
                };
                if t.remaining_jiffies > 0 {
                    self.socks.get_mut(i).flags |= flag::TW_CANCEL;
                    self.pending_cancel.push_back((i, t.tw, ev.ts_ns));
                }
            }
            TwOp::Expire => match self.tw_lookup(t.tw, &tuple) {
                Some(i) => self.end_tw(i, TwEnd::Expired),
                None => self.counters.odd.tw_unknown += 1,
            },
        }
    }

    /// The timewait entry for this address, adopting a snapshot entry with the same 4-tuple.
    fn tw_lookup(&mut self, tw: u64, tuple: &Tuple) -> Option<u32> {
        if let Some(i) = self.socks.find_sk(tw)
            && self.socks.get(i).has(flag::TW)
        {
            return Some(i);
        }
        let i = self.find_unadopted(tuple, true)?;
        self.adopt_tw(i, tw);
        Some(i)
    }

    fn adopt_tw(&mut self, i: u32, tw: u64) {
        self.adopt(i, tw);
        if !self.socks.get(i).has(flag::TW) {
            // A snapshot FIN_WAIT2 that was really a timewait socket (sock_diag shows both so).
            self.account(i, -1);
            self.socks.get_mut(i).flags |= flag::TW;
            self.account(i, 1);
        }
    }

    fn tw_start(&mut self, ts: u64, t: &TimeWait, tuple: Tuple) {
        let state = tw_state(t.substate);
        if let Some(i) = self.socks.find_sk(t.tw) {
            let s = *self.socks.get(i);
            if s.has(flag::TW) && s.tuple == tuple {
                self.socks.get_mut(i).flags &= !flag::TW_CANCEL;
                self.counters.tw_rearmed += 1;
                if s.state != state {
                    self.set_state(i, state, ts);
                }
                return;
            }
            if s.has(flag::TW) {
                self.end_tw(i, TwEnd::Early);
            } else {
                self.counters.odd.stale_replaced += 1;
                self.drop_sock(i);
            }
        }
        if let Some(i) = self.find_unadopted(&tuple, true) {
            self.adopt_tw(i, t.tw);
            self.socks.get_mut(i).flags &= !flag::TW_CANCEL;
            if self.socks.get(i).state != state {
                self.set_state(i, state, ts);
            }
            return;
        }
        // The connection's full socket, which the entry takes over; it must survive eviction.
        let src = self
            .socks
            .find_tuple(&tuple, |s| !s.has(flag::TW) && s.has(flag::COUNTED));
        self.make_room_sparing(src.unwrap_or(super::socket::NONE));
        let mut s = Sock {
            sk: t.tw,
            since_ns: ts,
            tuple,
            owner: super::socket::NONE,
            link: super::socket::NONE,
            flags: flag::COUNTED | flag::TW,
            ns: self.ns(tuple.netns),
            state,
            role: super::Role::Outbound,
            closer: Closer::Local,
        };
        match src {
            Some(j) => {
                let full = *self.socks.get(j);
                self.account(j, -1);
                self.socks.get_mut(j).flags &= !flag::COUNTED;
                s.owner = full.owner;
                s.link = full.link;
                s.role = full.role;
                s.flags |= full.flags & (flag::BOUND_PORT | flag::CONSUMES | flag::BIND_ANY);
            }
            None => {
                self.counters.odd.tw_without_socket += 1;
                let (role, owner, link) = self.classify(&tuple, s.ns);
                s.role = role;
                s.owner = owner;
                s.link = link;
                if self.consumes(&s) {
                    s.flags |= flag::CONSUMES;
                }
            }
        }
        let i = self.add(s);
        self.counters.tw_started += 1;
        if state == TcpState::FinWait2 {
            self.counters.tw_fin_wait2_started += 1;
        }
        let s = *self.socks.get(i);
        if let Some(cs) = self.close_stats(&s) {
            cs.tw_started += 1;
        }
    }

    /// The local peer of `tuple` sent its FIN (entered LAST_ACK): a timewait socket at the
    /// other end still in its FIN_WAIT2 substate is in TIME_WAIT now (docs/kernel-facts.md
    /// "TIME_WAIT"). The kernel re-arms that timer for `TCP_TIMEWAIT_LEN`, but `__mod_timer`
    /// (kernel/time/timer.c) returns without tracing when the new expiry falls in the pending
    /// timer's wheel bucket, which 60 s from a moment ago nearly always does: no START comes.
    /// A remote peer's FIN stays invisible until the next reconciliation.
    pub(super) fn peer_sent_fin(&mut self, tuple: &Tuple, ts: u64) {
        let other_end = tuple.reversed();
        if let Some(i) = self.socks.find_tuple(&other_end, |s| {
            s.has(flag::TW) && s.state == TcpState::FinWait2
        }) {
            self.counters.tw_fin_wait2_ended_by_peer += 1;
            self.set_state(i, TcpState::TimeWait, ts);
        }
    }

    /// Timewait sockets that began in the FIN_WAIT2 substate. Those not seen to leave it by
    /// their local peer's FIN ([`Model::fin_wait2_unconfirmed`]) wait for a reconciliation:
    /// a remote peer's FIN is usually untraced (see [`Model::peer_sent_fin`]), so only a
    /// reconciliation tells FIN_WAIT2 (a peer that does not close) from TIME_WAIT. The live
    /// session asks for an early one when the unconfirmed grow.
    pub fn fin_wait2_started(&self) -> u64 {
        self.counters.tw_fin_wait2_started
    }

    /// [`Model::fin_wait2_started`] less those their local peer's FIN confirmed.
    pub fn fin_wait2_unconfirmed(&self) -> u64 {
        self.counters
            .tw_fin_wait2_started
            .saturating_sub(self.counters.tw_fin_wait2_ended_by_peer)
    }

    /// A timewait socket's end: the 4-tuple (and port) is free again.
    pub(super) fn end_tw(&mut self, i: u32, how: TwEnd) {
        let s = *self.socks.get(i);
        match how {
            TwEnd::Expired => self.counters.tw_expired += 1,
            TwEnd::Early => self.counters.tw_ended_early += 1,
            TwEnd::Reused => {
                self.counters.tw_ended_early += 1;
                self.counters.tw_reused += 1;
            }
        }
        if let Some(cs) = self.close_stats(&s) {
            match how {
                TwEnd::Expired => cs.tw_expired += 1,
                TwEnd::Early => cs.tw_ended_early += 1,
                TwEnd::Reused => {
                    cs.tw_ended_early += 1;
                    cs.tw_reused += 1;
                }
            }
        }
        if s.has(flag::CONSUMES) {
            self.count_release(&s);
        }
        self.drop_sock(i);
    }

    /// The grace after a CANCEL passed with no START: the TIME_WAIT ended early.
    pub(super) fn finish_cancel(&mut self, i: u32, tw: u64) {
        if (i as usize) < self.socks.slot_count() {
            let s = self.socks.get(i);
            if !s.has(flag::FREE) && s.sk == tw && s.has(flag::TW) && s.has(flag::TW_CANCEL) {
                self.end_tw(i, TwEnd::Early);
            }
        }
    }
}
