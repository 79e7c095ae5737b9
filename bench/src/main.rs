//! `portwatch-bench`, run by `cargo xtask bench`: every cost figure of portwatch in one run,
//! each next to its target, as a table on stdout and JSON under `target/bench/`.
//!
//! The load runs as a process of its own (this binary again, as the hidden `portwatch-bench lab
//! churn|hold`, from the `portwatch-lab` crate), and so does each
//! tracer, a command line per mode (see `modes`). Root only: it loads BPF programs and makes
//! network namespaces. `--smoke` runs everything at a tiny size, checks that every figure was
//! reported (not how fast), and fails otherwise.

mod alloc;
mod bpfstats;
mod churn;
mod churn_table;
mod figures;
mod load;
mod model;
mod modes;
mod parse;
mod perf;
mod pty;
mod sockets;
mod standin;
mod tracer;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use figures::Figure;
use serde::Serialize;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(about = "portwatch's costs, side by side with the untraced workload")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// (internal) A stand-in tracer for a portwatch subcommand that does not exist yet.
    #[command(hide = true)]
    Standin(standin::Args),
    /// (internal) A load generator in a process of its own (see bench/src/load.rs).
    #[command(hide = true)]
    Lab(portwatch_lab::cli::Args),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// The portwatch binary to measure.
    #[arg(long, default_value = "target/release/portwatch")]
    portwatch: PathBuf,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Tiny sizes, seconds not minutes; fail unless every figure was reported.
    #[arg(long)]
    smoke: bool,
    /// Untraced/traced pairs per mode.
    #[arg(long)]
    pairs: Option<usize>,
    /// Length of each churn run.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Connections held for the real-socket memory figure (two sockets each; ~3.8 KB of
    /// kernel memory per socket, and fs.file-max bounds the total).
    #[arg(long)]
    hold: Option<u64>,
    /// Replace a mode's command line: `KEY=ARGS` (space-separated, `{netns}` and `{out}`
    /// replaced), e.g. `record=portwatch record -o {out} --netns {netns}`.
    #[arg(long = "mode-cmd", value_name = "KEY=ARGS")]
    mode_cmd: Vec<String>,
    /// Another portwatch binary (e.g. built from main): every mode that runs `portwatch` runs
    /// it too, as `KEY-base`, in the same alternating pairs (before and after in one run).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Only these sections (churn, model, sockets); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only these traced modes (bare, kernel, record, report, tui, events, tcpstates; a mode keeps
    /// its `-base` twin); default all.
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("`{s}`: e.g. 4s, 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("`{s}`: e.g. 4s, 500ms")),
    }
}

/// Figures a run must report (a smoke run fails without any of them).
const REQUIRED: &[&str] = &[
    "churn.untraced.rate",
    "churn.bare.ratio",
    "bpf.bare.ns_per_transition",
    "churn.kernel.ratio",
    "churn.record.vs_bare",
    "churn.report.vs_bare",
    "churn.record.ratio",
    "churn.record.lost",
    "churn.report.ratio",
    "churn.report.lost",
    "churn.tcpstates.ratio",
    "bpf.kernel.ns_per_transition",
    "bpf.record.ns_per_transition",
    "bpf.report.ns_per_transition",
    "perf.kernel",
    "gap.unreached",
    "model.events_per_s",
    "model.bytes_per_socket.synthetic",
    "model.bytes_per_socket.real",
    "snapshot.ms",
    "snapshot.vs_ss",
    "snapshot.no_owners.vs_ss",
    "record.bytes_per_event.synthetic",
];

