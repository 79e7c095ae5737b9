//! Bookkeeping: how a socket enters, changes in and leaves every aggregate (namespace totals,
//! links, pools, held ports, owners), and the lookups that decide where it belongs. Every
//! count changes only through `account`, and every reference through `attach`/`detach`, which
//! is what `testutil::assert_consistent` checks.

use super::{
    Model, NS, REMOVED_SLOTS,
    addr::{Ip, Tuple},
    owner::LinkKey,
    pool::PoolKeyInt,
    socket::{NONE, Role, Sock, flag},
};
use crate::event::{Task, TcpState};

impl Model {
    pub(super) fn owner_of(&mut self, task: &Task) -> u32 {
        match self.procs.intern(task, self.now_ns, self.cfg.max_processes) {
            Some(id) => id,
            None => {
                self.counters.odd.untracked += 1;
                NONE
            }
        }
    }

    /// Whether an outbound socket takes one of its pool's usable ports: not when its port is
    /// held by `bind()` (that port already left every pool) or lies outside the connect range
    /// (bound explicitly, or the range changed since). Unknown port (SYN_SENT): yes.
    pub(super) fn consumes(&self, s: &Sock) -> bool {
        s.role == Role::Outbound
            && !s.has(flag::BOUND_PORT)
            && (s.tuple.lport == 0 || self.netns[s.ns as usize].ports.is_usable(s.tuple.lport))
    }

    pub(super) fn pool_key(t: &Tuple) -> PoolKeyInt {
        PoolKeyInt {
            netns: t.netns,
            dport: t.rport,
            src: t.lip,
            dst: t.rip,
        }
    }

    /// The owner×pool link for an outbound socket.
    pub(super) fn out_link(&mut self, owner: u32, t: &Tuple, ns: u16) -> u32 {
        let key = Model::pool_key(t);
        let Some(pool) = self.pools.intern(key, ns, self.now_ns, self.cfg.max_pools) else {
            self.counters.odd.untracked += 1;
            return NONE;
        };
        let (id, new) = self.links.intern(LinkKey::Out { owner, pool });
        if new {
            self.procs.retain(owner);
            self.pools.get_mut(pool).refs += 1;
        }
        id
    }

    pub(super) fn in_link(&mut self, listener: u32, rip: Ip) -> u32 {
        let (id, new) = self.links.intern(LinkKey::In { listener, rip });
        if new {
            self.listeners.get_mut(listener).refs += 1;
        }
        id
    }

    pub(super) fn listener_entry(&mut self, t: &Tuple, owner: u32) -> u32 {
        let (id, new) = self
            .listeners
            .intern(t.netns, t.lip, t.lport, owner, self.now_ns);
        let l = self.listeners.get_mut(id);
        if new {
            self.procs.retain(owner);
        } else if l.owner == NONE && owner != NONE {
            l.owner = owner;
            self.procs.retain(owner);
        }
        id
    }

    /// Role, owner and link of a socket whose beginning was not seen: accepted if a listener
    /// takes its local address (owner inherited), else outbound with owner unknown.
    pub(super) fn classify(&mut self, t: &Tuple, ns: u16) -> (Role, u32, u32) {
        match self.listeners.find_for(t.netns, t.lip, t.lport) {
            Some(l) => {
                let owner = self.listeners.get(l).owner;
                (Role::Inbound, owner, self.in_link(l, t.rip))
            }
            None => (Role::Outbound, NONE, self.out_link(NONE, t, ns)),
        }
    }

    pub(super) fn pool_of(&self, s: &Sock) -> Option<u32> {
        if s.role != Role::Outbound || s.link == NONE {
            return None;
        }
        match self.links.get(s.link).key {
            LinkKey::Out { pool, .. } => Some(pool),
            LinkKey::In { .. } => None,
        }
    }

    pub(super) fn listener_of(&self, s: &Sock) -> Option<u32> {
        match s.role {
            Role::Listener if s.link != NONE => Some(s.link),
            Role::Inbound if s.link != NONE => match self.links.get(s.link).key {
                LinkKey::In { listener, .. } => Some(listener),
                LinkKey::Out { .. } => None,
            },
            _ => None,
        }
    }

    /// Adds or removes a counted socket's current state from every aggregate.
    pub(super) fn account(&mut self, i: u32, sign: i32) {
        let s = *self.socks.get(i);
        if !s.has(flag::COUNTED) {
            return;
        }
        let n = &mut self.netns[s.ns as usize];
        n.totals.add(s.state, sign);
        if s.has(flag::TW) {
            n.tw_entries = n.tw_entries.wrapping_add_signed(sign);
        }
        if s.link == NONE || !matches!(s.role, Role::Outbound | Role::Inbound) {
            return;
        }
        let bind_any = i32::from(s.has(flag::BIND_ANY)) * sign;
        let link = self.links.get_mut(s.link);
        link.counts.add(s.state, sign);
        link.bind_any = link.bind_any.wrapping_add_signed(bind_any);
        if let LinkKey::Out { pool, .. } = link.key {
            let p = self.pools.get_mut(pool);
            p.touch(self.now_ns / NS, self.now_ns);
            p.counts.add(s.state, sign);
            p.bind_any = p.bind_any.wrapping_add_signed(bind_any);
            if s.has(flag::CONSUMES) {
                p.consuming.add(s.state, sign);
                // A connect() still searching for its port (SYN_SENT, port 0) is not a port
                // held: it gets one (counted again then) or fails (EADDRNOTAVAIL).
                if s.tuple.lport != 0 {
                    self.episode_on_count(pool, sign);
                }
            }
        }
    }

