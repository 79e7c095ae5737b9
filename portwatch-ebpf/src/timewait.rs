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

use aya_ebpf::{
    EbpfContext, helpers::generated::bpf_jiffies64, macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use portwatch_common::{TimeWaitRecord, flag, kind, stat, tw_op};

use crate::{
    emit::{bump, header, output},
    kernel::{SkcBlock, btf_load, netns_inum, off, read, wanted},
    nest::{self, hook},
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
    let flags = if slot >= nest::RESCUER_SLOT_OFFSET {
        flag::RESCUED
    } else {
        0
    };
    let remaining = match read::<u64>(timer + off::OFF_TIMER_EXPIRES()) {
        Ok(expires) if op != tw_op::EXPIRE => {
            expires.wrapping_sub(unsafe { bpf_jiffies64() }) as i64 as i32
        }
        _ => 0,
    };
    let (Ok(t), Ok(substate)) = (tuple, read::<u8>(tw + off::OFF_TW_SUBSTATE())) else {
        bump(stat::TW_LOST);
        return;
    };
    let record = TimeWaitRecord {
        hdr: header(kind::TIMEWAIT, netns, false, flags),
        tw,
        saddr: t.saddr,
        daddr: t.daddr,
        sport: t.sport,
        dport: t.dport,
        family: t.family,
        op,
        substate,
        remaining_jiffies: remaining,
        _pad: 0,
    };
    output(&record, stat::TW_LOST);
}

macro_rules! timer_hooks {
    ($($primary:ident, $rescuer:ident, $hook:expr, $op:expr;)*) => {$(
        #[btf_tracepoint]
        pub fn $primary(ctx: BtfTracePointContext) -> i32 {
            let timer: u64 = ctx.arg(0);
            if is_tw_timer(timer) {
                let slot = nest::enter($hook, ctx.as_ptr() as u64);
                emit(timer, $op, slot);
            }
            0
        }

        /// Attached after the primary: see `nest.rs`.
        #[btf_tracepoint]
        pub fn $rescuer(ctx: BtfTracePointContext) -> i32 {
            let timer: u64 = ctx.arg(0);
            if is_tw_timer(timer)
                && let Some(slot) = nest::rescue($hook, ctx.as_ptr() as u64, stat::TIMER_RESCUED)
            {
                emit(timer, $op, slot);
            }
            0
        }
    )*};
}

timer_hooks! {
    timer_start, timer_start_rescue, hook::TIMER_START, tw_op::START;
    timer_cancel, timer_cancel_rescue, hook::TIMER_CANCEL, tw_op::CANCEL;
    timer_expire_entry, timer_expire_entry_rescue, hook::TIMER_EXPIRE, tw_op::EXPIRE;
}
