//! `connect()` and `bind()` through the syscall tracepoints. At entry the arguments are only
//! remembered per thread (one hash update; a `connect()` also takes a timestamp). At exit a
//! failure — or a successful `bind()`, which takes a port out of every pool — reads the
//! caller's sockaddr and resolves the fd to its socket.
//!
//! Every `connect()` also adds its duration to a per-CPU histogram of its (namespace,
//! destination) in `CONNECT_LATENCY`, which userspace reads once a second: a successful
//! connect still sends no record. Its cost over the bare hooks: a timestamp at each end, a
//! lookup of the thread's entry at each end, and one histogram update; the destination comes
//! from the state program ([`note_destination`]), or else from the caller's sockaddr
//! (docs/early-warning.md, docs/benchmarks.md).
//!
//! Field offsets: `portwatch_common::syscall_tp` (read from the tracefs format files; userspace
//! checks them against the live ones before attaching).

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user},
    macros::{map, tracepoint},
    maps::{LruHashMap, LruPerCpuHashMap},
    programs::TracePointContext,
};
use portwatch_common::{
    AF_INET, AF_INET6, CallRecord, IPPROTO_TCP, LatencyHist, LatencyKey, call, kind, latency, stat,
    syscall_tp::{ENTER_ADDR, ENTER_ADDRLEN, ENTER_FD, EXIT_RET},
};

use crate::{
    emit::{bump, header, output},
    kernel::{
        current_netns, current_netns_btf, netns_of, off, protocol_of, read, sock_of_fd, wanted,
    },
};

const EINPROGRESS: i64 = 115;

/// A call between its entry and its exit. Written in place at each entry and disarmed at the
/// exit (`armed` 0) rather than inserted and deleted: a thread's entry stays in the map
/// between its calls, so a call costs two lookups and no bucket lock, element allocation or
/// free list push (measured: docs/benchmarks.md).
#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    uaddr: u64,
    fd: i32,
    addrlen: i32,
    /// `bpf_ktime_get_ns` at a `connect()`'s entry (0 for `bind()`).
    start_ns: u64,
    /// 1 between an entry and its exit.
    armed: u32,
    /// 1 once the state program wrote `dst` for this call ([`note_destination`]).
    has_dst: u32,
    /// The connecting socket's (namespace, destination), from its CLOSE → SYN_SENT.
    dst: LatencyKey,
}

/// Keyed by `pid_tgid` (one call in flight per thread). LRU: the entries of threads that
/// exited go first when the map is full; a thread that is inside a call was used last.
#[map(name = "PENDING_CALLS")]
static PENDING: LruHashMap<u64, Pending> = LruHashMap::with_max_entries(16384, 0);

/// `connect()` durations per (namespace, destination), per CPU (`portwatch_common::latency`).
#[map(name = "CONNECT_LATENCY")]
static CONNECT_LATENCY: LruPerCpuHashMap<LatencyKey, LatencyHist> =
    LruPerCpuHashMap::with_max_entries(latency::MAX_DESTINATIONS, 0);

#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // Tracepoint context reads are bounds-checked by the verifier; the offsets are aligned.
    unsafe { (ctx.as_ptr() as *const u8).add(offset).cast::<T>().read() }
}

#[inline(always)]
fn enter(ctx: &TracePointContext, which: u8) {
    let pending = Pending {
        uaddr: field::<u64>(ctx, ENTER_ADDR),
        fd: field::<u64>(ctx, ENTER_FD) as i32,
        addrlen: field::<u64>(ctx, ENTER_ADDRLEN) as i32,
        start_ns: if which == call::CONNECT {
            unsafe { bpf_ktime_get_ns() }
        } else {
            0
        },
        armed: 1,
        has_dst: 0,
        dst: LatencyKey {
            netns: 0,
            family: 0,
            port: 0,
            addr: [0; 16],
        },
    };
    let key = bpf_get_current_pid_tgid();
    if let Some(p) = PENDING.get_ptr_mut(key) {
        // SAFETY: this thread's entry; only this thread's calls write it.
        unsafe { *p = pending };
        return;
    }
    if PENDING.insert(key, pending, 0).is_err() {
        bump(stat::CALL_UNTRACKED);
    }
}

#[inline(always)]
fn exit(ctx: &TracePointContext, which: u8) {
    let Some(p) = PENDING.get_ptr_mut(bpf_get_current_pid_tgid()) else {
        return;
    };
    // SAFETY: this thread's entry (see `enter`).
    let pending = unsafe {
        if (*p).armed == 0 {
            return;
        }
        (*p).armed = 0;
        *p
    };
    if which == call::CONNECT && pending.start_ns != 0 {
        let took = unsafe { bpf_ktime_get_ns() }.saturating_sub(pending.start_ns);
        add_latency(&pending, took);
    }
    let ret: i64 = field(ctx, EXIT_RET);
    let report = match which {
        // EINPROGRESS too: the port is chosen now, after the SYN_SENT transition was traced.
        call::CONNECT => ret < 0,
        // Successful binds too: a port taken by bind() is gone for every destination.
        _ => true,
    };
    if report {
        report_call(which, ret, pending);
    }
}

