//! The benchmark's floor: programs that return at once (`portwatch-ebpf/src/bare.rs`), one on
//! each attach point portwatch uses (the state transition, the three timer events, the four
//! syscall events), from the same object. Their cost is what merely being attached costs;
//! `cargo xtask bench` compares every mode with it. Not used by portwatch itself.

use anyhow::Context as _;
use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, TracePoint},
};

use super::{EBPF_OBJECT, tracefs};

/// (program, BTF tracepoint).
const BTF_HOOKS: [(&str, &str); 4] = [
    ("bare_inet_sock_set_state", "inet_sock_set_state"),
    ("bare_timer_start", "timer_start"),
    ("bare_timer_cancel", "timer_cancel"),
    ("bare_timer_expire_entry", "timer_expire_entry"),
];

/// (program, classic syscall tracepoint).
const SYSCALL_HOOKS: [(&str, &str); 4] = [
    ("bare_sys_enter_connect", "sys_enter_connect"),
    ("bare_sys_exit_connect", "sys_exit_connect"),
    ("bare_sys_enter_bind", "sys_enter_bind"),
    ("bare_sys_exit_bind", "sys_exit_bind"),
];

/// The bare programs, attached while this lives.
pub struct Bare {
    _ebpf: Ebpf,
    /// Program names, in attach order (their kernel ids follow it).
    pub programs: Vec<&'static str>,
}

impl Bare {
    /// Loads the object and attaches every bare program; fails if any cannot be.
    pub fn attach() -> anyhow::Result<Bare> {
        tracefs::ensure_mounted()?;
        let btf = Btf::from_sys_fs().context("load the kernel's BTF")?;
        let mut ebpf = EbpfLoader::new()
            .load(EBPF_OBJECT)
            .context("load the eBPF object")?;
        let mut programs = Vec::new();
        for (name, event) in BTF_HOOKS {
            let p: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name}"))?
                .try_into()?;
            p.load(event, &btf)
                .with_context(|| format!("load {name}"))?;
            p.attach()
                .with_context(|| format!("attach tp_btf/{event}"))?;
            programs.push(name);
        }
        for (name, event) in SYSCALL_HOOKS {
            let p: &mut TracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("program {name}"))?
                .try_into()?;
            p.load().with_context(|| format!("load {name}"))?;
            p.attach("syscalls", event)
                .with_context(|| format!("attach syscalls/{event}"))?;
            programs.push(name);
        }
        Ok(Bare {
            _ebpf: ebpf,
            programs,
        })
    }
}
