//! Programs that return at once, on the same attach points as the real ones: the benchmark's
//! floor ("bare hooks"), what merely being attached costs. Userspace never attaches them
//! (`portwatch::collect::bare` is only for the benchmark).

use aya_ebpf::{
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn bare_inet_sock_set_state(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "timer_start")]
pub fn bare_timer_start(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "timer_cancel")]
pub fn bare_timer_cancel(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "timer_expire_entry")]
pub fn bare_timer_expire_entry(_ctx: BtfTracePointContext) -> i32 {
    0
}

macro_rules! bare_syscalls {
    ($($name:ident),*) => {$(
        #[tracepoint]
        pub fn $name(_ctx: TracePointContext) -> u32 {
            0
        }
    )*};
}

bare_syscalls!(
    bare_sys_enter_connect,
    bare_sys_exit_connect,
    bare_sys_enter_bind,
    bare_sys_exit_bind
);
