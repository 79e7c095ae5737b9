//! The records that portwatch's eBPF programs write into the ring buffer, and the names they
//! share with userspace (maps, globals, statistics slots).
//!
//! Rules of this ABI: `#[repr(C)]`, fixed-width integers and byte arrays only, explicit padding,
//! a size assertion per record. Every record starts with a [`Header`] whose `kind` says which
//! record follows. Kinds are stable numbers: add new ones, never renumber.
//!
//! Enums and booleans never cross this boundary as Rust enums: the kernel writes plain integers
//! and userspace converts them with `TryFrom`, rejecting what it does not know.
#![no_std]

use core::mem::size_of;

/// Length of `task_struct.comm`, NUL-padded.
pub const COMM_LEN: usize = 16;

/// Record kinds (`Header::kind`).
pub mod kind {
    /// [`super::StateRecord`]: `sock:inet_sock_set_state` for a TCP socket.
    pub const STATE: u8 = 1;
    /// [`super::CallRecord`]: a `connect()` or `bind()` that failed (or a `bind()` that
    /// succeeded, or a non-blocking `connect()` that returned `EINPROGRESS`).
    pub const CALL: u8 = 2;
    /// [`super::TimeWaitRecord`]: a timewait socket's timer started, was cancelled, or expired.
    pub const TIMEWAIT: u8 = 3;
}

/// `CallRecord::call`.
pub mod call {
    pub const CONNECT: u8 = 1;
    pub const BIND: u8 = 2;
}

/// `TimeWaitRecord::op`.
pub mod tw_op {
    /// `timer:timer_start` on a timewait socket's timer: it entered (or re-armed) TIME_WAIT.
    pub const START: u8 = 1;
    /// `timer:timer_cancel`: the timer was removed before (or as) it fired.
    pub const CANCEL: u8 = 2;
    /// `timer:timer_expire_entry`: the 60 s ran out; the port is free.
    pub const EXPIRE: u8 = 3;
}

/// Bits of [`Header::flags`].
pub mod flag {
    /// Written by a rescuer program (see `portwatch-ebpf/src/nest.rs`), not by the primary.
    /// Userspace drops such a record when it repeats the primary's record of the same
    /// firing (a rescue that was not needed), and counts it.
    pub const RESCUED: u8 = 1;
}

/// Address families as the kernel numbers them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u16 = 6;

/// Common header of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// Inode number of the socket's network namespace (`net->ns.inum`); 0 when unreadable.
    pub netns: u32,
    /// Thread id of the task running when the event fired (not necessarily the owner). The
    /// task fields (`pid`, `tgid`, `comm`; `ppid` and `cgroup` see below) are written only
    /// where that task means something: calls, CLOSE → SYN_SENT, CLOSE → LISTEN and
    /// SYN_SENT → CLOSE; every other transition and every timewait record has them 0.
    pub pid: u32,
    /// Process id (thread group id) of that task.
    pub tgid: u32,
    /// Process id of that task's parent (`real_parent->tgid`); 0 when unknown. Groups
    /// short-lived processes (a `curl` loop) under the parent that starts them.
    pub ppid: u32,
    /// One of [`kind`].
    pub kind: u8,
    /// Bits of [`flag`].
    pub flags: u8,
    pub _pad: [u8; 6],
    /// `comm` of that task, NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// `bpf_get_current_cgroup_id()`: the task's cgroup in the unified hierarchy (the inode
    /// of its directory there), written where the task is the socket's owner (the records
    /// that carry `ppid`); 0 elsewhere. Userspace maps it to a unit, container or pod, so a
    /// socket still names its container after its owner has exited.
    pub cgroup: u64,
}
const _: () = assert!(size_of::<Header>() == 56);

/// One TCP state transition (`sock:inet_sock_set_state`, protocol TCP only).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRecord {
    pub hdr: Header,
    /// Kernel address of the `struct sock`: identifies the socket for its lifetime.
    pub skaddr: u64,
    /// Local address: IPv4 in the first 4 bytes when `family == AF_INET`, else IPv6.
    pub saddr: [u8; 16],
    /// Remote address, same layout.
    pub daddr: [u8; 16],
    /// Local port, host byte order (0 while `connect()` has not chosen one yet).
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    pub family: u16,
    /// Kernel TCP state numbers (`TCP_ESTABLISHED` = 1 … `TCP_NEW_SYN_RECV` = 12).
    pub oldstate: u8,
    pub newstate: u8,
}
const _: () = assert!(size_of::<StateRecord>() == 104);

