//! Builders for tests (here and in the explain engine): a small DSL that produces event
//! sequences the way the kernel emits them (see the brief in event.rs and docs/kernel-facts.md),
//! snapshot helpers, and an invariant check that recomputes every aggregate from the socket table.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use super::{
    Model, NetnsSnapshot, Owner, SnapSocket, StateCounts, Sysctls, SystemSnapshot,
    owner::LinkKey,
    socket::{NONE, Role, flag},
};
use crate::event::{
    CallKind, Comm, Errno, Event, EventKind, SockCall, StateChange, Task, TcpState, TimeWait, TwOp,
};

pub(crate) use TcpState::*;

/// The host's initial network namespace inode, as on most systems.
pub(crate) const NETNS: u32 = 4_026_531_840;
pub(crate) const SEC: u64 = 1_000_000_000;
pub(crate) const MS: u64 = 1_000_000;

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("bad address {s:?}: {e}"))
}

/// `ip:port` (brackets for IPv6).
pub(crate) fn ip_port(ip: &str, port: u16) -> String {
    let ip: std::net::IpAddr = ip.parse().unwrap_or_else(|e| panic!("bad ip {ip:?}: {e}"));
    SocketAddr::new(ip, port).to_string()
}

pub(crate) fn task(pid: u32, comm: &str) -> Task {
    Task {
        cgroup: 0,
        pid,
        tid: pid,
        ppid: 1,
        comm: Comm::new(comm),
    }
}

pub(crate) fn child_task(pid: u32, ppid: u32, comm: &str) -> Task {
    Task {
        cgroup: 0,
        pid,
        tid: pid,
        ppid,
        comm: Comm::new(comm),
    }
}

/// What runs softirq transitions: pid 0 `swapper/0`.
pub(crate) fn swapper() -> Task {
    Task {
        cgroup: 0,
        pid: 0,
        tid: 0,
        ppid: 0,
        comm: Comm::new("swapper/0"),
    }
}

/// Sysctls with a port range, reserved ranges and `tcp_tw_reuse`; the rest kernel defaults.
pub(crate) fn sysctls(range: (u16, u16), reserved: &[(u16, u16)], tw_reuse: u8) -> Sysctls {
    Sysctls {
        port_range: range,
        reserved_ports: reserved.to_vec(),
        tw_reuse,
        ..Sysctls::kernel_defaults()
    }
}

/// An event sequence under construction, with its own clock (starts at 1000 s).
pub(crate) struct Seq {
    pub events: Vec<Event>,
    pub t: u64,
    pub netns: u32,
}

impl Default for Seq {
    fn default() -> Self {
        Seq::new()
    }
}

impl Seq {
    pub fn new() -> Seq {
        Seq {
            events: Vec::new(),
            t: 1000 * SEC,
            netns: NETNS,
        }
    }

    pub fn in_netns(&mut self, netns: u32) -> &mut Seq {
        self.netns = netns;
        self
    }

    pub fn advance(&mut self, ns: u64) -> &mut Seq {
        self.t += ns;
        self
    }

    pub fn now(&self) -> u64 {
        self.t
    }

    fn push(&mut self, task: Task, kind: EventKind) -> &mut Seq {
        self.t += 1000; // 1 µs between events
        self.events.push(Event {
            ts_ns: self.t,
            netns: self.netns,
            task,
            kind,
        });
        self
    }

    /// One `inet_sock_set_state`.
    pub fn state(
        &mut self,
        task: Task,
        sk: u64,
        local: &str,
        remote: &str,
        old: TcpState,
        new: TcpState,
    ) -> &mut Seq {
        let kind = EventKind::State(StateChange {
            sk,
            local: addr(local),
            remote: addr(remote),
            old,
            new,
        });
        self.push(task, kind)
    }

    pub fn bind_ok(&mut self, task: Task, sk: u64, local: &str, bound_port: u16) -> &mut Seq {
        let kind = EventKind::Call(SockCall {
            call: CallKind::Bind,
            sk: Some(sk),
            fd: 3,
            addr: addr(local),
            error: None,
            bound_port: Some(bound_port),
        });
        self.push(task, kind)
    }

    pub fn call_err(
        &mut self,
        task: Task,
        call: CallKind,
        sk: Option<u64>,
        a: &str,
        errno: i32,
    ) -> &mut Seq {
        let kind = EventKind::Call(SockCall {
            call,
            sk,
            fd: 3,
            addr: addr(a),
            error: Some(Errno(errno)),
            bound_port: None,
        });
        self.push(task, kind)
    }

    pub fn tw(
        &mut self,
        tw: u64,
        local: &str,
        remote: &str,
        op: TwOp,
        substate: TcpState,
        remaining_jiffies: i32,
    ) -> &mut Seq {
        let kind = EventKind::TimeWait(TimeWait {
            tw,
            local: addr(local),
            remote: addr(remote),
            op,
            substate,
            remaining_jiffies,
        });
        self.push(swapper(), kind)
    }