/// For the state program, on a traced socket's CLOSE → SYN_SENT, which runs inside
/// `connect()` in the caller's context after the destination is set (`tcp_v4_connect`,
/// `tcp_v6_connect`) and before the port search: hands the socket's namespace and destination
/// to the calling thread's pending `connect()`, so that its exit need not read the caller's
/// sockaddr from user memory (`bpf_probe_read_user` with the kernel's usercopy checks: about a
/// fifth of the exit program, measured with perf under churn) nor the caller's namespace. The
/// first one wins: a connect() that fails before SYN_SENT (a bad address, no route) has none
/// and its exit reads the sockaddr as before. The namespace is the socket's, not the caller's
/// (they differ only for a socket created in another namespace and handed over).
#[inline(always)]
pub fn note_destination(netns: u32, family: u16, port: u16, addr: [u8; 16]) {
    let Some(p) = PENDING.get_ptr_mut(bpf_get_current_pid_tgid()) else {
        return;
    };
    // SAFETY: the current thread's entry; its own calls are the only other writers, and this
    // runs inside one of them.
    unsafe {
        if (*p).armed == 0 || (*p).start_ns == 0 || (*p).has_dst != 0 {
            return;
        }
        (*p).dst = LatencyKey {
            netns,
            family,
            port,
            addr,
        };
        (*p).has_dst = 1;
    }
}

/// Adds one `connect()` of `took` ns to its destination's histogram (whatever it returned:
/// a non-blocking connect returns after the port search, a failed one after a full search).
#[inline(always)]
fn add_latency(p: &Pending, took: u64) {
    if p.has_dst != 0 {
        // Filtered by the state program already.
        count_latency(p.dst, took);
        return;
    }
    if p.uaddr == 0 || p.addrlen < 16 {
        return;
    }
    // struct sockaddr_in: family, port (network order), IPv4 address: one read.
    let Ok(head) = (unsafe { bpf_probe_read_user(p.uaddr as *const [u8; 8]) }) else {
        return;
    };
    let family = u16::from_ne_bytes([head[0], head[1]]);
    let mut key = LatencyKey {
        netns: 0,
        family,
        port: u16::from_be_bytes([head[2], head[3]]),
        addr: [0u8; 16],
    };
    if family == AF_INET {
        key.addr[0] = head[4];
        key.addr[1] = head[5];
        key.addr[2] = head[6];
        key.addr[3] = head[7];
    } else if family == AF_INET6 && p.addrlen >= 24 {
        match unsafe { bpf_probe_read_user((p.uaddr + 8) as *const [u8; 16]) } {
            Ok(a) => key.addr = a,
            Err(_) => return,
        }
    } else {
        return;
    }
    key.netns = current_netns_btf();
    if !wanted(key.netns) {
        return;
    }
    count_latency(key, took);
}

/// Adds one `connect()` of `took` ns to the histogram of `key`.
#[inline(always)]
fn count_latency(key: LatencyKey, took: u64) {
    let b = latency::bucket(took);
    if let Some(h) = CONNECT_LATENCY.get_ptr_mut(key) {
        // SAFETY: a per-CPU value of this map, only this CPU writes it.
        let h = unsafe { &mut *h };
        h.calls += 1;
        h.sum_ns += took;
        if b < latency::BUCKETS {
            h.buckets[b] = h.buckets[b].wrapping_add(1);
        }
        return;
    }
    let mut h = LatencyHist {
        calls: 1,
        sum_ns: took,
        buckets: [0; latency::BUCKETS],
    };
    if b < latency::BUCKETS {
        h.buckets[b] = 1;
    }
    let _ = CONNECT_LATENCY.insert(key, h, 0);
}

#[inline(always)]
fn report_call(which: u8, ret: i64, p: Pending) {
    // struct sockaddr_in / sockaddr_in6: family at 0, port at 2 (network order), IPv4
    // address at 4, IPv6 address at 8.
    if p.uaddr == 0 || p.addrlen < 16 {
        return;
    }
    let Ok(family) = (unsafe { bpf_probe_read_user((p.uaddr) as *const u16) }) else {
        return;
    };
    let mut addr = [0u8; 16];
    if family == AF_INET {
        match unsafe { bpf_probe_read_user((p.uaddr + 4) as *const [u8; 4]) } {
            Ok(a) => {
                addr[0] = a[0];
                addr[1] = a[1];
                addr[2] = a[2];
                addr[3] = a[3];
            }
            Err(_) => return,
        }
    } else if family == AF_INET6 && p.addrlen >= 24 {
        match unsafe { bpf_probe_read_user((p.uaddr + 8) as *const [u8; 16]) } {
            Ok(a) => addr = a,
            Err(_) => return,
        }
    } else {
        return;
    }
    let port = unsafe { bpf_probe_read_user((p.uaddr + 2) as *const u16) }.unwrap_or(0);
    let sk = sock_of_fd(p.fd);
    if sk != 0 && protocol_of(sk) != IPPROTO_TCP {
        return;
    }
    // Without the socket, a successful bind cannot be told TCP from UDP, and a connect in
    // progress has no port to tell: stay silent.
    if sk == 0 && (ret == 0 || ret == -EINPROGRESS) {
        return;
    }
    let netns = if sk != 0 {
        netns_of(sk)
    } else {
        current_netns()
    };
    if !wanted(netns) {
        return;
    }
    bump(stat::CALL_SEEN);
    let in_progress = which == call::CONNECT && ret == -EINPROGRESS;
    let bound_port = if (which == call::BIND && ret == 0) || in_progress {
        read::<u16>(sk + off::OFF_SKC_NUM()).unwrap_or(0)
    } else {
        0
    };
    // A connect in progress is only worth its port.
    if in_progress && bound_port == 0 {
        return;
    }
    let record = CallRecord {
        hdr: header(kind::CALL, netns, true, 0),
        sk,
        addr,
        ret: ret as i32,
        fd: p.fd,
        port: u16::from_be(port),
        family,
        call: which,
        _pad: 0,
        bound_port,
    };
    output(&record, stat::CALL_LOST);
}

#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    enter(&ctx, call::CONNECT);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    exit(&ctx, call::CONNECT);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_bind")]
pub fn sys_enter_bind(ctx: TracePointContext) -> u32 {
    enter(&ctx, call::BIND);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    exit(&ctx, call::BIND);
    0
}
