//! The pieces the eBPF build needs beyond the preinstalled toolchains, installed when missing
//! (../shared/TOOLCHAIN.md has the verified recipe): the nightly's rust-src (for
//! `-Z build-std=core`) and bpf-linker built against the nightly's own libLLVM.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::run_cmd;

/// The toolchain that builds the eBPF crate. Never updated by us: bpf-linker is tied to its LLVM.
pub const NIGHTLY: &str = "nightly";
pub const BPF_LINKER_VERSION: &str = "0.13.0";

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `rustup run nightly <tool>`, so that the nightly's environment is used whatever invoked us.
pub fn nightly(tool: &str) -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", NIGHTLY, tool]);
    // Cargo passes these to the xtask; they describe the stable host build, not ours.
    for var in [
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        c.env_remove(var);
    }
    c
}

/// The nightly's LLVM major version (`rustc +nightly -vV`).
pub fn nightly_llvm_major() -> anyhow::Result<u32> {
    let vv = output(nightly("rustc").arg("-vV"))
        .context("the nightly toolchain is needed for the eBPF crate (rustup toolchain list)")?;
    vv.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.trim().parse().ok())
        .context("no `LLVM version:` in `rustc +nightly -vV`")
}

pub fn ensure_rust_src() -> anyhow::Result<()> {
    let sysroot = output(nightly("rustc").args(["--print", "sysroot"]))?;
    let lock = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/Cargo.lock");
    if lock.exists() {
        return Ok(());
    }
    run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
        .join("bin")
}

/// Where the libLLVM links for bpf-linker live (its RPATH points here).
fn llvm_prefix() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share/portwatch/llvm")
}

/// The LLVM major that an installed bpf-linker loads, if it runs at all.
fn linker_llvm_major(linker: &Path) -> Option<u32> {
    let version = output(Command::new(linker).arg("--version")).ok()?;
    if !version.contains(BPF_LINKER_VERSION) {
        return None;
    }
    let ldd = output(Command::new("ldd").arg(linker)).ok()?;
    ldd.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("libLLVM.so.")?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// Installs bpf-linker against the nightly's libLLVM unless a matching one is present.
/// Returns the path of the linker.
pub fn ensure_bpf_linker(reinstall: bool) -> anyhow::Result<PathBuf> {
    let major = nightly_llvm_major()?;
    let linker = cargo_bin_dir().join("bpf-linker");
    if !reinstall {
        match linker_llvm_major(&linker) {
            Some(m) if m == major => return Ok(linker),
            Some(m) => {
                eprintln!("bpf-linker uses LLVM {m}, the nightly has LLVM {major}: reinstalling")
            }
            None if linker.exists() => {
                eprintln!("bpf-linker does not run or is not {BPF_LINKER_VERSION}: reinstalling")
            }
            None => eprintln!(
                "bpf-linker is missing: installing {BPF_LINKER_VERSION} against the nightly's LLVM {major} (about 1.5 min)"
            ),
        }
    }
    let sysroot = output(nightly("rustc").args(["--print", "sysroot"]))?;
    let libdir = Path::new(sysroot.trim()).join("lib");
    let lib = std::fs::read_dir(&libdir)
        .with_context(|| format!("read {}", libdir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        .with_context(|| format!("no libLLVM.so.*-rust-* in {}", libdir.display()))?;
    let prefix = llvm_prefix();
    std::fs::create_dir_all(prefix.join("lib"))?;
    // libLLVM.so for the build; the soname too, so the binary runs outside rustup.
    for link in ["libLLVM.so", lib.as_str()] {
        let at = prefix.join("lib").join(link);
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(libdir.join(&lib), &at)
            .with_context(|| format!("symlink {}", at.display()))?;
    }
    let mut install = Command::new("cargo");
    install
        .args([
            "install",
            &format!("bpf-linker@{BPF_LINKER_VERSION}"),
            "--locked",
            "--force",
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ])
        .env("LLVM_PREFIX", &prefix)
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR");
    run_cmd(&mut install)?;
    match linker_llvm_major(&linker) {
        Some(m) if m == major => Ok(linker),
        other => bail!(
            "bpf-linker was installed but does not load LLVM {major} (found {other:?}); see ../shared/TOOLCHAIN.md"
        ),
    }
}
