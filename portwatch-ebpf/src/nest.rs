//! Rescue of nested runs. The kernel runs a BTF tracepoint program at most once per CPU at a
//! time: when an interrupt's softirq hits the same tracepoint while the program runs (say,
//! a transition traced in `connect()` is interrupted by loopback packet processing), the
//! nested run is skipped and only counted (`recursion_misses`). So each hook has two
//! programs: the primary, which does the work and marks itself running on this CPU, and a
//! rescuer, attached after it, which does the same work only when it finds the primary
//! running on its CPU — exactly the runs the kernel skipped for the primary. A run is lost
//! only when the rescuer itself is interrupted by a third one (counted as well: userspace
//! reports primary misses minus rescues).

use aya_ebpf::{macros::map, maps::PerCpuArray};

use crate::emit::bump;

/// Per hook: 1 while its primary program runs on this CPU.
#[map(name = "RUNNING")]
static RUNNING: PerCpuArray<u32> = PerCpuArray::with_max_entries(4, 0);

/// Hooks with a primary and a rescuer; also their primaries' scratch slots
/// (`kernel::SkcBlock`), the rescuers using `hook + RESCUER_SLOT_OFFSET`.
pub mod hook {
    pub const STATE: u32 = 0;
    pub const TIMER_START: u32 = 1;
    pub const TIMER_CANCEL: u32 = 2;
    pub const TIMER_EXPIRE: u32 = 3;
}

pub const RESCUER_SLOT_OFFSET: u32 = 4;

/// Marks `hook`'s primary as running on this CPU until [`leave`]; returns its scratch slot.
/// (No closures here: the BPF backend then keeps everything in one function, which the
/// verifier needs.)
#[inline(always)]
pub fn enter(hook: u32) -> u32 {
    set_running(hook, 1);
    hook
}

#[inline(always)]
pub fn leave(hook: u32) {
    set_running(hook, 0);
}

#[inline(always)]
fn set_running(hook: u32, v: u32) {
    if let Some(p) = RUNNING.get_ptr_mut(hook) {
        // SAFETY: this CPU's slot; nothing else writes it while we run (a nested primary is
        // skipped by the kernel).
        unsafe { *p = v };
    }
}

/// For `hook`'s rescuer: the scratch slot to work with if the primary is running on this
/// CPU — which means this run interrupted it and the kernel skipped the primary for it —
/// else `None`.
#[inline(always)]
pub fn rescue(hook: u32, rescued_stat: u32) -> Option<u32> {
    if RUNNING.get(hook) == Some(&1) {
        bump(rescued_stat);
        Some(hook + RESCUER_SLOT_OFFSET)
    } else {
        None
    }
}