#[derive(Serialize)]
struct Output<'a> {
    smoke: bool,
    kernel: String,
    cpus: usize,
    figures: &'a [Figure],
    churn: &'a [churn::ModeRun],
    foreign_tracers: &'a churn::Foreign,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Standin(a)) => standin::run(a).map(|()| ExitCode::SUCCESS),
        Some(Cmd::Lab(a)) => portwatch_lab::cli::run(a),
        None => bench(cli.bench),
    };
    r.unwrap_or_else(|e| {
        eprintln!("portwatch-bench: error: {e:#}");
        ExitCode::FAILURE
    })
}

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("the benchmark loads BPF programs and makes network namespaces: run as root");
    }
    let portwatch = std::fs::canonicalize(&a.portwatch)
        .with_context(|| format!("{} (build it first)", a.portwatch.display()))?;
    let me = std::env::current_exe()?;
    let smoke = a.smoke;
    let want = |s: &str| a.only.is_empty() || a.only.iter().any(|o| o == s);
    let tmp = a.out.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let mut figs: Vec<Figure> = Vec::new();
    let mut runs = Vec::new();
    let mut env = churn::Env::default();

    if want("churn") {
        // Minimal churn, the headline workload: as many connect/close cycles as the cores
        // allow (a client thread and an acceptor per CPU), nothing else per connection.
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let load = load::ChurnLoad {
            threads: cpus,
            acceptors: cpus,
            duration: a.duration.unwrap_or(if smoke {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(3)
            }),
            max_connections: smoke.then_some(300),
            port: 23100,
        };
        let mut modes = modes::discover(
            &portwatch,
            &me,
            load.port,
            &a.mode_cmd,
            a.baseline.as_deref(),
        )?;
        modes.retain(|m| {
            a.modes.is_empty()
                || a.modes
                    .iter()
                    .any(|k| k == m.key || m.key.strip_suffix("-base") == Some(k))
        });
        let cfg = churn::Cfg {
            load,
            pairs: a.pairs.unwrap_or(if smoke { 1 } else { 5 }),
            tmp: tmp.clone(),
        };
        runs = churn::run(&cfg, &modes, &mut env);
        figs.extend(churn_table::figures(&runs, &env.foreign));
    }
    if want("model") {
        eprintln!("model: replay throughput and memory");
        let sizes = model::Sizes {
            replay_connections: if smoke { 2_000 } else { 300_000 },
            replay_runs: if smoke { 2 } else { 5 },
            live_sockets: if smoke { 20_000 } else { 2_000_000 },
            record_connections: if smoke { 2_000 } else { 100_000 },
        };
        figs.extend(model::throughput(&sizes));
        figs.extend(model::memory(sizes.live_sockets));
        figs.extend(model::recording(sizes.record_connections));
    }
    if want("sockets") {
        eprintln!("sockets: start-up snapshot vs ss, real memory");
        let (pairs, runs) = if smoke { (500, 2) } else { (50_000, 5) };
        figs.extend(sockets::snapshot_vs_ss(pairs, runs));
        let hold = a.hold.unwrap_or(if smoke { 1_000 } else { 500_000 });
        figs.extend(sockets::real_memory(hold));
    }
    let _ = std::fs::remove_dir_all(&tmp);

    println!("{}", figures::render(&figs));
    let out = Output {
        smoke,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .into(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        figures: &figs,
        churn: &runs,
        foreign_tracers: &env.foreign,
    };
    let name = if smoke { "smoke.json" } else { "bench.json" };
    let path = a.out.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&out)?)
        .with_context(|| format!("write {}", path.display()))?;
    println!("JSON: {}", path.display());

    if smoke && a.only.is_empty() {
        let bad: Vec<String> = REQUIRED
            .iter()
            .filter_map(|k| match figs.iter().find(|f| f.key == *k) {
                None => Some(format!("{k}: not reported")),
                Some(f) if f.value.is_none() && !f.unavailable => Some(format!("{k}: {}", f.note)),
                _ => None,
            })
            .collect();
        if !bad.is_empty() {
            eprintln!("smoke: figures missing:\n  {}", bad.join("\n  "));
            return Ok(ExitCode::FAILURE);
        }
        eprintln!("smoke: all {} required figures reported", REQUIRED.len());
    }
    Ok(ExitCode::SUCCESS)
}
