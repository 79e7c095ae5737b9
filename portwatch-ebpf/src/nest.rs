//! Rescue of nested runs. The kernel runs a BTF tracepoint program at most once per CPU at a
//! time: when an interrupt's softirq hits the same tracepoint while the program runs (say,
//! a transition traced in `connect()` is interrupted by loopback packet processing), the
//! nested run is skipped and only counted (`recursion_misses`). So each hook has two
//! programs: the primary, which does the work, and a rescuer, attached after it, which does
//! the same work for exactly the firings the kernel skipped the primary for.
//!
//! How the rescuer knows: every probe of one tracepoint firing is handed the same context
//! address (the arguments array in the same frame of the tracepoint's iterator), and firings
//! live at once on a CPU have different ones. The primary, once its filter passed, pushes its
//! context onto a small per-CPU stack; the rescuer, after the same filter, looks for its own:
//! found, the primary ran for this firing (the entry goes, with any above it, left by firings
//! whose rescuer was itself skipped); not found, the primary was skipped — nested in another
//! run, including the primary's first and last instructions, which a "primary is running"
//! flag would miss — and the rescuer does the work. Old entries are ignored
//! ([`FRESH_JIFFIES`]): a left-over entry never vouches for a much later firing that happens
//! to reuse its stack slot.
//! A firing is lost only when the rescuer too is running on that CPU (counted: userspace
//! reports primary misses minus rescues).
//!
//! Measured, not explained: under floods a rescuer sometimes does the work for a firing whose
//! primary ran too (about once per 10⁵–10⁶ firings: a rescue with no recursion miss to
//! match it, the record an exact repeat of the primary's, written microseconds to
//! milliseconds later, with the primary's entry gone from this CPU's stack). So rescuers mark
//! their records (`flag::RESCUED`) and userspace drops, and counts, one that repeats a recent
//! primary record (`portwatch/src/collect/dedup.rs`).

use aya_ebpf::{helpers::generated::bpf_jiffies64, macros::map, maps::PerCpuArray};

use crate::emit::bump;

const DEPTH: usize = 4;

/// How long an entry vouches for its firing, in jiffies (1 s at HZ=250, the most common
/// setting). Between a primary and its rescuer the CPU serves interrupts and their softirqs,
/// and a virtual CPU can be descheduled by its host for a long time: an entry that expired
/// meanwhile makes the rescuer repeat the primary's record (measured: about 2 per million
/// firings with one jiffy, 1 in 14 million with 64). A left-over entry (see above: rare in
/// itself) only matters if an identical context is skipped within this time.
const FRESH_JIFFIES: u64 = 256;

/// Contexts of firings whose primary ran and whose rescuer has not yet seen them.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    depth: u64,
    ctx: [u64; DEPTH],
    jiffies: [u64; DEPTH],
}

/// One entry per hook with a rescuer: only the state hook (the timer hooks cannot nest in
/// themselves: see `timewait.rs`).
#[map(name = "PENDING")]
static PENDING: PerCpuArray<Pending> = PerCpuArray::with_max_entries(1, 0);

/// The hooks, numbering the programs' scratch slots (`kernel::SkcBlock`; a rescuer uses
/// `hook + RESCUER_SLOT_OFFSET`) and, for the state hook, its entry in `PENDING`.
pub mod hook {
    pub const STATE: u32 = 0;
    pub const TIMER_START: u32 = 1;
    pub const TIMER_CANCEL: u32 = 2;
    pub const TIMER_EXPIRE: u32 = 3;
}

pub const RESCUER_SLOT_OFFSET: u32 = 4;

/// For `hook`'s primary, whose filter passed for the firing with context `ctx`: records that
/// it ran (before any work, so that a firing nested in the work is told apart); returns its
/// scratch slot. (No closures here: the BPF backend then keeps everything in one function,
/// which the verifier needs.)
#[inline(always)]
pub fn enter(hook: u32, ctx: u64) -> u32 {
    if let Some(p) = PENDING.get_ptr_mut(hook) {
        // SAFETY: this CPU's slot. A run nested in ours writes it too, but only by pushing
        // above our entry and popping back to it, before we continue.
        let p = unsafe { &mut *p };
        let now = unsafe { bpf_jiffies64() };
        let mut d = p.depth as usize;
        if d >= DEPTH {
            // Full of left-overs (live nesting is two deep): drop the oldest.
            p.ctx[0] = p.ctx[1];
            p.ctx[1] = p.ctx[2];
            p.ctx[2] = p.ctx[3];
            p.jiffies[0] = p.jiffies[1];
            p.jiffies[1] = p.jiffies[2];
            p.jiffies[2] = p.jiffies[3];
            d = DEPTH - 1;
        }
        p.ctx[d & (DEPTH - 1)] = ctx;
        p.jiffies[d & (DEPTH - 1)] = now;
        p.depth = d as u64 + 1;
    }
    hook
}

/// For `hook`'s rescuer, whose filter passed for the firing with context `ctx`: the scratch
/// slot to work with if the kernel skipped the primary for this firing, else `None`.
#[inline(always)]
pub fn rescue(hook: u32, ctx: u64, rescued_stat: u32) -> Option<u32> {
    let p = PENDING.get_ptr_mut(hook)?;
    // SAFETY: this CPU's slot; see `enter`.
    let p = unsafe { &mut *p };
    let now = unsafe { bpf_jiffies64() };
    let d = p.depth as usize;
    // Unrolled, newest first.
    let mut i = DEPTH;
    while i > 0 {
        i -= 1;
        if i < d && p.ctx[i] == ctx && now.wrapping_sub(p.jiffies[i]) <= FRESH_JIFFIES {
            p.depth = i as u64;
            return None;
        }
    }
    bump(rescued_stat);
    Some(hook + RESCUER_SLOT_OFFSET)
}
