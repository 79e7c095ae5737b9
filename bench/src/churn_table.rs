//! The churn experiment's table lines: each mode's kept ratio against the untraced run and
//! against the bare hooks, its losses per kind, its userspace and BPF costs, each next to its
//! target (issue 14: >= 0.95 of the bare hooks, 0 lost, <= 150 ns BPF per transition,
//! <= 100 ns userspace per event except JSON `events`).

use crate::{
    churn::{Cost, Foreign, ModeRun},
    figures::{Figure, Target, num, spread_of, stats},
};

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
    let bare = runs
        .iter()
        .find(|r| r.key == "bare" && !r.pairs.is_empty())
        .map(|r| stats(&r.pairs.iter().map(|p| p.ratio).collect::<Vec<_>>()).0);
    for r in runs {
        figs.extend(mode_figures(r, bare));
    }
    figs.extend(gap_figures(runs));
    figs
}

/// A mode's figures; `bare`: the bare hooks' kept ratio, the floor the modes are held to.
fn mode_figures(r: &ModeRun, bare: Option<f64>) -> Vec<Figure> {
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
    if k == "bare" {
        // The floor: nothing is sent, so nothing is received or lost.
        if let Some(c) = &r.cost {
            figs.extend(cost_figures(k, c));
        }
        return figs;
    }
    match bare {
        Some(b) if k != "tcpstates" => {
            let mut f = Figure::new(
                &key("vs_bare"),
                &format!("  {k} kept / bare hooks kept"),
                stats(&ratios).0 / b,
                "",
            )
            .spread(format!("bare hooks kept {b:.3} of untraced"));
            if r.targeted {
                f = f.target(Target::AtLeast(0.95));
            }
            figs.push(f);
        }
        Some(b) => figs.push(
            Figure::new(
                &key("vs_bare"),
                &format!("  {k} kept / bare hooks kept"),
                stats(&ratios).0 / b,
                "",
            )
            .spread(format!("bare hooks kept {b:.3} of untraced")),
        ),
        None => figs.push(Figure::missing(
            &key("vs_bare"),
            &format!("  {k} kept / bare hooks kept"),
            "the bare-hooks baseline did not run",
        )),
    }

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
        let mut f = Figure::new(
            &key("cpu_per_event"),
            &format!("  {k} userspace CPU / event"),
            cpu as f64 / all.max(1) as f64,
            "ns",
        )
        .spread(format!("{:.2} s CPU for {all} events", cpu as f64 / 1e9));
        // JSON `events` may fall behind (and count it); every other mode must keep up.
        if k != "events" && k != "tcpstates" {
            f = f.target(Target::AtMost(100.0));
        }
        figs.push(f);
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
        let f = Figure::new(&key, &label, total_ns as f64 / expected as f64, "ns");
        let f = if k == "bare" || k == "tcpstates" {
            f
        } else {
            f.target(Target::AtMost(150.0))
        };
        f.note(format!(
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
        if k != "kernel" && k != "tcpstates" && k != "bare" {
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
    if k == "bare" {
        return figs;
    }
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
