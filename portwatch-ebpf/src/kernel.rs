//! Struct offsets and kernel addresses that userspace reads from the running kernel (BTF,
//! /proc/kallsyms) and writes into these read-only globals before load, and the reads that
//! use them. Nothing here is hard-coded for one kernel.

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf, generated::bpf_get_current_task},
    macros::map,
    maps::PerCpuArray,
};
use portwatch_common::{AF_INET, AF_INET6, stat};

use crate::emit::bump;

macro_rules! globals {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            static $name: u64 = 0;
        )*
        /// Reads of the globals: volatile so that the compiler does not fold the zero that
        /// the object file holds before userspace fills them in.
        #[allow(non_snake_case)]
        pub mod off {
            $(
                #[inline(always)]
                pub fn $name() -> u64 {
                    unsafe { core::ptr::read_volatile(&raw const super::$name) }
                }
            )*
        }
    };
}

globals!(
    FILTER_NETNS,
    OFF_SKC_NET,
    OFF_NET_INUM,
    OFF_SKC_DADDR,
    OFF_SKC_RCV_SADDR,
    OFF_SKC_DPORT,
    OFF_SKC_NUM,
    OFF_SKC_FAMILY,
    OFF_SKC_V6_DADDR,
    OFF_SKC_V6_RCV_SADDR,
    OFF_SK_PROTOCOL,
    OFF_INET_SPORT,
    OFF_TW_TIMER,
    OFF_TW_SUBSTATE,
    OFF_TIMER_EXPIRES,
    OFF_TIMER_FUNCTION,
    TW_TIMER_HANDLER,
    OFF_TASK_FILES,
    OFF_FILES_FDT,
    OFF_FDT_FD,
    OFF_FDT_MAX_FDS,
    OFF_FILE_F_INODE,
    OFF_INODE_I_MODE,
    OFF_FILE_PRIVATE_DATA,
    OFF_SOCKET_SK,
    OFF_TASK_NSPROXY,
    OFF_NSPROXY_NET_NS,
    OFF_TASK_REAL_PARENT,
    OFF_TASK_TGID,
);

/// Reads a `T` at a kernel address; a failure counts in `stat::READ_FAILED`.
#[inline(always)]
pub fn read<T>(addr: u64) -> Result<T, ()> {
    match unsafe { bpf_probe_read_kernel(addr as *const T) } {
        Ok(v) => Ok(v),
        Err(_) => {
            bump(stat::READ_FAILED);
            Err(())
        }
    }
}

/// A load through a BTF-typed kernel pointer (a `tp_btf` argument such as `struct sock *`,
/// or a pointer loaded through one) at `off`, a known constant to the verifier (a read-only
/// global). No helper call: the verifier checks the access against the kernel's BTF and
/// makes it fault-safe (a fault reads 0). Only for fields inside the pointer's own struct.
///
/// # Safety
/// `ptr` must be such a pointer, for the verifier to accept the program.
#[inline(always)]
pub unsafe fn btf_load<T: Copy>(ptr: u64, off: u64) -> T {
    unsafe { core::ptr::read_volatile((ptr + off) as *const T) }
}

/// Inode number of the network namespace of `sk`, a BTF-typed `struct sock *` (see
/// [`btf_load`]): two plain loads, cheap enough to filter on before anything else.
#[inline(always)]
pub fn netns_of_btf_sk(sk: u64) -> u32 {
    let off_net = off::OFF_SKC_NET();
    if off_net == 0 {
        return 0;
    }
    // SAFETY: `sk` is the tracepoint's BTF-typed socket; `skc_net.net` and `ns.inum` are
    // fields of `struct sock_common` and `struct net` at offsets userspace read from BTF.
    let net: u64 = unsafe { btf_load(sk, off_net) };
    if net == 0 {
        return 0;
    }
    unsafe { btf_load::<u32>(net, off::OFF_NET_INUM()) }
}

/// `sk->sk_protocol` of a BTF-typed `struct sock *` (see [`btf_load`]).
#[inline(always)]
pub fn protocol_of_btf_sk(sk: u64) -> u16 {
    // SAFETY: `sk_protocol` is a field of `struct sock`.
    unsafe { btf_load(sk, off::OFF_SK_PROTOCOL()) }
}