    /// `listen()` without an explicit `bind()` event.
    pub fn listen(&mut self, owner: Task, sk: u64, local: &str) -> &mut Seq {
        let any = if addr(local).is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        self.state(owner, sk, local, any, Close, Listen)
    }

    /// `connect()` from `src_ip` that gets `sport`: CLOSE → SYN_SENT (port 0, caller's context)
    /// then SYN_SENT → ESTABLISHED (softirq).
    pub fn connect(
        &mut self,
        owner: Task,
        sk: u64,
        src_ip: &str,
        sport: u16,
        dst: &str,
    ) -> &mut Seq {
        let unbound = ip_port(src_ip, 0);
        let local = ip_port(src_ip, sport);
        self.state(owner, sk, &unbound, dst, Close, SynSent).state(
            swapper(),
            sk,
            &local,
            dst,
            SynSent,
            Established,
        )
    }

    /// A non-blocking `connect()` that stays in SYN_SENT: CLOSE → SYN_SENT (port 0), then
    /// the syscall's `EINPROGRESS` with the port it chose.
    pub fn connect_in_progress(
        &mut self,
        owner: Task,
        sk: u64,
        src_ip: &str,
        sport: u16,
        dst: &str,
    ) -> &mut Seq {
        let unbound = ip_port(src_ip, 0);
        self.state(owner, sk, &unbound, dst, Close, SynSent);
        let kind = EventKind::Call(SockCall {
            call: CallKind::Connect,
            sk: Some(sk),
            fd: 3,
            addr: addr(dst),
            error: None,
            bound_port: Some(sport),
        });
        self.push(owner, kind)
    }

    /// The listener's side of an accepted connection: LISTEN → SYN_RECV on a new `sk`, then
    /// SYN_RECV → ESTABLISHED, both under an unrelated task.
    pub fn accept(&mut self, runner: Task, child: u64, local: &str, remote: &str) -> &mut Seq {
        self.state(runner, child, local, remote, Listen, SynRecv)
            .state(runner, child, local, remote, SynRecv, Established)
    }

    /// Active close that ends in TIME_WAIT (the kernel's order: TW_START before the full
    /// socket's CLOSE). `closer` runs `close()`; the rest is softirq.
    pub fn active_close(
        &mut self,
        closer: Task,
        sk: u64,
        tw: u64,
        local: &str,
        remote: &str,
    ) -> &mut Seq {
        self.state(closer, sk, local, remote, Established, FinWait1)
            .state(swapper(), sk, local, remote, FinWait1, FinWait2)
            .tw(tw, local, remote, TwOp::Start, FinWait2, 60 * 250)
            .state(swapper(), sk, local, remote, FinWait2, Close)
    }

    /// The timer firing 60 s later: CANCEL with no time left, then EXPIRE.
    pub fn tw_expire(&mut self, tw: u64, local: &str, remote: &str) -> &mut Seq {
        self.tw(tw, local, remote, TwOp::Cancel, TimeWait, 0).tw(
            tw,
            local,
            remote,
            TwOp::Expire,
            TimeWait,
            0,
        )
    }

    /// Peer closes first: ESTABLISHED → CLOSE_WAIT → LAST_ACK → CLOSE.
    pub fn passive_close(&mut self, runner: Task, sk: u64, local: &str, remote: &str) -> &mut Seq {
        self.state(swapper(), sk, local, remote, Established, CloseWait)
            .state(runner, sk, local, remote, CloseWait, LastAck)
            .state(swapper(), sk, local, remote, LastAck, Close)
    }

    /// Reset: ESTABLISHED → CLOSE, no TIME_WAIT.
    pub fn reset(&mut self, sk: u64, local: &str, remote: &str) -> &mut Seq {
        self.state(swapper(), sk, local, remote, Established, Close)
    }

    /// Port exhaustion as the kernel shows it (docs/kernel-facts.md): CLOSE → SYN_SENT and SYN_SENT
    /// → CLOSE with source port 0 in the caller's context, then `connect()` = EADDRNOTAVAIL.
    pub fn exhausted(&mut self, owner: Task, sk: u64, src_ip: &str, dst: &str) -> &mut Seq {
        let unbound = ip_port(src_ip, 0);
        self.state(owner, sk, &unbound, dst, Close, SynSent)
            .state(owner, sk, &unbound, dst, SynSent, Close)
            .call_err(owner, CallKind::Connect, Some(sk), dst, libc::EADDRNOTAVAIL)
    }

    /// Applies (and forgets) the events built so far.
    pub fn run(&mut self, m: &mut Model) -> &mut Seq {
        for e in self.events.drain(..) {
            m.apply(&e);
        }
        self
    }
}