/// A `connect()` or `bind()` on an AF_INET/AF_INET6 address: failures, successful binds, and
/// non-blocking connects in progress (`ret == -EINPROGRESS`, with the chosen port).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub hdr: Header,
    /// The `struct sock` behind `fd`, resolved in the kernel; 0 when it could not be.
    pub sk: u64,
    /// Requested address from the caller's sockaddr, same layout as [`StateRecord::saddr`].
    pub addr: [u8; 16],
    /// Syscall return value: 0 or a negative errno.
    pub ret: i32,
    pub fd: i32,
    /// Requested port, host byte order.
    pub port: u16,
    /// Requested family (sockaddr's `sa_family`).
    pub family: u16,
    /// One of [`call`].
    pub call: u8,
    pub _pad: u8,
    /// For a successful `bind()`, and for a `connect()` that returned `EINPROGRESS`: the local
    /// port the socket holds now (host order; for the connect, the source port it chose, which
    /// no state transition has shown yet); else 0.
    pub bound_port: u16,
}
const _: () = assert!(size_of::<CallRecord>() == 96);

/// A timewait socket's timer: the kernel's only trace of TIME_WAIT (see docs/kernel-facts.md,
/// "TIME_WAIT").
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWaitRecord {
    pub hdr: Header,
    /// Kernel address of the `struct inet_timewait_sock`.
    pub tw: u64,
    /// Local address/port of the 4-tuple the timewait socket holds.
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    /// One of [`tw_op`].
    pub op: u8,
    /// `tw_substate`: TCP_TIME_WAIT (6) or TCP_FIN_WAIT2 (5).
    pub substate: u8,
    /// Timer expiry minus now, in jiffies (signed: ≤ 0 on a cancel means the timer was due).
    pub remaining_jiffies: i32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<TimeWaitRecord>() == 112);

/// Bytes of `struct sock_common` the programs read at once (a power of two). Every
/// `sock_common` field they use must lie inside; userspace checks this against BTF.
pub const SKC_BLOCK: usize = 128;

/// Largest record, for buffer sizing.
pub const MAX_RECORD_SIZE: usize = 112;

/// Field offsets in the classic syscall tracepoints' records, read from
/// /sys/kernel/tracing/events/syscalls/sys_{enter,exit}_{connect,bind}/format on Linux 6.18
/// (x86_64). Userspace checks them against the live format files before attaching.
pub mod syscall_tp {
    /// `field:int fd; offset:16; size:8; signed:0;`
    pub const ENTER_FD: usize = 16;
    /// `field:struct sockaddr * uservaddr` (connect) / `umyaddr` (bind): `offset:24; size:8;`
    pub const ENTER_ADDR: usize = 24;
    /// `field:int addrlen; offset:32; size:8; signed:0;`
    pub const ENTER_ADDRLEN: usize = 32;
    /// `field:long ret; offset:16; size:8; signed:1;` (sys_exit_*)
    pub const EXIT_RET: usize = 16;
}

/// Names of the maps the eBPF object defines.
pub mod maps {
    /// The ring buffer every record goes through.
    pub const EVENTS: &str = "EVENTS";
    /// `PerCpuArray<u64>` of [`super::stat`] counters.
    pub const STATS: &str = "STATS";
    /// `LruPerCpuHashMap<LatencyKey, LatencyHist>`: `connect()` latency per destination
    /// ([`super::latency`]).
    pub const CONNECT_LATENCY: &str = "CONNECT_LATENCY";
}

/// `connect()` latency, aggregated in the kernel per (network namespace, destination) instead
/// of one record per call: a count, a sum and a histogram of half-octave buckets, cumulative
/// since the entry was made, read by userspace once a second (docs/early-warning.md).
pub mod latency {
    /// Histogram buckets: bucket 0 is `[0, 512 ns)`; bucket `i ≥ 1` starts at
    /// `2^l + h·2^(l−1)` ns with `l = 9 + (i−1)/2`, `h = (i−1) % 2`; the last one (from
    /// 2^32 ns, 4.3 s) has no upper end.
    pub const BUCKETS: usize = 48;
    /// log2 of bucket 1's lower end (512 ns).
    pub const MIN_SHIFT: u32 = 9;
    /// Entries of the map (least recently used destinations go first).
    pub const MAX_DESTINATIONS: u32 = 1024;