/// Inode number of the network namespace of a `struct sock_common` (a socket or a timewait
/// socket); 0 when unknown.
#[inline(always)]
pub fn netns_of(skc: u64) -> u32 {
    let off_net = off::OFF_SKC_NET();
    if off_net == 0 || skc == 0 {
        return 0;
    }
    match read::<u64>(skc + off_net) {
        Ok(net) if net != 0 => read::<u32>(net + off::OFF_NET_INUM()).unwrap_or(0),
        _ => 0,
    }
}

/// Whether events of namespace `netns` are wanted (`FILTER_NETNS`, 0 = all).
#[inline(always)]
pub fn wanted(netns: u32) -> bool {
    let filter = off::FILTER_NETNS();
    filter == 0 || filter == netns as u64
}

/// Inode number of the current task's network namespace; 0 when unknown.
#[inline(always)]
pub fn current_netns() -> u32 {
    let off_nsproxy = off::OFF_TASK_NSPROXY();
    if off_nsproxy == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() };
    let Ok(nsproxy) = read::<u64>(task + off_nsproxy) else {
        return 0;
    };
    if nsproxy == 0 {
        return 0;
    }
    match read::<u64>(nsproxy + off::OFF_NSPROXY_NET_NS()) {
        Ok(net) if net != 0 => read::<u32>(net + off::OFF_NET_INUM()).unwrap_or(0),
        _ => 0,
    }
}

/// Inode number of the current task's network namespace through its BTF-typed `task_struct`
/// (three plain loads, no helper call beyond getting the task: see [`btf_load`]); 0 when
/// unknown (a task whose `nsproxy` is gone, exiting).
#[inline(always)]
pub fn current_netns_btf() -> u32 {
    let off_nsproxy = off::OFF_TASK_NSPROXY();
    if off_nsproxy == 0 {
        return 0;
    }
    let task = unsafe { aya_ebpf::helpers::generated::bpf_get_current_task_btf() } as u64;
    if task == 0 {
        return 0;
    }
    // SAFETY: `nsproxy` is a field of `struct task_struct`, `net_ns` of `struct nsproxy`,
    // `ns.inum` of `struct net`.
    let nsproxy: u64 = unsafe { btf_load(task, off_nsproxy) };
    if nsproxy == 0 {
        return 0;
    }
    let net: u64 = unsafe { btf_load(nsproxy, off::OFF_NSPROXY_NET_NS()) };
    if net == 0 {
        return 0;
    }
    unsafe { btf_load::<u32>(net, off::OFF_NET_INUM()) }
}

/// Process id of the current task's parent; 0 when unknown.
#[inline(always)]
pub fn current_ppid() -> u32 {
    let off_parent = off::OFF_TASK_REAL_PARENT();
    if off_parent == 0 {
        return 0;
    }
    let task = unsafe { bpf_get_current_task() };
    match read::<u64>(task + off_parent) {
        Ok(parent) if parent != 0 => read::<u32>(parent + off::OFF_TASK_TGID()).unwrap_or(0),
        _ => 0,
    }
}

/// Process id of the current task's parent, through the BTF-typed current task (two plain
/// loads, no helper call beyond getting the task); 0 when unknown.
#[inline(always)]
pub fn current_ppid_btf() -> u32 {
    let off_parent = off::OFF_TASK_REAL_PARENT();
    if off_parent == 0 {
        return 0;
    }
    let task = unsafe { aya_ebpf::helpers::generated::bpf_get_current_task_btf() } as u64;
    if task == 0 {
        return 0;
    }
    // SAFETY: `real_parent` and `tgid` are fields of `struct task_struct`.
    let parent: u64 = unsafe { btf_load(task, off_parent) };
    if parent == 0 {
        return 0;
    }
    unsafe { btf_load::<u32>(parent, off::OFF_TASK_TGID()) }
}

