//! `cargo xtask build-ebpf`: the eBPF object, built with the nightly for bpfel-unknown-none
//! (release only: a debug build does not pass the verifier), copied to `target/bpf/` with a
//! stamp of the sources it came from, which portwatch's build.rs checks.

use std::{path::Path, process::Command};

use anyhow::Context as _;

use crate::{
    ebpf_artifacts, ebpf_inputs_digest, run_cmd, target_dir,
    toolchain::{ensure_bpf_linker, ensure_rust_src, nightly},
};

fn nightly_cargo(root: &Path, linker: &Path) -> Command {
    let mut c = nightly("cargo");
    c.current_dir(root.join("portwatch-ebpf"))
        .env("CARGO_TARGET_DIR", target_dir(root).join("bpf-build"));
    // bpf-linker is found on PATH by rustc; make sure it is the one we checked.
    let mut path = std::ffi::OsString::from(linker.parent().unwrap());
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    c.env("PATH", path);
    c
}

pub fn build(root: &Path, reinstall_linker: bool) -> anyhow::Result<()> {
    ensure_rust_src()?;
    let linker = ensure_bpf_linker(reinstall_linker)?;
    // Digest first: if a source changes during the build, the stamp is stale, not wrong.
    let digest = ebpf_inputs_digest(root).context("digest the eBPF sources")?;
    run_cmd(nightly_cargo(root, &linker).args(["build", "--release"]))?;
    let built = target_dir(root).join("bpf-build/bpfel-unknown-none/release/portwatch-ebpf");
    let (object, stamp) = ebpf_artifacts(&target_dir(root));
    std::fs::create_dir_all(object.parent().unwrap())?;
    std::fs::copy(&built, &object)
        .with_context(|| format!("copy {} to {}", built.display(), object.display()))?;
    std::fs::write(&stamp, format!("{digest}\n"))?;
    let size = std::fs::metadata(&object)?.len();
    eprintln!(
        "eBPF object: {} ({size} bytes, sources {digest})",
        object.display()
    );
    Ok(())
}

pub fn clippy(root: &Path) -> anyhow::Result<()> {
    let linker = ensure_bpf_linker(false)?;
    run_cmd(nightly_cargo(root, &linker).args(["fmt", "--check"]))?;
    run_cmd(nightly_cargo(root, &linker).args(["clippy", "--release", "--", "-D", "warnings"]))
}
