//! The running kernel's struct layout and symbol addresses, as the eBPF programs need them:
//! read from BTF and /proc/kallsyms at start-up and handed to the programs as globals
//! (`portwatch_common::globals`). Each group of offsets serves one feature; a group that
//! cannot be resolved disables its feature with a reason instead of failing the start.

use std::{collections::HashMap, path::Path};

use portwatch_common::{SKC_BLOCK, globals as g};

use super::btf::{Btf, BtfError};

/// Everything the programs read from kernel memory, by global name.
#[derive(Debug, Clone)]
pub struct Layout {
    pub globals: Vec<(&'static str, u64)>,
    /// Sockets' network namespaces (else every event says netns 0).
    pub netns: Result<(), String>,
    /// Timewait sockets' timers (else TIME_WAIT is not tracked live).
    pub timewait: Result<(), String>,
    /// fd → socket for connect()/bind() (else no socket on failures and no successful binds).
    pub fd_to_sock: Result<(), String>,
}

/// One member to resolve: global name, struct, member path, size the programs read.
type Want = (&'static str, &'static str, &'static str, u64);

/// The 4-tuple and protocol: needed by every state event. Not optional.
const TUPLE: &[Want] = &[
    (g::OFF_SKC_DADDR, "sock_common", "skc_daddr", 4),
    (g::OFF_SKC_RCV_SADDR, "sock_common", "skc_rcv_saddr", 4),
    (g::OFF_SKC_DPORT, "sock_common", "skc_dport", 2),
    (g::OFF_SKC_NUM, "sock_common", "skc_num", 2),
    (g::OFF_SKC_FAMILY, "sock_common", "skc_family", 2),
    (g::OFF_SKC_V6_DADDR, "sock_common", "skc_v6_daddr", 16),
    (
        g::OFF_SKC_V6_RCV_SADDR,
        "sock_common",
        "skc_v6_rcv_saddr",
        16,
    ),
    (g::OFF_SK_PROTOCOL, "sock", "sk_protocol", 2),
    (g::OFF_INET_SPORT, "inet_sock", "inet_sport", 2),
];

const NETNS: &[Want] = &[
    (g::OFF_SKC_NET, "sock_common", "skc_net.net", 8),
    (g::OFF_NET_INUM, "net", "ns.inum", 4),
    (g::OFF_TASK_NSPROXY, "task_struct", "nsproxy", 8),
    (g::OFF_NSPROXY_NET_NS, "nsproxy", "net_ns", 8),
];

const PARENT: &[Want] = &[
    (g::OFF_TASK_REAL_PARENT, "task_struct", "real_parent", 8),
    (g::OFF_TASK_TGID, "task_struct", "tgid", 4),
];

const TIMEWAIT: &[Want] = &[
    (g::OFF_TW_TIMER, "inet_timewait_sock", "tw_timer", 40),
    (g::OFF_TW_SUBSTATE, "inet_timewait_sock", "tw_substate", 1),
    (g::OFF_TIMER_EXPIRES, "timer_list", "expires", 8),
    (g::OFF_TIMER_FUNCTION, "timer_list", "function", 8),
];

const FD_TO_SOCK: &[Want] = &[
    (g::OFF_TASK_FILES, "task_struct", "files", 8),
    (g::OFF_FILES_FDT, "files_struct", "fdt", 8),
    (g::OFF_FDT_FD, "fdtable", "fd", 8),
    (g::OFF_FDT_MAX_FDS, "fdtable", "max_fds", 4),
    (g::OFF_FILE_F_INODE, "file", "f_inode", 8),
    (g::OFF_INODE_I_MODE, "inode", "i_mode", 2),
    (g::OFF_FILE_PRIVATE_DATA, "file", "private_data", 8),
    (g::OFF_SOCKET_SK, "socket", "sk", 8),
];

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("`{ty}.{member}` is {got:?} bytes in this kernel; portwatch reads {want}")]
    Size {
        ty: &'static str,
        member: &'static str,
        got: Option<u64>,
        want: u64,
    },
    #[error(
        "`sock_common.{member}` ends at byte {end}, past the {block} bytes the programs read at once"
    )]
    OutsideBlock {
        member: &'static str,
        end: u64,
        block: usize,
    },
}

fn resolve(btf: &Btf, wants: &[Want]) -> Result<Vec<(&'static str, u64)>, LayoutError> {
    wants
        .iter()
        .map(|&(name, ty, member, want)| {
            let f = btf.field(ty, member)?;
            // The timer is only located, never read whole: any size is fine.
            if f.size != Some(want) && name != g::OFF_TW_TIMER {
                return Err(LayoutError::Size {
                    ty,
                    member,
                    got: f.size,
                    want,
                });
            }
            // sock_common is read as one block of SKC_BLOCK bytes.
            if ty == "sock_common" && f.offset + want > SKC_BLOCK as u64 {
                let end = f.offset + want;
                return Err(LayoutError::OutsideBlock {
                    member,
                    end,
                    block: SKC_BLOCK,
                });
            }
            Ok((name, f.offset))
        })
        .collect()
}

/// Addresses of the named symbols in /proc/kallsyms text (all-zero addresses, as shown to
/// readers without CAP_SYSLOG or under `kptr_restrict`, count as missing).
pub fn kallsyms(text: &str, names: &[&str]) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(addr), Some(_kind), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if names.contains(&name)
            && let Ok(a) = u64::from_str_radix(addr, 16)
            && a != 0
        {
            out.entry(name.to_string()).or_insert(a);
        }
    }
    out
}

impl Layout {
    /// Resolves the layout of the running kernel.
    pub fn from_kernel() -> Result<Layout, LayoutError> {
        let btf = Btf::from_file(Path::new("/sys/kernel/btf/vmlinux"))?;
        let syms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        Layout::resolve(&btf, &syms)
    }

    pub fn resolve(btf: &Btf, kallsyms_text: &str) -> Result<Layout, LayoutError> {
        let mut globals = resolve(btf, TUPLE)?;
        let mut optional = |wants: &[Want]| match resolve(btf, wants) {
            Ok(v) => {
                globals.extend(v);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        };
        let netns = optional(NETNS);
        // Without it every ppid is 0; nothing else depends on it.
        let _ = optional(PARENT);
        let fd_to_sock = optional(FD_TO_SOCK);
        let mut timewait = optional(TIMEWAIT);
        if timewait.is_ok() {
            match kallsyms(kallsyms_text, &["tw_timer_handler"]).get("tw_timer_handler") {
                Some(&addr) => globals.push((g::TW_TIMER_HANDLER, addr)),
                None => {
                    timewait = Err("tw_timer_handler's address is not readable in \
                                    /proc/kallsyms (needs root; kptr_restrict)"
                        .to_string())
                }
            }
        }
        Ok(Layout {
            globals,
            netns,
            timewait,
            fd_to_sock,
        })
    }

    pub fn get(&self, name: &str) -> Option<u64> {
        self.globals
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_takes_named_nonzero_addresses() {
        let text = "ffffffff82006870 t tw_timer_handler\n\
                    0000000000000000 t hidden_one\n\
                    ffffffff81000000 T _stext\n\
                    garbage\n";
        let m = kallsyms(text, &["tw_timer_handler", "hidden_one"]);
        assert_eq!(m.get("tw_timer_handler"), Some(&0xffffffff82006870));
        assert_eq!(m.get("hidden_one"), None);
        assert_eq!(m.len(), 1);
    }
}