    /// The bucket of a duration, without loops (the eBPF programs call it).
    #[inline(always)]
    pub fn bucket(ns: u64) -> usize {
        if ns < (1 << MIN_SHIFT) {
            return 0;
        }
        let mut v = ns;
        let mut l = 0u32;
        if v >= 1 << 32 {
            v >>= 32;
            l += 32;
        }
        if v >= 1 << 16 {
            v >>= 16;
            l += 16;
        }
        if v >= 1 << 8 {
            v >>= 8;
            l += 8;
        }
        if v >= 1 << 4 {
            v >>= 4;
            l += 4;
        }
        if v >= 1 << 2 {
            v >>= 2;
            l += 2;
        }
        if v >= 1 << 1 {
            l += 1;
        }
        let half = ((ns >> (l - 1)) & 1) as usize;
        let i = 1 + (l - MIN_SHIFT) as usize * 2 + half;
        if i >= BUCKETS { BUCKETS - 1 } else { i }
    }

    /// The lower end of bucket `i`, in ns.
    pub const fn lower_ns(i: usize) -> u64 {
        if i == 0 {
            return 0;
        }
        let l = MIN_SHIFT + ((i - 1) / 2) as u32;
        (1u64 << l) + ((i - 1) % 2) as u64 * (1u64 << (l - 1))
    }
}

/// Key of [`maps::CONNECT_LATENCY`]: the caller's network namespace and the address it
/// connects to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LatencyKey {
    pub netns: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// Destination port, host byte order.
    pub port: u16,
    /// Destination address, same layout as [`StateRecord::saddr`].
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<LatencyKey>() == 24);

/// Value of [`maps::CONNECT_LATENCY`] (per CPU): every `connect()` toward the key, whatever
/// it returned, timed from `sys_enter_connect` to `sys_exit_connect`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHist {
    pub calls: u64,
    pub sum_ns: u64,
    /// Calls per [`latency::bucket`] (wraps; userspace takes differences).
    pub buckets: [u32; latency::BUCKETS],
}
const _: () = assert!(size_of::<LatencyHist>() == 16 + 4 * latency::BUCKETS);

/// Slots of the per-CPU `STATS` array. Every record a program tries to emit counts once in a
/// `*_SEEN` slot, and once more in the matching `*_LOST` slot if the ring buffer had no room, so
/// `received + lost + duplicates == seen` holds exactly once userspace has drained the ring
/// (`duplicates`: the rare rescued record userspace drops as a repeat, `flag::RESCUED`).
pub mod stat {
    pub const STATE_SEEN: u32 = 0;
    pub const STATE_LOST: u32 = 1;
    pub const CALL_SEEN: u32 = 2;
    pub const CALL_LOST: u32 = 3;
    pub const TW_SEEN: u32 = 4;
    pub const TW_LOST: u32 = 5;
    /// `connect()`/`bind()` entries that could not be remembered until the syscall returned
    /// (the per-thread table was full): a failure of such a call goes unreported.
    pub const CALL_UNTRACKED: u32 = 6;
    /// Kernel reads that failed (netns, timewait tuple, fd → socket).
    pub const READ_FAILED: u32 = 7;
    /// Runs of the state hook that the kernel skipped for the primary program (nested on one
    /// CPU) and that the rescuer program did instead. Lost runs = primary misses - rescued.
    pub const STATE_RESCUED: u32 = 8;
    /// Same for the three timer hooks together: no longer written (they have no rescuers,
    /// as they cannot nest: portwatch-ebpf/src/timewait.rs), kept so that slots keep their
    /// numbers; always 0.
    pub const TIMER_RESCUED: u32 = 9;
    pub const COUNT: u32 = 10;
}