/// The 4-tuple of a BTF-typed `struct sock *` (see [`btf_load`]), read field by field with
/// plain loads; the local port from `skc_num`, or, once `inet_put_port()` cleared it (the
/// transition to CLOSE), from `inet_sport` (one kernel read). `net` is left 0: the caller has
/// the namespace already.
#[inline(always)]
pub fn tuple_btf(sk: u64) -> Result<Tuple, ()> {
    // SAFETY (every load): fields of `struct sock_common`, at the start of `struct sock`.
    let family: u16 = unsafe { btf_load(sk, off::OFF_SKC_FAMILY()) };
    let (saddr, daddr) = if family == AF_INET {
        let s: u32 = unsafe { btf_load(sk, off::OFF_SKC_RCV_SADDR()) };
        let d: u32 = unsafe { btf_load(sk, off::OFF_SKC_DADDR()) };
        (v4(s.to_ne_bytes()), v4(d.to_ne_bytes()))
    } else if family == AF_INET6 {
        (
            v6(sk, off::OFF_SKC_V6_RCV_SADDR()),
            v6(sk, off::OFF_SKC_V6_DADDR()),
        )
    } else {
        return Err(());
    };
    let num: u16 = unsafe { btf_load(sk, off::OFF_SKC_NUM()) };
    let sport = if num != 0 { num } else { inet_sport(sk)? };
    let dport: u16 = unsafe { btf_load(sk, off::OFF_SKC_DPORT()) };
    Ok(Tuple {
        saddr,
        daddr,
        sport,
        dport: u16::from_be(dport),
        family,
        net: 0,
    })
}

/// An IPv6 address at `off` in a BTF-typed socket: two 8-byte loads.
#[inline(always)]
fn v6(sk: u64, off: u64) -> [u8; 16] {
    // SAFETY: an `in6_addr` field of `struct sock_common`.
    let (a, b): (u64, u64) = unsafe { (btf_load(sk, off), btf_load(sk, off + 8)) };
    let (a, b) = (a.to_ne_bytes(), b.to_ne_bytes());
    [
        a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1], b[2], b[3], b[4], b[5], b[6],
        b[7],
    ]
}

/// A connection's addresses as a `sock_common` holds them.
pub struct Tuple {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub family: u16,
    /// `sock_common.skc_net.net`.
    pub net: u64,
}

/// Bytes of `struct sock_common` read in one go; userspace checks that every field the
/// programs need lies inside (`portwatch_common::SKC_BLOCK`).
pub const SKC_BLOCK: usize = portwatch_common::SKC_BLOCK;

/// Per-CPU room for one [`SkcBlock`] per program (128 bytes do not fit on the BPF stack next
/// to a record). One slot per program (`nest::hook`, + `nest::RESCUER_SLOT_OFFSET` for the
/// rescuers), because different programs can nest on one CPU (a softirq interrupting a
/// program); the kernel never lets a program nest in itself.
#[map(name = "SKC_SCRATCH")]
static SKC_SCRATCH: PerCpuArray<[u8; SKC_BLOCK]> = PerCpuArray::with_max_entries(8, 0);

