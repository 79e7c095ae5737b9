//! `tp_btf/inet_sock_set_state`: every `tcp_set_state()` (and `inet_sk_set_state()`), with
//! the raw arguments `(const struct sock *sk, int oldstate, int newstate)`
//! (`btf_trace_inet_sock_set_state` in /sys/kernel/btf/vmlinux). A BTF tracepoint rather than
//! the classic `sock/inet_sock_set_state`: no trace record is built for it, and it is only
//! skipped when it would recurse into itself on one CPU (counted by the kernel in the
//! program's `recursion_misses`, which userspace reports as lost), not whenever any other
//! tracing program happens to run there.

use aya_ebpf::{EbpfContext, macros::btf_tracepoint, programs::BtfTracePointContext};
use portwatch_common::{IPPROTO_TCP, StateRecord, flag, kind, stat};

use crate::{
    calls::note_destination,
    emit::{bump, commit, reserve, task, write_header},
    kernel::{netns_of_btf_sk, protocol_of_btf_sk, tuple_btf, wanted},
    nest::{self, hook},
};

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    if let Some(netns) = traced(sk) {
        nest::enter(hook::STATE, ctx.as_ptr() as u64);
        transition(&ctx, sk, netns, 0);
    }
    0
}

/// Attached after `inet_sock_set_state`: see `nest.rs`.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn inet_sock_set_state_rescue(ctx: BtfTracePointContext) -> i32 {
    let sk: u64 = ctx.arg(0);
    if let Some(netns) = traced(sk)
        && nest::rescue(hook::STATE, ctx.as_ptr() as u64, stat::STATE_RESCUED).is_some()
    {
        transition(&ctx, sk, netns, flag::RESCUED);
    }
    0
}

/// The socket's namespace if its transitions are wanted: a TCP socket (MPTCP's own socket
/// and anything else that uses inet_sk_set_state stay out) in the namespace asked for.
/// Plain loads only: every other tracer's sockets (and every other portwatch's, filtered to
/// another namespace) cost this and nothing else.
#[inline(always)]
fn traced(sk: u64) -> Option<u32> {
    let netns = netns_of_btf_sk(sk);
    (wanted(netns) && protocol_of_btf_sk(sk) == IPPROTO_TCP).then_some(netns)
}

#[inline(always)]
fn transition(ctx: &BtfTracePointContext, sk: u64, netns: u32, flags: u8) {
    bump(stat::STATE_SEEN);
    let oldstate: i32 = ctx.arg(1);
    let newstate: i32 = ctx.arg(2);
    let Ok(t) = tuple_btf(sk) else {
        // Counted seen, so it must count as lost: the accounting stays exact.
        bump(stat::STATE_LOST);
        return;
    };
    // connect(): its destination for the latency histogram (see `calls.rs`), before the
    // reservation so that the ring does not wait on a map lookup.
    if oldstate == TCP_CLOSE && newstate == TCP_SYN_SENT {
        note_destination(netns, t.family, t.dport, t.daddr);
    }
    let Some(mut entry) = reserve::<StateRecord>(stat::STATE_LOST) else {
        return;
    };
    // Written in place in the ring: no record on the stack, no copy.
    let r = entry.as_mut_ptr();
    // Only CLOSE -> SYN_SENT (connect) and CLOSE -> LISTEN (listen) are sure to run in the
    // owner's context, and the model takes the owner from them alone; SYN_SENT -> CLOSE is
    // named after its task when connect() found no port (in the caller's context). Every
    // other transition runs in softirq context, where the current task is unrelated and
    // nobody reads it: no task helpers there (docs/benchmarks.md).
    let task = if oldstate == TCP_CLOSE {
        task::OWNER
    } else if oldstate == TCP_SYN_SENT && newstate == TCP_CLOSE {
        task::CALLER
    } else {
        task::NONE
    };
    // SAFETY: `r` is a reserved record of the right size; every byte is written.
    unsafe {
        write_header(&raw mut (*r).hdr, kind::STATE, netns, task, flags);
        (*r).skaddr = sk;
        (*r).saddr = t.saddr;
        (*r).daddr = t.daddr;
        (*r).sport = t.sport;
        (*r).dport = t.dport;
        (*r).family = t.family;
        (*r).oldstate = oldstate as u8;
        (*r).newstate = newstate as u8;
    }
    commit(entry);
}

const TCP_SYN_SENT: i32 = 2;
const TCP_CLOSE: i32 = 7;
