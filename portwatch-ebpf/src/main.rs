//! portwatch's kernel side. Every program writes into one ring buffer (`EVENTS`) and counts
//! what it saw and what it could not deliver in `STATS` (see `portwatch_common::stat`).
//!
//! - `state.rs`: `tp_btf/inet_sock_set_state`, every TCP state transition.
//! - `calls.rs`: `syscalls/sys_{enter,exit}_{connect,bind}`, failed calls and successful binds.
//! - `timewait.rs`: `tp_btf/timer_{start,cancel,expire_entry}` on timewait sockets' timers.
//! - `kernel.rs`: offsets from userspace (BTF) and the reads that use them.
//! - `emit.rs`: the ring buffer, the counters, the common header.
//! - `nest.rs`: rescuers for the runs the kernel skips when a program nests on one CPU.
//! - `bare.rs`: programs that return at once on the same hooks (the benchmark's floor).
#![no_std]
#![no_main]
// For the atomic add on per-CPU counters (emit::bump).
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod bare;
mod calls;
mod emit;
mod kernel;
mod nest;
mod state;
mod timewait;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// GPL-compatible: bpf_probe_read_kernel and friends are GPL-only helpers.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
