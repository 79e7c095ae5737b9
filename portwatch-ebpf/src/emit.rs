//! The ring buffer, the per-CPU counters, and the header every record starts with.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
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

/// Unread bytes above which the consumer is woken. Below it, records are written without a
/// wake-up and the consumer picks them up on its own short poll: a wake-up per record (an
/// irq_work and a task wake-up) would cost more than the rest of the program.
/// Userspace sets it before load (`WAKEUP_BYTES`); 0 means wake on every record.
#[unsafe(no_mangle)]
static WAKEUP_BYTES: u64 = 0;

/// Bytes a record of `T` takes in the ring: an 8-byte header, the record, rounded up to 8.
const fn ring_bytes<T>() -> u64 {
    ((size_of::<T>() + 8 + 7) & !7) as u64
}

/// The wake-up flag for a record of `T`: only the record that takes the unread data across
/// the threshold wakes the consumer. Above it the consumer has been woken already and is
/// draining; waking it again for every record would raise an interrupt each time (a self-IPI:
/// a VM exit under virtualisation, measured at ~1 µs per transition here) for nothing. Should
/// two CPUs race past the crossing unseen, the consumer's poll interval bounds the delay.
#[inline(always)]
fn wakeup_flags<T>() -> u64 {
    let threshold = unsafe { core::ptr::read_volatile(&raw const WAKEUP_BYTES) };
    if threshold == 0 {
        return BPF_RB_FORCE_WAKEUP as u64;
    }
    let avail = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    if avail < threshold && avail + ring_bytes::<T>() >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
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

/// Submits a record written in place, waking the consumer when it takes the unread data
/// across the threshold (the reserve already counts in the unread data).
#[inline(always)]
pub fn commit<T: 'static>(entry: RingBufEntry<T>) {
    let threshold = unsafe { core::ptr::read_volatile(&raw const WAKEUP_BYTES) };
    let flags = if threshold == 0 {
        BPF_RB_FORCE_WAKEUP
    } else {
        let avail = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
        if avail >= threshold && avail - ring_bytes::<T>() < threshold {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        }
    };
    entry.submit(flags as u64);
}

/// Writes the header for a record of `kind` in place (see [`header`]); the current task's
/// parent through its BTF-typed `task_struct` (two plain loads) and its cgroup when
/// `with_ppid`.
///
/// # Safety
/// `h` points to a reserved ring buffer record.
#[inline(always)]
pub unsafe fn write_header(h: *mut Header, kind: u8, netns: u32, with_ppid: bool, flags: u8) {
    let pid_tgid = bpf_get_current_pid_tgid();
    unsafe {
        (*h).ts_ns = bpf_ktime_get_ns();
        (*h).netns = netns;
        (*h).pid = pid_tgid as u32;
        (*h).tgid = (pid_tgid >> 32) as u32;
        (*h).ppid = if with_ppid { current_ppid_btf() } else { 0 };
        (*h).cgroup = if with_ppid {
            bpf_get_current_cgroup_id()
        } else {
            0
        };
        (*h).kind = kind;
        (*h).flags = flags;
        (*h)._pad = [0; 6];
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
