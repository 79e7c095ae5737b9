//! Which program goes on which hook, how each is attached, and what happens when one cannot
//! be: the state program is essential; the others degrade by group (a half-attached group
//! would report wrong facts, e.g. TIME_WAIT starts with no ends), with the reason kept.

use std::{
    os::fd::{AsFd, AsRawFd},
    path::Path,
    time::Instant,
};

use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, Program, TracePoint},
};

use super::{Options, layout::Layout, ms_since, tracefs};

/// Every hook portwatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    State,
    /// The rescuer runs what the kernel skips for the state program when it nests on one CPU
    /// (portwatch-ebpf/src/nest.rs); attached after it. The timer hooks need none: they
    /// cannot nest in themselves (portwatch-ebpf/src/timewait.rs).
    StateRescue,
    ConnectEnter,
    ConnectExit,
    BindEnter,
    BindExit,
    TimerStart,
    TimerCancel,
    TimerExpire,
}

/// Hooks that work only together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    State,
    Connect,
    Bind,
    TimeWait,
}

impl Hook {
    /// In attach order: each rescuer after its primary.
    pub const ALL: [Hook; 9] = [
        Hook::State,
        Hook::StateRescue,
        Hook::ConnectEnter,
        Hook::ConnectExit,
        Hook::BindEnter,
        Hook::BindExit,
        Hook::TimerStart,
        Hook::TimerCancel,
        Hook::TimerExpire,
    ];

    /// The program's function name in the eBPF object.
    pub fn program(self) -> &'static str {
        match self {
            Hook::State => "inet_sock_set_state",
            Hook::StateRescue => "inet_sock_set_state_rescue",
            Hook::ConnectEnter => "sys_enter_connect",
            Hook::ConnectExit => "sys_exit_connect",
            Hook::BindEnter => "sys_enter_bind",
            Hook::BindExit => "sys_exit_bind",
            Hook::TimerStart => "timer_start",
            Hook::TimerCancel => "timer_cancel",
            Hook::TimerExpire => "timer_expire_entry",
        }
    }

    /// The kernel event it attaches to.
    pub fn tracepoint(self) -> &'static str {
        match self {
            Hook::StateRescue => "inet_sock_set_state",
            other => other.program(),
        }
    }

    /// A rescuer: its absence only makes nested runs count as lost.
    pub fn is_rescuer(self) -> bool {
        self.tracepoint() != self.program()
    }

    /// `tp_btf/<event>` or `<category>/<event>` (a classic tracepoint).
    pub fn attach_point(self) -> String {
        let rescue = if self.is_rescuer() { " (rescuer)" } else { "" };
        match self.classic_category() {
            Some(cat) => format!("{cat}/{}{rescue}", self.tracepoint()),
            None => format!("tp_btf/{}{rescue}", self.tracepoint()),
        }
    }

    fn classic_category(self) -> Option<&'static str> {
        match self.group() {
            Group::Connect | Group::Bind => Some("syscalls"),
            _ => None,
        }
    }

    pub fn group(self) -> Group {
        match self {
            Hook::State | Hook::StateRescue => Group::State,
            Hook::ConnectEnter | Hook::ConnectExit => Group::Connect,
            Hook::BindEnter | Hook::BindExit => Group::Bind,
            Hook::TimerStart | Hook::TimerCancel | Hook::TimerExpire => Group::TimeWait,
        }
    }

    /// Without this hook portwatch cannot run at all.
    pub fn essential(self) -> bool {
        self == Hook::State
    }

    /// What is missing when this hook's group is not attached.
    pub fn loss_if_missing(self) -> &'static str {
        if self.is_rescuer() {
            return "runs nested on one CPU are lost (and counted) instead of rescued";
        }
        match self.group() {
            Group::State => "no TCP state transitions",
            Group::Connect => "connect() failures (EADDRNOTAVAIL …) are not reported",
            Group::Bind => "bind() failures and bound ports are not reported",
            Group::TimeWait => "TIME_WAIT is not tracked live (only from sock_diag snapshots)",
        }
    }
}

/// The outcome of one attach.
#[derive(Debug, Clone)]
pub struct Attach {
    pub hook: Hook,
    /// `Err(reason)` when it is not attached (including when disabled by choice).
    pub result: Result<(), String>,
    pub ms: f64,
}

fn attach_one(ebpf: &mut Ebpf, btf: &Btf, hook: Hook) -> Result<(), String> {
    let prog = ebpf
        .program_mut(hook.program())
        .ok_or_else(|| format!("program {} is not in the eBPF object", hook.program()))?;
    match hook.classic_category() {
        Some(category) => {
            let tp: &mut TracePoint = prog.try_into().map_err(|e| format!("{e}"))?;
            tp.load().map_err(|e| format!("load: {e:#}"))?;
            tp.attach(category, hook.tracepoint())
                .map_err(|e| format!("attach: {e:#}"))?;
        }
        None => {
            let tp: &mut BtfTracePoint = prog.try_into().map_err(|e| format!("{e}"))?;
            tp.load(hook.tracepoint(), btf)
                .map_err(|e| format!("load: {e:#}"))?;
            tp.attach().map_err(|e| format!("attach: {e:#}"))?;
        }
    }
    Ok(())
}