/// Names of the read-only globals that userspace fills in before load. Offsets come from the
/// running kernel's BTF; a zero offset disables the read that needs it.
pub mod globals {
    /// Only events of this network namespace (inode number); 0 = every namespace. Filtered
    /// before anything is counted, so the counters then describe this namespace alone.
    pub const FILTER_NETNS: &str = "FILTER_NETNS";
    /// Bytes a CPU commits to the ring between two wake-ups of the consumer (0: every
    /// record); in between the consumer polls.
    pub const WAKEUP_BYTES: &str = "WAKEUP_BYTES";
    /// `offsetof(struct sock_common, skc_net)`.
    pub const OFF_SKC_NET: &str = "OFF_SKC_NET";
    /// `offsetof(struct net, ns) + offsetof(struct ns_common, inum)`.
    pub const OFF_NET_INUM: &str = "OFF_NET_INUM";
    /// `sock_common` fields, used on timewait sockets (which start with a `sock_common`).
    pub const OFF_SKC_DADDR: &str = "OFF_SKC_DADDR";
    pub const OFF_SKC_RCV_SADDR: &str = "OFF_SKC_RCV_SADDR";
    pub const OFF_SKC_DPORT: &str = "OFF_SKC_DPORT";
    pub const OFF_SKC_NUM: &str = "OFF_SKC_NUM";
    pub const OFF_SKC_FAMILY: &str = "OFF_SKC_FAMILY";
    pub const OFF_SKC_V6_DADDR: &str = "OFF_SKC_V6_DADDR";
    pub const OFF_SKC_V6_RCV_SADDR: &str = "OFF_SKC_V6_RCV_SADDR";
    /// `offsetof(struct inet_sock, inet_sport)`: a full socket's local port (network order).
    /// Unlike `skc_num`, it survives `inet_put_port()`, which runs before the transition to
    /// CLOSE is traced (the classic tracepoint reads it too).
    pub const OFF_INET_SPORT: &str = "OFF_INET_SPORT";
    /// `offsetof(struct sock, sk_protocol)` (a plain `u16`, not a bitfield, since Linux 5.6).
    pub const OFF_SK_PROTOCOL: &str = "OFF_SK_PROTOCOL";
    /// `offsetof(struct inet_timewait_sock, tw_timer)`.
    pub const OFF_TW_TIMER: &str = "OFF_TW_TIMER";
    /// `offsetof(struct inet_timewait_sock, tw_substate)`.
    pub const OFF_TW_SUBSTATE: &str = "OFF_TW_SUBSTATE";
    /// `offsetof(struct timer_list, expires)` and `function`.
    pub const OFF_TIMER_EXPIRES: &str = "OFF_TIMER_EXPIRES";
    pub const OFF_TIMER_FUNCTION: &str = "OFF_TIMER_FUNCTION";
    /// Address of `tw_timer_handler` (from /proc/kallsyms); 0 disables the timewait programs.
    pub const TW_TIMER_HANDLER: &str = "TW_TIMER_HANDLER";
    /// fd → socket: `task_struct.files`, `files_struct.fdt`, `fdtable.fd`, `fdtable.max_fds`,
    /// `file.f_inode`, `inode.i_mode` (must be S_IFSOCK), `file.private_data` (the
    /// `struct socket`), `socket.sk`. `OFF_TASK_FILES == 0` disables the walk.
    pub const OFF_TASK_FILES: &str = "OFF_TASK_FILES";
    pub const OFF_FILES_FDT: &str = "OFF_FILES_FDT";
    pub const OFF_FDT_FD: &str = "OFF_FDT_FD";
    pub const OFF_FDT_MAX_FDS: &str = "OFF_FDT_MAX_FDS";
    pub const OFF_FILE_F_INODE: &str = "OFF_FILE_F_INODE";
    pub const OFF_INODE_I_MODE: &str = "OFF_INODE_I_MODE";
    pub const OFF_FILE_PRIVATE_DATA: &str = "OFF_FILE_PRIVATE_DATA";
    pub const OFF_SOCKET_SK: &str = "OFF_SOCKET_SK";
    /// The caller's network namespace when its socket is unknown: `task_struct.nsproxy`,
    /// `nsproxy.net_ns`.
    pub const OFF_TASK_NSPROXY: &str = "OFF_TASK_NSPROXY";
    pub const OFF_NSPROXY_NET_NS: &str = "OFF_NSPROXY_NET_NS";
    /// The current task's parent process: `task_struct.real_parent`, `task_struct.tgid`.
    pub const OFF_TASK_REAL_PARENT: &str = "OFF_TASK_REAL_PARENT";
    pub const OFF_TASK_TGID: &str = "OFF_TASK_TGID";
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data: repr(C), only integers and byte arrays, no implicit padding
    // (each struct's size is asserted above and every gap is an explicit `_pad` field).
    unsafe impl aya::Pod for super::Header {}
    unsafe impl aya::Pod for super::StateRecord {}
    unsafe impl aya::Pod for super::CallRecord {}
    unsafe impl aya::Pod for super::TimeWaitRecord {}
    unsafe impl aya::Pod for super::LatencyKey {}
    unsafe impl aya::Pod for super::LatencyHist {}
}
