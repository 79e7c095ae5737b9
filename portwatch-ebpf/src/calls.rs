//! `connect()` and `bind()` through the syscall tracepoints. At entry the arguments are only
//! remembered per thread (one hash update: a successful `connect()` costs that, a lookup and a
//! delete, and sends nothing). At exit a failure — or a successful `bind()`, which takes a
//! port out of every pool — reads the caller's sockaddr and resolves the fd to its socket.
//!
//! Field offsets: `portwatch_common::syscall_tp` (read from the tracefs format files; userspace
//! checks them against the live ones before attaching).

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user},
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use portwatch_common::{
    AF_INET, AF_INET6, CallRecord, IPPROTO_TCP, call, kind, stat,
    syscall_tp::{ENTER_ADDR, ENTER_ADDRLEN, ENTER_FD, EXIT_RET},
};

use crate::{
    emit::{bump, header, output},
    kernel::{current_netns, netns_of, off, protocol_of, read, sock_of_fd, wanted},
};

const EINPROGRESS: i64 = 115;

/// A call between its entry and its exit.
#[repr(C)]
#[derive(Clone, Copy)]
struct Pending {
    uaddr: u64,
    fd: i32,
    addrlen: i32,
}

/// Keyed by `pid_tgid` (one call in flight per thread).
#[map(name = "PENDING_CALLS")]
static PENDING: HashMap<u64, Pending> = HashMap::with_max_entries(16384, 0);

#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // Tracepoint context reads are bounds-checked by the verifier; the offsets are aligned.
    unsafe { (ctx.as_ptr() as *const u8).add(offset).cast::<T>().read() }
}

#[inline(always)]
fn enter(ctx: &TracePointContext) {
    let pending = Pending {
        uaddr: field::<u64>(ctx, ENTER_ADDR),
        fd: field::<u64>(ctx, ENTER_FD) as i32,
        addrlen: field::<u64>(ctx, ENTER_ADDRLEN) as i32,
    };
    if PENDING
        .insert(bpf_get_current_pid_tgid(), pending, 0)
        .is_err()
    {
        bump(stat::CALL_UNTRACKED);
    }
}

#[inline(always)]
fn exit(ctx: &TracePointContext, which: u8) {
    let key = bpf_get_current_pid_tgid();
    let Some(pending) = (unsafe { PENDING.get(key) }).copied() else {
        return;
    };
    let _ = PENDING.remove(key);
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
    enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    exit(&ctx, call::CONNECT);
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_bind")]
pub fn sys_enter_bind(ctx: TracePointContext) -> u32 {
    enter(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    exit(&ctx, call::BIND);
    0
}
