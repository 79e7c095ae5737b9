//! The churn experiment: the same loopback churn untraced and traced, run after run in
//! alternation (untraced, traced by mode A, untraced, traced by mode B, …) so that the noise
//! of this shared machine falls on both sides of every ratio; then one more traced run per
//! mode with BPF run-time statistics on and `perf stat` counting the tracepoint.

use std::path::PathBuf;

use serde::Serialize;

use crate::{
    bpfstats,
    load::{ChurnLoad, ChurnOut, Lab},
    perf::{self, Perf},
    tracer::{Mode, Tally},
};

pub struct Cfg {
    pub load: ChurnLoad,
    /// Untraced/traced pairs per mode.
    pub pairs: usize,
    pub tmp: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Pair {
    pub untraced: ChurnOut,
    pub traced: ChurnOut,
    pub tally: Tally,
    pub ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct Cost {
    pub out: ChurnOut,
    pub tally: Tally,
    pub perf: Option<u64>,
    pub perf_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ModeRun {
    pub key: &'static str,
    pub label: String,
    pub note: String,
    pub targeted: bool,
    pub pairs: Vec<Pair>,
    pub cost: Option<Cost>,
    pub error: Option<String>,
}

/// Other processes' TCP state tracers seen during the experiment, by pid.
pub type Foreign = std::collections::BTreeMap<u32, bpfstats::Tracer>;

/// What the experiment keeps across runs.
#[derive(Default)]
pub struct Env {
    pub foreign: Foreign,
    /// Namespaces another tracer filters on, held (empty) for the whole experiment so that
    /// the kernel does not hand their inodes out again.
    placeholders: Vec<Lab>,
}

/// A churn process whose namespace no foreign tracer filters on: the kernel recycles
/// namespace inodes, and a tracer left running with `--netns N` would trace this run.
fn lab(cfg: &Cfg, env: &mut Env) -> anyhow::Result<Lab> {
    let mine = [std::process::id()];
    for _ in 0..8 {
        let lab = Lab::churn(&cfg.load)?;
        let tracers = bpfstats::foreign_tracers(&mine);
        let clash = tracers.iter().any(|t| t.netns == Some(lab.netns));
        env.foreign.extend(tracers.into_iter().map(|t| (t.pid, t)));
        if !clash {
            return Ok(lab);
        }
        eprintln!(
            "churn: netns {} is filtered by another tracer: held aside",
            lab.netns
        );
        env.placeholders.push(lab);
    }
    anyhow::bail!("every new namespace was already traced by another process")
}

fn untraced(cfg: &Cfg, foreign: &mut Env) -> anyhow::Result<ChurnOut> {
    let mut lab = lab(cfg, foreign)?;
    let out = lab.go()?;
    lab.finish();
    Ok(out)
}

fn traced(
    cfg: &Cfg,
    mode: &Mode,
    perf: bool,
    foreign: &mut Env,
) -> anyhow::Result<(ChurnOut, Tally, PerfOutcome)> {
    let mut lab = lab(cfg, foreign)?;
    let out_file = cfg.tmp.join(format!("{}.pwr", mode.key));
    let tracer = mode.start(lab.netns, &out_file)?;
    let counter = perf.then(|| Perf::start(cfg.load.port));
    let out = lab.go();
    let perf = match counter {
        None => PerfOutcome::NotRun,
        Some(Ok(p)) => match p.stop() {
            Ok(n) => PerfOutcome::Count(n),
            Err(e) => PerfOutcome::Failed(format!("{e:#}")),
        },
        Some(Err(e)) => PerfOutcome::Failed(format!("{e:#}")),
    };
    // Stop the tracer before the namespace goes (its teardown ends every TIME_WAIT).
    let tally = tracer.stop();
    lab.finish();
    let _ = std::fs::remove_file(&out_file);
    Ok((out?, tally?, perf))
}

enum PerfOutcome {
    NotRun,
    Count(u64),
    Failed(String),
}

/// Runs every available mode; a mode that fails keeps its error and is not run again.
pub fn run(cfg: &Cfg, modes: &[Mode], foreign: &mut Env) -> Vec<ModeRun> {
    let mut runs: Vec<ModeRun> = modes
        .iter()
        .map(|m| ModeRun {
            key: m.key,
            label: m.label.clone(),
            note: m.note.clone(),
            targeted: m.targeted,
            pairs: Vec::new(),
            cost: None,
            error: match &m.how {
                crate::tracer::How::Unavailable(why) => Some(why.clone()),
                _ => None,
            },
        })
        .collect();
    for round in 0..cfg.pairs {
        for (mode, run) in modes.iter().zip(runs.iter_mut()) {
            if run.error.is_some() {
                continue;
            }
            eprintln!("churn: pair {}/{} for {}", round + 1, cfg.pairs, mode.key);
            let pair = untraced(cfg, foreign).and_then(|u| {
                let (t, tally, _) = traced(cfg, mode, false, foreign)?;
                Ok(Pair {
                    ratio: t.connections_per_s / u.connections_per_s,
                    untraced: u,
                    traced: t,
                    tally,
                })
            });
            match pair {
                Ok(p) => run.pairs.push(p),
                Err(e) => run.error = Some(format!("{e:#}")),
            }
        }
    }
    // Statistics cost a clock read per program run: only in these extra runs.
    let stats = bpfstats::enable_stats();
    let perf_ok = perf::available();
    for (mode, run) in modes.iter().zip(runs.iter_mut()) {
        if run.error.is_some() {
            continue;
        }
        eprintln!("churn: cost run for {}", mode.key);
        match traced(cfg, mode, perf_ok.is_ok(), foreign) {
            Ok((out, tally, p)) => {
                let (perf, perf_error) = match p {
                    PerfOutcome::Count(n) => (Some(n), None),
                    PerfOutcome::Failed(e) => (None, Some(e)),
                    PerfOutcome::NotRun => (None, perf_ok.clone().err()),
                };
                run.cost = Some(Cost {
                    out,
                    tally,
                    perf,
                    perf_error,
                });
            }
            Err(e) => run.error = Some(format!("cost run: {e:#}")),
        }
    }
    if let Err(e) = &stats {
        for r in &mut runs {
            r.note
                .push_str(&format!("; BPF statistics unavailable: {e}"));
        }
    }
    drop(stats);
    runs
}
