//! portwatch's build tasks. `cargo xtask --help` lists them.

mod deb;
mod ebpf;
mod toolchain;

include!("ebpf_inputs.rs");

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "portwatch's build tasks", long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the eBPF object (nightly, bpfel-unknown-none), installing what is missing first:
    /// the nightly's rust-src, and bpf-linker built against the nightly's own LLVM.
    BuildEbpf {
        /// Reinstall bpf-linker even when a matching one is present.
        #[arg(long)]
        reinstall_linker: bool,
    },
    /// Build everything and run the whole test suite: unit tests, then the privileged
    /// integration tests (which need root and fail, never skip, without it).
    Test {
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build portwatch (release) and run it with these arguments, e.g.
    /// `cargo xtask run -- events --json`.
    Run {
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build a Debian package (dpkg-deb): the release binary with the eBPF object embedded,
    /// its manual pages and shell completions, and the systemd unit. Prints its path.
    Deb,
    /// Run `cargo clippy` on the workspace and on the eBPF crate, and `cargo fmt --check`.
    Lint,
    /// Measure portwatch's costs (release build, root): churn untraced vs traced by each mode,
    /// BPF run time, model speed and memory, snapshot vs `ss`, recording size. Prints a table
    /// with each figure next to its target and writes JSON under target/bench/.
    Bench {
        /// Tiny sizes, debug build, seconds: checks that every figure is reported, not speed.
        #[arg(long)]
        smoke: bool,
        /// Extra arguments for portwatch-bench (`cargo xtask bench -- --help`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.cmd {
        Cmd::BuildEbpf { reinstall_linker } => ebpf::build(&root, reinstall_linker),
        Cmd::Test { args } => test(&root, &args),
        Cmd::Run { args } => run(&root, &args),
        Cmd::Deb => deb::build(&root).map(drop),
        Cmd::Lint => lint(&root),
        Cmd::Bench { smoke, args } => bench(&root, smoke, &args),
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// Runs a command, echoing it; fails with its exit status.
pub fn run_cmd(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed: {status}", cmd.get_program());
    }
    Ok(())
}

/// `cargo` with the host (stable) toolchain, whatever invoked us.
fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root);
    c
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn test(root: &Path, args: &[String]) -> anyhow::Result<()> {
    ebpf::build(root, false)?;
    run_cmd(cargo(root).args(["build", "--workspace", "--all-targets"]))?;
    // The tests that ask whether portwatch keeps up with a load (tests/flood.rs) run the
    // release build, as users do; the others run the debug build, with its overflow checks.
    run_cmd(cargo(root).args(["build", "--release", "-p", "portwatch"]))?;
    if !is_root() {
        bail!(
            "the privileged integration tests load BPF programs and create network namespaces: \
             run this as root (sudo -E cargo xtask test). Unit tests alone: cargo test -p portwatch"
        );
    }
    let bin = target_dir(root).join("debug/portwatch");
    run_cmd(
        cargo(root)
            .args(["test", "--workspace", "--no-fail-fast"])
            .env("PORTWATCH_BIN", &bin)
            .env(
                "PORTWATCH_RELEASE_BIN",
                target_dir(root).join("release/portwatch"),
            )
            .arg("--")
            .args(args),
    )?;
    if args.is_empty() {
        // The recording reader must survive arbitrary bytes: a short fuzzing run from the
        // committed seeds (nightly; cargo-fuzz is installed when missing).
        run_cmd(
            std::process::Command::new(root.join("fuzz/smoke.sh"))
                .arg("20")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO_TARGET_DIR"),
        )?;
        // The benchmark harness at a tiny size, so that it never rots: every figure reported.
        bench(root, true, &[])?;
    }
    Ok(())
}

fn bench(root: &Path, smoke: bool, args: &[String]) -> anyhow::Result<()> {
    ebpf::build(root, false)?;
    let profile = if smoke { "debug" } else { "release" };
    let mut build = cargo(root);
    build.args(["build", "-p", "portwatch", "-p", "portwatch-bench"]);
    if !smoke {
        build.arg("--release");
    }
    run_cmd(&mut build)?;
    if !is_root() {
        bail!("the benchmark loads BPF programs and makes network namespaces: run it as root");
    }
    let dir = target_dir(root).join(profile);
    let mut cmd = Command::new(dir.join("portwatch-bench"));
    cmd.current_dir(root)
        .arg("--portwatch")
        .arg(dir.join("portwatch"))
        .arg("--out")
        .arg(target_dir(root).join("bench"));
    if smoke {
        cmd.arg("--smoke");
    }
    run_cmd(cmd.args(args))
}

fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    ebpf::build(root, false)?;
    run_cmd(cargo(root).args(["build", "--release", "-p", "portwatch"]))?;
    let bin = target_dir(root).join("release/portwatch");
    if !is_root() {
        eprintln!(
            "note: portwatch needs root (or CAP_BPF+CAP_PERFMON); try: sudo {}",
            bin.display()
        );
    }
    let status = Command::new(&bin)
        .args(args)
        .status()
        .with_context(|| format!("run {}", bin.display()))?;
    std::process::exit(status.code().unwrap_or(1));
}

fn lint(root: &Path) -> anyhow::Result<()> {
    ebpf::build(root, false)?;
    run_cmd(cargo(root).args(["fmt", "--all", "--check"]))?;
    run_cmd(cargo(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    ebpf::clippy(root)
}
