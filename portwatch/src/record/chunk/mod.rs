//! The payload of a data chunk: items (events and context records) in a columnar layout.
//!
//! Each field goes to its own column (a byte stream), so that zstd sees runs of similar
//! bytes: kinds next to kinds, timestamp deltas next to timestamp deltas. Repeated values
//! (namespaces, tasks, sockets, 4-tuples, addresses) are interned per chunk (see `intern`),
//! so a chunk decodes on its own, without any earlier chunk. The byte layout is specified
//! in docs/recording-format.md; `Col` lists the columns in their file order.

mod decode;
mod encode;

pub(crate) use self::{decode::ChunkReader, encode::ChunkEncoder};

/// Item kinds, the values of the `kind` column.
pub(crate) mod kind {
    pub const STATE: u8 = 0;
    pub const CALL: u8 = 1;
    pub const TIMEWAIT: u8 = 2;
    pub const CONTEXT: u8 = 3;
}

/// The columns, in file order. New columns may only be appended (see the versioning rules).
#[derive(Clone, Copy)]
#[repr(usize)]
pub(super) enum Col {
    Kind,
    Detail,
    Ts,
    Netns,
    NetnsNew,
    Task,
    TaskNew,
    Sk,
    SkNew,
    Tuple,
    Ip,
    IpNew,
    Port,
    Fd,
    Errno,
    Jiffies,
    Context,
    /// Added in 1.1: a new task's cgroup id.
    TaskCgroup,
}

pub(super) const NCOLS: usize = 18;
/// Columns of a 1.0 chunk (no `task_cgroup`: its tasks read back with cgroup 0).
pub(super) const NCOLS_1_0: usize = 17;

pub(crate) const COLUMN_NAMES: [&str; NCOLS] = [
    "kind",
    "detail",
    "ts",
    "netns",
    "netns_new",
    "task",
    "task_new",
    "sk",
    "sk_new",
    "tuple",
    "ip",
    "ip_new",
    "port",
    "fd",
    "errno",
    "jiffies",
    "context",
    "task_cgroup",
];

/// A task as interned: pid, tid, ppid, comm, cgroup.
pub(super) type TaskKey = (u32, u32, u32, [u8; 16], u64);