    /// Takes the references a socket's fields name.
    pub(super) fn attach(&mut self, i: u32) {
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.retain(s.owner);
            self.procs.get_mut(s.owner).sockets += 1;
        }
        match s.role {
            Role::Outbound | Role::Inbound if s.link != NONE => {
                self.links.get_mut(s.link).refs += 1
            }
            Role::Listener if s.link != NONE => {
                let l = self.listeners.get_mut(s.link);
                l.refs += 1;
                l.listening += 1;
            }
            _ => {}
        }
        if s.has(flag::BOUND_PORT) {
            self.netns[s.ns as usize].ports.hold(s.tuple.lport);
        }
    }

    pub(super) fn detach(&mut self, i: u32) {
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.get_mut(s.owner).sockets -= 1;
            self.procs.release(s.owner);
        }
        match s.role {
            Role::Outbound | Role::Inbound if s.link != NONE => self.release_link(s.link),
            Role::Listener if s.link != NONE => {
                self.listeners.get_mut(s.link).listening -= 1;
                self.release_listener(s.link);
            }
            _ => {}
        }
        if s.has(flag::BOUND_PORT) {
            self.netns[s.ns as usize].ports.release(s.tuple.lport);
        }
    }

    /// Drops one socket's reference to a link, and what the link names when it goes.
    pub(super) fn release_link(&mut self, id: u32) {
        if let Some(key) = self.links.release(id) {
            match key {
                LinkKey::Out { owner, pool } => {
                    self.procs.release(owner);
                    self.pools.get_mut(pool).refs -= 1;
                }
                LinkKey::In { listener, .. } => self.release_listener(listener),
            }
        }
    }

    pub(super) fn release_listener(&mut self, id: u32) {
        if let Some(owner) = self.listeners.release(id) {
            self.procs.release(owner);
        }
    }

    /// Evicts one socket if the table is full. Call before looking anything up for a socket
    /// about to be added, so that no index held afterwards can be the victim.
    pub(super) fn make_room(&mut self) {
        self.make_room_sparing(NONE);
    }

    /// Same, never evicting socket `keep` (which the caller holds).
    pub(super) fn make_room_sparing(&mut self, keep: u32) {
        let mut tries = 0;
        while self.socks.len() >= self.cfg.max_sockets && tries < 4 {
            let Some(v) = self.socks.victim() else { return };
            if v == keep {
                tries += 1;
                continue;
            }
            let st = self.socks.get(v).state;
            self.drop_sock(v);
            self.counters.sockets_evicted += 1;
            self.counters.sockets_evicted_by_state.add(st, 1);
        }
    }

    /// Adds a socket and counts it. An accepted socket (and its TIME_WAIT) shares its
    /// listener's bind bucket (`__inet_inherit_port`, `inet_twsk_hashdance`), so it keeps the
    /// port out of every pool too, even after the listener closes.
    pub(super) fn add(&mut self, mut s: Sock) -> u32 {
        if s.role == Role::Inbound && s.tuple.lport != 0 {
            s.flags |= flag::BOUND_PORT;
        }
        let i = self.socks.insert(s);
        self.attach(i);
        self.account(i, 1);
        i
    }

    pub(super) fn drop_sock(&mut self, i: u32) -> Sock {
        self.account(i, -1);
        self.detach(i);
        let s = self.socks.remove(i);
        if s.tuple.lport != 0 {
            let h = s.tuple.hash();
            self.removed[(h as usize) % REMOVED_SLOTS] = (h, self.now_ns);
        }
        s
    }

    pub(super) fn set_state(&mut self, i: u32, state: TcpState, ts: u64) {
        self.account(i, -1);
        let s = self.socks.get_mut(i);
        s.state = state;
        s.since_ns = ts;
        self.account(i, 1);
    }

    /// Gives a socket an owner learnt later (process context, or the snapshot), moving it to
    /// the owner's link.
    pub(super) fn reown(&mut self, i: u32, owner: u32) {
        self.account(i, -1);
        let s = *self.socks.get(i);
        if s.owner != NONE {
            self.procs.get_mut(s.owner).sockets -= 1;
            self.procs.release(s.owner);
        }
        if owner != NONE {
            self.procs.retain(owner);
            self.procs.get_mut(owner).sockets += 1;
        }
        let mut link = s.link;
        if s.role == Role::Outbound {
            // The new link first: the pool stays referenced while the old one goes.
            link = self.out_link(owner, &s.tuple, s.ns);
            if link != NONE {
                self.links.get_mut(link).refs += 1;
            }
            if s.link != NONE {
                self.release_link(s.link);
            }
        }
        let m = self.socks.get_mut(i);
        m.owner = owner;
        m.link = link;
        self.account(i, 1);
    }

    /// A socket from the snapshot (no `sk`) with this 4-tuple, to adopt on its first event.
    pub(super) fn find_unadopted(&self, t: &Tuple, tw: bool) -> Option<u32> {
        self.socks.find_no_sk(t, |s| {
            s.sk == 0
                && s.has(flag::COUNTED)
                && if tw {
                    s.has(flag::TW) || s.state == TcpState::FinWait2
                } else {
                    !s.has(flag::TW)
                }
        })
    }

    pub(super) fn adopt(&mut self, i: u32, sk: u64) {
        let t = self.socks.get(i).tuple;
        self.socks.rekey(i, sk, t);
        self.counters.snapshot_sockets_adopted += 1;
    }
}
