//! The churn experiment: the same loopback churn untraced and traced, run after run in
//! alternation (untraced, traced by mode A, untraced, traced by mode B, …) so that the noise
//! of this shared machine falls on both sides of every ratio; then one more traced run per
//! mode with BPF run-time statistics on and `perf stat` counting the tracepoint.

use std::path::PathBuf;

use serde::Serialize;

use crate::{
    bpfstats,
    figures::{Figure, Target, num, spread_of, stats},
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

/// The table lines for the churn experiment.
pub fn figures(runs: &[ModeRun], foreign: &Foreign) -> Vec<Figure> {
    let mut figs = Vec::new();
    let untraced: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.pairs.iter().map(|p| p.untraced.connections_per_s))
        .collect();
    figs.push(if untraced.is_empty() {
        Figure::missing("churn.untraced.rate", "churn untraced", "no run completed")
    } else {
        Figure::new(
            "churn.untraced.rate",
            "churn untraced",
            stats(&untraced).0,
            "conn/s",
        )
        .spread(spread_of(&untraced, "runs"))
        .note("10 transitions/connection")
        .note(foreign_note(foreign))
    });
    for r in runs {
        figs.extend(mode_figures(r));
    }
    figs.extend(gap_figures(runs));
    figs
}

fn mode_figures(r: &ModeRun) -> Vec<Figure> {
    let k = r.key;
    let key = |what: &str| format!("churn.{k}.{what}");
    let mut figs = Vec::new();
    if r.pairs.is_empty() {
        let why = r.error.clone().unwrap_or_else(|| "not run".into());
        let mut f = Figure::missing(&key("ratio"), &format!("churn {k} / untraced"), why);
        f.unavailable = k == "tcpstates";
        figs.push(f);
        return figs;
    }
    let ratios: Vec<f64> = r.pairs.iter().map(|p| p.ratio).collect();
    let mut f = Figure::new(
        &key("ratio"),
        &format!("churn {k} / untraced"),
        stats(&ratios).0,
        "",
    )
    .spread(spread_of(&ratios, "pairs"))
    .note(format!(
        "{}; {} conn/s traced",
        r.label,
        num(stats(
            &r.pairs
                .iter()
                .map(|p| p.traced.connections_per_s)
                .collect::<Vec<_>>()
        )
        .0)
    ))
    .note(r.note.clone());
    if r.targeted {
        f = f.target(Target::AtLeast(0.90));
    }
    if let Some(e) = &r.error {
        f = f.note(format!("later runs failed: {e}"));
    }
    figs.push(f);

    let expected: u64 = r.pairs.iter().map(|p| p.traced.expected_transitions).sum();
    let received: Option<u64> = r.pairs.iter().map(|p| p.tally.state_received).sum();
    let all: u64 = r.pairs.iter().map(|p| p.tally.received).sum();
    figs.push(match received {
        Some(n) => Figure::new(
            &key("received"),
            &format!("  {k} transitions received / caused"),
            n as f64 / expected as f64,
            "",
        )
        .spread(format!("{n} of {expected}"))
        .note(format!("{all} events of all kinds")),
        None => Figure::missing(
            &key("received"),
            &format!("  {k} transitions received / caused"),
            format!(
                "its output does not separate transitions: {all} events of all kinds for {expected} transitions"
            ),
        ),
    });
    let lost: u64 = r.pairs.iter().map(|p| p.tally.lost).sum();
    let mut by = std::collections::BTreeMap::<&str, u64>::new();
    for p in &r.pairs {
        for (why, n) in &p.tally.lost_by {
            *by.entry(why).or_default() += n;
        }
    }
    let lossy = r.pairs.iter().filter(|p| p.tally.lost > 0).count();
    figs.push(
        Figure::new(&key("lost"), &format!("  {k} lost"), lost as f64, "events")
            .target(Target::AtMost(0.0))
            .spread(format!("{lossy} of {} runs", r.pairs.len()))
            .note(if by.is_empty() {
                String::new()
            } else {
                format!("{by:?}")
            }),
    );
    let cpu: Option<u64> = r.pairs.iter().map(|p| p.tally.cpu_ns).sum();
    if let Some(cpu) = cpu {
        figs.push(
            Figure::new(
                &key("cpu_per_event"),
                &format!("  {k} userspace CPU / event"),
                cpu as f64 / all.max(1) as f64,
                "ns",
            )
            .spread(format!("{:.2} s CPU for {all} events", cpu as f64 / 1e9)),
        );
    }
    if let Some(c) = &r.cost {
        figs.extend(cost_figures(k, c));
    }
    if let Some(bytes) = r
        .pairs
        .iter()
        .map(|p| p.tally.recording_bytes)
        .sum::<Option<u64>>()
    {
        figs.push(
            Figure::new(
                &key("bytes_per_event"),
                &format!("  {k} file bytes / event (real)"),
                bytes as f64 / all.max(1) as f64,
                "B",
            )
            .target(Target::AtMost(12.0))
            .spread(format!("{bytes} B for {all} events")),
        );
    }
    figs
}