fn unload(ebpf: &mut Ebpf, hook: Hook) {
    if let Some(prog) = ebpf.program_mut(hook.program()) {
        let _ = match prog {
            Program::TracePoint(p) => p.unload(),
            Program::BtfTracePoint(p) => p.unload(),
            _ => Ok(()),
        };
    }
}

/// Why a group is off before trying, if it is.
fn disabled(
    group: Group,
    layout: &Layout,
    opts: &Options,
    tracefs: Option<&Path>,
) -> Option<String> {
    match group {
        Group::State => None,
        Group::Connect | Group::Bind if !opts.calls => Some("disabled by --no-calls".into()),
        Group::Connect | Group::Bind if tracefs.is_none() => Some("tracefs is not mounted".into()),
        Group::Connect | Group::Bind => None,
        Group::TimeWait if !opts.timewait => Some("disabled by --no-timewait".into()),
        Group::TimeWait => layout.timewait.clone().err(),
    }
}

/// Attaches every hook that can be; returns one [`Attach`] per hook.
pub fn attach_all(
    ebpf: &mut Ebpf,
    btf: &Btf,
    layout: &Layout,
    opts: &Options,
    tracefs_root: Option<&Path>,
) -> Vec<Attach> {
    let mut out: Vec<Attach> = Vec::new();
    for hook in Hook::ALL {
        let t = Instant::now();
        let result = match disabled(hook.group(), layout, opts, tracefs_root) {
            Some(why) => Err(why),
            None => {
                let format_ok = match (hook.classic_category(), tracefs_root) {
                    (Some(cat), Some(root)) => tracefs::check_tracepoint(root, cat, hook.program())
                        .map_err(|e| format!("record format differs from the program's: {e}")),
                    _ => Ok(()),
                };
                format_ok.and_then(|()| attach_one(ebpf, btf, hook))
            }
        };
        out.push(Attach {
            hook,
            result,
            ms: ms_since(t),
        });
    }
    // A group is all or nothing.
    for group in [Group::Connect, Group::Bind, Group::TimeWait] {
        let failed = out
            .iter()
            .find(|a| a.hook.group() == group && !a.hook.is_rescuer() && a.result.is_err())
            .map(|a| (a.hook, a.result.clone().unwrap_err()));
        if let Some((hook, why)) = failed {
            for a in out.iter_mut().filter(|a| a.hook.group() == group) {
                if a.result.is_ok() {
                    unload(ebpf, a.hook);
                    a.result = Err(format!("detached because {} failed: {why}", hook.program()));
                }
            }
        }
    }
    out
}

pub fn unload_all(ebpf: &mut Ebpf, attached: &[Attach]) {
    for a in attached.iter().filter(|a| a.result.is_ok()) {
        unload(ebpf, a.hook);
    }
}

/// `bpf_prog_info.recursion_misses` per group: runs the kernel skipped because the program
/// (tp_btf) or any tracing program (classic tracepoints) was already running on that CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Skipped {
    /// Transitions never traced: lost events.
    pub state: u64,
    /// connect()/bind() entries or exits never traced: possibly lost failures.
    pub calls: u64,
    /// Timer events never traced. Every timer in the system passes through these programs,
    /// so this is an upper bound on lost timewait events, mostly about unrelated timers.
    pub timers: u64,
}

/// Skipped runs of the primaries, less those their rescuers ran (`rescued`: state, timers).
pub fn skipped(ebpf: &Ebpf, attached: &[Attach], rescued: (u64, u64)) -> Skipped {
    let mut s = Skipped::default();
    for a in attached
        .iter()
        .filter(|a| a.result.is_ok() && !a.hook.is_rescuer())
    {
        let Some(misses) = prog_stats(ebpf, a.hook).map(|p| p.recursion_misses) else {
            continue;
        };
        match a.hook.group() {
            Group::State => s.state += misses,
            Group::Connect | Group::Bind => s.calls += misses,
            Group::TimeWait => s.timers += misses,
        }
    }
    s.state = s.state.saturating_sub(rescued.0);
    s.timers = s.timers.saturating_sub(rescued.1);
    s
}

/// Runtime statistics of one program (`run_time_ns`/`run_cnt` count only while
/// `kernel.bpf_stats_enabled` is 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgStats {
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub recursion_misses: u64,
}

pub fn prog_stats(ebpf: &Ebpf, hook: Hook) -> Option<ProgStats> {
    let fd = ebpf.program(hook.program())?.fd().ok()?;
    let info = prog_info(fd.as_fd().as_raw_fd())?;
    Some(ProgStats {
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
        recursion_misses: info.recursion_misses,
    })
}

/// BPF_OBJ_GET_INFO_BY_FD on a program. aya's `ProgramInfo` does not expose the run-time
/// counters, so ask the kernel directly.
fn prog_info(fd: i32) -> Option<aya_obj::generated::bpf_prog_info> {
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    // SAFETY: bpf_prog_info is a plain C struct of integers; all-zero is a valid value.
    let mut info: aya_obj::generated::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = InfoAttr {
        bpf_fd: fd as u32,
        info_len: size_of::<aya_obj::generated::bpf_prog_info>() as u32,
        info: &mut info as *mut _ as u64,
    };
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: attr and info outlive the call; the kernel writes at most info_len bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoAttr,
            size_of::<InfoAttr>(),
        )
    };
    (rc == 0).then_some(info)
}