pub(crate) fn snap_sock(
    local: &str,
    remote: &str,
    state: TcpState,
    owner: Option<(u32, &str)>,
) -> SnapSocket {
    SnapSocket {
        netns: NETNS,
        local: addr(local),
        remote: addr(remote),
        state,
        inode: 0,
        owner: owner.map(|(pid, comm)| Owner {
            pid,
            comm: comm.to_string(),
            cgroup: 0,
        }),
    }
}

pub(crate) fn snapshot(
    taken_at_ns: u64,
    sysctls: Option<Sysctls>,
    sockets: Vec<SnapSocket>,
) -> SystemSnapshot {
    SystemSnapshot {
        taken_at_ns,
        namespaces: vec![NetnsSnapshot {
            netns: NETNS,
            sysctls,
            sockets,
        }],
    }
}

/// Recomputes every aggregate from the socket table and checks the model's incremental
/// counts against it (run after each scenario: a drift here is a bookkeeping bug).
pub(crate) fn assert_consistent(m: &Model) {
    let mut ns_totals: FxHashMap<u16, StateCounts> = FxHashMap::default();
    let mut link_counts: FxHashMap<u32, (StateCounts, u32)> = FxHashMap::default();
    let mut pool_counts: FxHashMap<u32, (StateCounts, StateCounts)> = FxHashMap::default();
    let mut link_bind_any: FxHashMap<u32, u32> = FxHashMap::default();
    let mut pool_bind_any: FxHashMap<u32, u32> = FxHashMap::default();
    let mut held: FxHashMap<(u16, u16), u32> = FxHashMap::default();
    let mut proc_socks: FxHashMap<u32, u32> = FxHashMap::default();
    for (_, s) in m.socks.iter() {
        if s.owner != NONE {
            *proc_socks.entry(s.owner).or_default() += 1;
        }
        if s.has(flag::BOUND_PORT) {
            *held.entry((s.ns, s.tuple.lport)).or_default() += 1;
        }
        if matches!(s.role, Role::Outbound | Role::Inbound) && s.link != NONE {
            link_counts.entry(s.link).or_default().1 += 1;
        }
        if !s.has(flag::COUNTED) {
            continue;
        }
        ns_totals.entry(s.ns).or_default().add(s.state, 1);
        if matches!(s.role, Role::Outbound | Role::Inbound) && s.link != NONE {
            link_counts.entry(s.link).or_default().0.add(s.state, 1);
            if s.has(flag::BIND_ANY) {
                *link_bind_any.entry(s.link).or_default() += 1;
            }
            if let LinkKey::Out { pool, .. } = m.links.get(s.link).key {
                if s.has(flag::BIND_ANY) {
                    *pool_bind_any.entry(pool).or_default() += 1;
                }
                let e = pool_counts.entry(pool).or_default();
                e.0.add(s.state, 1);
                if s.has(flag::CONSUMES) {
                    e.1.add(s.state, 1);
                }
            }
        }
    }
    for (i, n) in m.netns.iter().enumerate() {
        let want = ns_totals.get(&(i as u16)).copied().unwrap_or_default();
        assert_eq!(n.totals, want, "netns {} totals", n.inode);
        for (&port, &c) in n.ports_held() {
            assert_eq!(
                held.get(&(i as u16, port)).copied().unwrap_or(0),
                c,
                "held port {port}"
            );
        }
        let holders = held.iter().filter(|((ns, _), _)| *ns == i as u16).count();
        assert_eq!(
            holders,
            n.ports_held().count(),
            "held ports of netns {}",
            n.inode
        );
    }
    for (id, l) in m.links.iter() {
        let (c, refs) = link_counts.get(&id).copied().unwrap_or_default();
        assert_eq!(l.counts, c, "link {:?} counts", l.key);
        assert_eq!(l.refs, refs, "link {:?} refs", l.key);
        let b = link_bind_any.get(&id).copied().unwrap_or(0);
        assert_eq!(l.bind_any, b, "link {:?} bind-before-connect", l.key);
        assert!(l.refs > 0, "link {:?} kept with no socket", l.key);
    }
    for (id, p) in m.pools.iter() {
        let (c, k) = pool_counts.get(&id).copied().unwrap_or_default();
        assert_eq!(p.counts, c, "pool {:?} counts", p.key);
        assert_eq!(p.consuming, k, "pool {:?} consuming", p.key);
        let b = pool_bind_any.get(&id).copied().unwrap_or(0);
        assert_eq!(p.bind_any, b, "pool {:?} bind-before-connect", p.key);
    }
    for (id, p) in m.procs.iter() {
        assert_eq!(
            p.sockets,
            proc_socks.get(&id).copied().unwrap_or(0),
            "process {} sockets",
            p.pid
        );
    }
}