fn cost_figures(k: &str, c: &Cost) -> Vec<Figure> {
    let mut figs = Vec::new();
    let expected = c.out.expected_transitions.max(1);
    let total_ns: u64 = c.tally.progs.iter().map(|p| p.run_time_ns).sum();
    let label = format!("  {k} BPF ns / transition (all progs)");
    let key = format!("bpf.{k}.ns_per_transition");
    figs.push(if c.tally.progs.is_empty() || total_ns == 0 {
        Figure::missing(&key, &label, "no BPF statistics")
    } else {
        Figure::new(&key, &label, total_ns as f64 / expected as f64, "ns").note(format!(
            "{} programs, {} runs for {expected} transitions",
            c.tally.progs.len(),
            c.tally.progs.iter().map(|p| p.run_cnt).sum::<u64>()
        ))
    });
    // Per program: named by hook for the in-process collector, by kernel name otherwise.
    for p in c.tally.progs.iter().filter(|p| p.run_cnt > 0) {
        let name = c
            .tally
            .hooks
            .iter()
            .find(|(id, _)| *id == p.id)
            .map_or(p.name.clone(), |(_, n)| n.clone());
        if k != "kernel" && k != "tcpstates" {
            continue;
        }
        figs.push(
            Figure::new(
                &format!("bpf.{k}.prog.{name}"),
                &format!("    {name}"),
                p.avg_ns().unwrap_or(0.0),
                "ns/run",
            )
            .note(format!(
                "{} runs ({:.2}/transition)",
                p.run_cnt,
                p.run_cnt as f64 / expected as f64
            )),
        );
    }
    let key = format!("perf.{k}");
    let label = format!("  {k} perf tracepoint firings - caused");
    if k == "tcpstates" {
        // Its program sits on the classic tracepoint, and a BPF program there that returns 0
        // (tcpstates' does) keeps perf's event from counting (perf_trace_run_bpf_submit).
        let misses: u64 = c.tally.progs.iter().map(|p| p.recursion_misses).sum();
        figs.push(
            Figure::missing(
                &key,
                &label,
                format!(
                    "not comparable: tcpstates' program on the same classic tracepoint returns 0, \
                     which stops perf counting; its program skipped {misses} runs (another BPF \
                     program running on the CPU), uncounted as lost"
                ),
            )
            .unavailable(),
        );
        return figs;
    }
    figs.push(match (c.perf, &c.perf_error) {
        (Some(n), _) => {
            let mut f = Figure::new(&key, &label, n as f64 - expected as f64, "")
                .spread(format!("{n} firings, {expected} caused"));
            if let Some(seen) = c.tally.kernel_seen {
                f = f.note(format!(
                    "{} reached the programs ({} missing)",
                    seen,
                    n as i64 - seen as i64
                ));
            }
            if let Some(s) = c.tally.state_received {
                f = f.note(format!("{s} received"));
            }
            f
        }
        (None, e) => {
            let mut f = Figure::missing(&key, &label, e.clone().unwrap_or_default());
            f.unavailable = true;
            f
        }
    });
    figs
}

/// Transitions that reached no BPF program: caused − (seen + skipped), over every run whose
/// tracer reports what the programs saw.
fn gap_figures(runs: &[ModeRun]) -> Vec<Figure> {
    let mut caused = 0u64;
    let mut missing = 0i64;
    let mut with_gap = 0;
    let mut n = 0;
    let mut worst = 0f64;
    let all = runs.iter().flat_map(|r| {
        r.pairs
            .iter()
            .map(|p| (&p.traced, &p.tally))
            .chain(r.cost.iter().map(|c| (&c.out, &c.tally)))
    });
    for (out, tally) in all {
        let Some(seen) = tally.kernel_seen else {
            continue;
        };
        let gap = out.expected_transitions as i64 - seen as i64;
        caused += out.expected_transitions;
        missing += gap;
        n += 1;
        if gap != 0 {
            with_gap += 1;
        }
        worst = worst.max(gap as f64 / out.expected_transitions.max(1) as f64);
    }
    if n == 0 {
        return vec![Figure::missing(
            "gap.unreached",
            "transitions reaching no BPF program",
            "no run reported what its programs saw",
        )];
    }
    vec![
        Figure::new(
            "gap.unreached",
            "transitions reaching no BPF program",
            100.0 * missing as f64 / caused.max(1) as f64,
            "%",
        )
        .spread(format!(
            "{missing} of {caused}; {with_gap} of {n} runs had a gap, worst {:.3} %",
            100.0 * worst
        )),
    ]
}

fn foreign_note(foreign: &Foreign) -> String {
    if foreign.is_empty() {
        return String::new();
    }
    // The program name is enough to tell them apart; the JSON lists them all.
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for t in foreign.values() {
        let name = t.cmdline.split_whitespace().next().unwrap_or("?");
        let name = name.rsplit('/').next().unwrap_or(name);
        let sub = t.cmdline.split_whitespace().nth(1).unwrap_or("");
        *kinds.entry(format!("{name} {sub}")).or_default() += 1;
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{n}x `{k}`")).collect();
    format!(
        "{} other tracer(s) attached during the runs ({}): untraced and traced runs alike \
         paid their programs",
        foreign.len(),
        list.join(", ")
    )
}
