//! The ring buffer, the per-CPU counters, and the header every record starts with.

use aya_ebpf::{
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
    },
    macros::map,
    maps::{PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use core::intrinsics::{AtomicOrdering, atomic_xadd};

use portwatch_common::{COMM_LEN, Header, stat};

use crate::kernel::{current_ppid, current_ppid_btf};

/// 4 MiB by default; userspace may resize it before load (`--ring-size`).
#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);

#[map(name = "STATS")]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stat::COUNT, 0);

/// Adds one to a `stat` slot of this CPU. Atomically: the slot is per CPU, but a program
/// interrupted by a softirq on its CPU can have the nested run (a rescuer, or another hook)
/// bump the same slot between its load and its store.
#[inline(always)]
pub fn bump(slot: u32) {
    if let Some(p) = STATS.get_ptr_mut(slot) {
        // SAFETY: a valid, aligned u64 map value for the program's whole run. (core's AtomicU64
        // has no fetch_add on this target; the intrinsic lowers to BPF_ATOMIC BPF_ADD.)
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, 1) };
    }
}

/// The header for a record of `kind`, stamped now, with the current task; its parent's pid
/// and its cgroup only when `with_ppid` (they cost two kernel reads and a helper call, and
/// matter only where the current task is the socket's owner).
#[inline(always)]
pub fn header(kind: u8, netns: u32, with_ppid: bool, flags: u8) -> Header {
    let pid_tgid = bpf_get_current_pid_tgid();
    Header {
        ts_ns: unsafe { bpf_ktime_get_ns() },
        netns,
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        ppid: if with_ppid { current_ppid() } else { 0 },
        kind,
        flags,
        _pad: [0; 6],
        comm: bpf_get_current_comm().unwrap_or([0; COMM_LEN]),
        cgroup: if with_ppid {
            unsafe { bpf_get_current_cgroup_id() }
        } else {
            0
        },
    }
}

/// Bytes that one CPU commits between two wake-ups of the consumer; 0 means wake on every
/// record. Userspace sets it before load (`WAKEUP_BYTES`, `collect::wakeup_bytes`). Between
/// wake-ups records are written without one and the consumer picks them up on its own poll:
/// a wake-up per record (an irq_work, a self-IPI — a VM exit under virtualisation, measured at
/// ~1 µs per transition here — and a task wake-up) would cost more than the rest of the program.
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 0;

/// Bytes committed on this CPU since its last wake-up of the consumer (slot 0).
#[map(name = "WAKE")]
static WAKE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Bytes a record of `T` takes in the ring: an 8-byte header, the record, rounded up to 8.
const fn ring_bytes<T>() -> u64 {
    ((size_of::<T>() + 8 + 7) & !7) as u64
}

/// The wake-up flag for a record of `T`: every [`WAKEUP_BYTES`] committed on a CPU, one record
/// wakes the consumer. A per-CPU count instead of asking the ring for its unread data
/// (`bpf_ringbuf_query(BPF_RB_AVAIL_DATA)`, a load of both positions of a ring every CPU writes
/// to) on every record. The count does not know what the consumer read meanwhile, so a wake-up
/// can find the ring nearly empty (one per `WAKEUP_BYTES` per CPU, harmless); the consumer's
/// level-triggered poll never sleeps while data is unread, and its poll interval bounds the
/// delay when no CPU reached the threshold. Not atomic: a program nested on this CPU (a softirq
/// interrupting it) may lose an addition, which only delays a wake-up.
#[inline(always)]
fn wakeup_flags<T>() -> u64 {
    let threshold = unsafe { core::ptr::read_volatile(&raw const WAKEUP_BYTES) };
    if threshold == 0 {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    let Some(p) = WAKE.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's value of the map, valid for the program's whole run.
    unsafe {
        let n = *p + ring_bytes::<T>();
        if n >= threshold {
            *p = 0;
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            *p = n;
            BPF_RB_NO_WAKEUP as u64
        }
    }
}

/// Room for one `T` in the ring buffer, to be written in place and [`commit`]ted (or
/// discarded); `None`, counted lost in `lost_slot`, when the ring is full. The caller has
/// already counted the record seen.
#[inline(always)]
pub fn reserve<T: 'static>(lost_slot: u32) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        bump(lost_slot);
    }
    entry
}

/// Submits a record written in place, waking the consumer once every [`WAKEUP_BYTES`]
/// committed on this CPU (see [`wakeup_flags`]).
#[inline(always)]
pub fn commit<T: 'static>(entry: RingBufEntry<T>) {
    entry.submit(wakeup_flags::<T>());
}

/// How much of the current task a record carries ([`write_header`]).
pub mod task {
    /// None (pid, tid, ppid, cgroup 0, comm empty): the record fired where the current task is
    /// unrelated to the socket (softirq) and nobody reads it. Saves two helper calls.
    pub const NONE: u8 = 0;
    /// Its pid, tid and comm: the caller of a syscall, whose result userspace names
    /// (a `connect()` that found no port: SYN_SENT → CLOSE).
    pub const CALLER: u8 = 1;
    /// Also its parent's pid and its cgroup: the socket's owner, which the model remembers.
    pub const OWNER: u8 = 2;
}

/// Writes the header for a record of `kind` in place (see [`header`]), with as much of the
/// current task as `task` says ([`task`]); the parent through its BTF-typed `task_struct` (two
/// plain loads).
///
/// # Safety
/// `h` points to a reserved ring buffer record.
#[inline(always)]
pub unsafe fn write_header(h: *mut Header, kind: u8, netns: u32, task: u8, flags: u8) {
    unsafe {
        (*h).ts_ns = bpf_ktime_get_ns();
        (*h).netns = netns;
        (*h).kind = kind;
        (*h).flags = flags;
        (*h)._pad = [0; 6];
        if task == task::NONE {
            (*h).pid = 0;
            (*h).tgid = 0;
            (*h).ppid = 0;
            (*h).cgroup = 0;
            (*h).comm = [0; COMM_LEN];
            return;
        }
        let pid_tgid = bpf_get_current_pid_tgid();
        (*h).pid = pid_tgid as u32;
        (*h).tgid = (pid_tgid >> 32) as u32;
        if task == task::OWNER {
            (*h).ppid = current_ppid_btf();
            (*h).cgroup = bpf_get_current_cgroup_id();
        } else {
            (*h).ppid = 0;
            (*h).cgroup = 0;
        }
        let comm = &raw mut (*h).comm;
        if aya_ebpf::helpers::generated::bpf_get_current_comm(comm.cast(), COMM_LEN as u32) != 0 {
            *comm = [0; COMM_LEN];
        }
    }
}

/// Writes `record` into the ring buffer; counts it lost if there was no room. The caller has
/// already counted it seen.
#[inline(always)]
pub fn output<T>(record: &T, lost_slot: u32) {
    if EVENTS.output::<T>(record, wakeup_flags::<T>()).is_err() {
        bump(lost_slot);
    }
}
