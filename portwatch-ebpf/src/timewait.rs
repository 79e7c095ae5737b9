//! TIME_WAIT, which `inet_sock_set_state` never shows (docs/kernel-facts.md): the active closer's
//! socket goes to CLOSE and a separate `struct inet_timewait_sock` holds the 4-tuple, with a timer
//! whose callback is `tw_timer_handler`. Its timer tells the whole story:
//!
//! - `timer_start`  on it: the timewait socket was scheduled (entered TIME_WAIT or FIN_WAIT2
//!   substate) or re-armed;
//! - `timer_cancel` on it: removed before it fired (reuse by `tcp_tw_reuse`, an RST or SYN
//!   in TIME_WAIT, namespace teardown) — and also just before it fires, or before a re-arm;
//!   `remaining_jiffies` tells these apart;
//! - `timer_expire_entry` on it: 60 s are over, the port is free.
//!
//! BTF tracepoints with raw arguments (`btf_trace_timer_start(timer, bucket_expiry)`,
//! `btf_trace_timer_cancel(timer)`, `btf_trace_timer_expire_entry(timer, baseclk)`). Every
//! timer in the system passes through these programs, so the first thing each does is the
//! cheapest possible test that this timer is a timewait socket's.
//!
//! Unlike the state hook, these have no rescuer (`nest.rs`): they cannot nest in themselves.
//! `timer_start` and `timer_cancel` fire in `enqueue_timer()` and `detach_timer()`, always
//! under the timer base's raw spinlock taken with interrupts off (`lock_timer_base()`,
//! `__run_timers()`; kernel/time/timer.c), so nothing interrupts them on their CPU; and
//! `timer_expire_entry` fires in `call_timer_fn()` in the timer softirq, which does not nest
//! in itself, while hard interrupts do not expire `timer_list` timers. Measured under the
//! benchmark's churn: 0 recursion misses in millions of runs of each, so their rescuers (one
//! more program run for every timer in the system, ~45 ns per transition together) rescued
//! nothing. The kernel still counts any miss (`Skipped::timers`, reported).

use aya_ebpf::{
    helpers::generated::bpf_jiffies64, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use portwatch_common::{TimeWaitRecord, kind, stat, tw_op};

use crate::{
    emit::{bump, commit, reserve, task, write_header},
    kernel::{SkcBlock, btf_load, netns_inum, off, read, wanted},
    nest::hook,
};

/// Whether `timer` (the tracepoint's BTF-typed `struct timer_list *`) is a timewait socket's:
/// its callback is `tw_timer_handler`. Every timer in the system comes through here, so this
/// is one plain load (see `kernel::btf_load`), no helper call.
#[inline(always)]
fn is_tw_timer(timer: u64) -> bool {
    let handler = off::TW_TIMER_HANDLER();
    // SAFETY: `function` is a field of `struct timer_list`.
    handler != 0 && unsafe { btf_load::<u64>(timer, off::OFF_TIMER_FUNCTION()) } == handler
}

#[inline(always)]
fn emit(timer: u64, op: u8, slot: u32) {
    let tw = timer - off::OFF_TW_TIMER();
    let Ok(block) = SkcBlock::read(tw, slot) else {
        return;
    };
    let tuple = block.tuple();
    let netns = netns_inum(tuple.as_ref().map_or(0, |t| t.net));
    if !wanted(netns) {
        return;
    }
    bump(stat::TW_SEEN);
    let remaining = if op != tw_op::EXPIRE {
        // SAFETY: `expires` is a field of `struct timer_list`: a plain load, no helper call.
        let expires: u64 = unsafe { btf_load(timer, off::OFF_TIMER_EXPIRES()) };
        expires.wrapping_sub(unsafe { bpf_jiffies64() }) as i64 as i32
    } else {
        0
    };
    let (Ok(t), Ok(substate)) = (tuple, read::<u8>(tw + off::OFF_TW_SUBSTATE())) else {
        bump(stat::TW_LOST);
        return;
    };
    let Some(mut entry) = reserve::<TimeWaitRecord>(stat::TW_LOST) else {
        return;
    };
    // Written in place in the ring: no record on the stack, no copy.
    let r = entry.as_mut_ptr();
    // SAFETY: `r` is a reserved record of the right size; every byte is written.
    unsafe {
        // No task: timers start in softirq or in whatever closed the socket, and expire in
        // the timer softirq; the model follows the socket's owner instead.
        write_header(&raw mut (*r).hdr, kind::TIMEWAIT, netns, task::NONE, 0);
        (*r).tw = tw;
        (*r).saddr = t.saddr;
        (*r).daddr = t.daddr;
        (*r).sport = t.sport;
        (*r).dport = t.dport;
        (*r).family = t.family;
        (*r).op = op;
        (*r).substate = substate;
        (*r).remaining_jiffies = remaining;
        (*r)._pad = 0;
    }
    commit(entry);
}

macro_rules! timer_hooks {
    ($($primary:ident, $slot:expr, $op:expr;)*) => {$(
        #[btf_tracepoint]
        pub fn $primary(ctx: BtfTracePointContext) -> i32 {
            let timer: u64 = ctx.arg(0);
            if is_tw_timer(timer) {
                emit(timer, $op, $slot);
            }
            0
        }
    )*};
}

timer_hooks! {
    timer_start, hook::TIMER_START, tw_op::START;
    timer_cancel, hook::TIMER_CANCEL, tw_op::CANCEL;
    timer_expire_entry, hook::TIMER_EXPIRE, tw_op::EXPIRE;
}
