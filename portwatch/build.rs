//! Embeds the eBPF object that `cargo xtask build-ebpf` built, and refuses to build with a
//! missing or stale one: the object's stamp must match a digest of the eBPF and ABI sources
//! (content, not mtimes: cargo can restore objects with old mtimes).

use std::path::{Path, PathBuf};

include!("../xtask/src/ebpf_inputs.rs");

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    println!("cargo::warning={msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let (object, stamp) = ebpf_artifacts(&target_dir);

    println!("cargo::rerun-if-env-changed=CARGO_TARGET_DIR");
    for f in [
        "portwatch-ebpf/src",
        "portwatch-common/src",
        "portwatch-ebpf/Cargo.toml",
        "portwatch-ebpf/Cargo.lock",
        "portwatch-ebpf/.cargo/config.toml",
        "portwatch-common/Cargo.toml",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(f).display());
    }
    println!("cargo::rerun-if-changed={}", object.display());
    println!("cargo::rerun-if-changed={}", stamp.display());

    let digest = ebpf_inputs_digest(&root)
        .unwrap_or_else(|e| fail(&format!("cannot read the eBPF sources: {e}")));
    let built_from = std::fs::read_to_string(&stamp).unwrap_or_default();
    if !object.exists() || built_from.trim().is_empty() {
        fail(&format!(
            "the eBPF object {} is missing: run `cargo xtask build-ebpf` first \
             (`cargo xtask test` and `cargo xtask run` do it for you)",
            object.display()
        ));
    }
    if built_from.trim() != digest {
        fail(&format!(
            "the eBPF object {} is stale: portwatch-ebpf or portwatch-common changed since it \
             was built. Run `cargo xtask build-ebpf`.",
            object.display()
        ));
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("portwatch-ebpf.o");
    copy(&object, &out);
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| fail(&format!("copy {} to {}: {e}", from.display(), to.display())));
}