/// The first [`SKC_BLOCK`] bytes of a `sock_common`: one kernel read instead of one per field.
/// Lives in the program's per-CPU map slot; valid until the program reads another block.
pub struct SkcBlock(&'static [u8; SKC_BLOCK]);

impl SkcBlock {
    /// Reads the block at `skc` into this program's `slot`.
    #[inline(always)]
    pub fn read(skc: u64, slot: u32) -> Result<SkcBlock, ()> {
        let slot = SKC_SCRATCH.get_ptr_mut(slot).ok_or(())?;
        // SAFETY: a per-CPU map value of SKC_BLOCK bytes; programs do not preempt themselves.
        let buf = unsafe { &mut *slot };
        match unsafe { bpf_probe_read_kernel_buf(skc as *const u8, buf) } {
            Ok(()) => Ok(SkcBlock(unsafe { &*slot })),
            Err(_) => {
                bump(stat::READ_FAILED);
                Err(())
            }
        }
    }

    /// `N` bytes at `off` (masked into the block, so the verifier sees a bounded access).
    #[inline(always)]
    fn bytes<const N: usize>(&self, off: u64) -> [u8; N] {
        let mut out = [0u8; N];
        let base = (off as usize) & (SKC_BLOCK - 1);
        let mut i = 0;
        while i < N {
            out[i] = self.0[(base + i) & (SKC_BLOCK - 1)];
            i += 1;
        }
        out
    }

    #[inline(always)]
    fn u16(&self, off: u64) -> u16 {
        u16::from_ne_bytes(self.bytes::<2>(off))
    }

    #[inline(always)]
    fn u64(&self, off: u64) -> u64 {
        u64::from_ne_bytes(self.bytes::<8>(off))
    }

    /// The 4-tuple; `sport` is taken from `skc_num` (host order). Fails for families other
    /// than AF_INET/AF_INET6.
    #[inline(always)]
    pub fn tuple(&self) -> Result<Tuple, ()> {
        let family = self.u16(off::OFF_SKC_FAMILY());
        let (saddr, daddr) = if family == AF_INET {
            (
                v4(self.bytes::<4>(off::OFF_SKC_RCV_SADDR())),
                v4(self.bytes::<4>(off::OFF_SKC_DADDR())),
            )
        } else if family == AF_INET6 {
            (
                self.bytes::<16>(off::OFF_SKC_V6_RCV_SADDR()),
                self.bytes::<16>(off::OFF_SKC_V6_DADDR()),
            )
        } else {
            return Err(());
        };
        Ok(Tuple {
            saddr,
            daddr,
            sport: self.u16(off::OFF_SKC_NUM()),
            dport: u16::from_be(self.u16(off::OFF_SKC_DPORT())),
            family,
            net: if off::OFF_SKC_NET() == 0 {
                0
            } else {
                self.u64(off::OFF_SKC_NET())
            },
        })
    }
}

#[inline(always)]
fn v4(a: [u8; 4]) -> [u8; 16] {
    [a[0], a[1], a[2], a[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// Inode number of the network namespace `net` (a `struct net *`); 0 when unknown.
#[inline(always)]
pub fn netns_inum(net: u64) -> u32 {
    if net == 0 {
        return 0;
    }
    read::<u32>(net + off::OFF_NET_INUM()).unwrap_or(0)
}

/// A full socket's local port, `inet_sock.inet_sport` (network order in the kernel). Unlike
/// `skc_num` it survives `inet_put_port()`, which runs before the transition to CLOSE is
/// traced.
#[inline(always)]
pub fn inet_sport(sk: u64) -> Result<u16, ()> {
    read::<u16>(sk + off::OFF_INET_SPORT()).map(u16::from_be)
}

/// The `struct sock` behind the current task's file descriptor `fd`, or 0 when `fd` is not a
/// socket, the walk is disabled (`OFF_TASK_FILES == 0`) or a read fails.
#[inline(always)]
pub fn sock_of_fd(fd: i32) -> u64 {
    if off::OFF_TASK_FILES() == 0 || fd < 0 {
        return 0;
    }
    sock_of_fd_inner(fd as u64).unwrap_or(0)
}

const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

#[inline(always)]
fn sock_of_fd_inner(fd: u64) -> Result<u64, ()> {
    let task = unsafe { bpf_get_current_task() };
    let files: u64 = read(task + off::OFF_TASK_FILES())?;
    let fdt: u64 = read(files + off::OFF_FILES_FDT())?;
    let max_fds: u32 = read(fdt + off::OFF_FDT_MAX_FDS())?;
    if fd >= max_fds as u64 {
        return Err(());
    }
    let fd_array: u64 = read(fdt + off::OFF_FDT_FD())?;
    let file: u64 = read(fd_array + fd * 8)?;
    if file == 0 {
        return Err(());
    }
    let inode: u64 = read(file + off::OFF_FILE_F_INODE())?;
    let mode: u16 = read(inode + off::OFF_INODE_I_MODE())?;
    if mode & S_IFMT != S_IFSOCK {
        return Err(());
    }
    let socket: u64 = read(file + off::OFF_FILE_PRIVATE_DATA())?;
    read(socket + off::OFF_SOCKET_SK())
}

/// `sk->sk_protocol`, or 0 when unreadable.
#[inline(always)]
pub fn protocol_of(sk: u64) -> u16 {
    read::<u16>(sk + off::OFF_SK_PROTOCOL()).unwrap_or(0)
}
