//! Real sockets held by `lab hold` (see `load`): the start-up snapshot's time next to `ss -tan` on
//! the same sockets, and the model's memory per socket when it loads them.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use portwatch::{
    collect::monotonic_now_ns,
    context::{self, Options},
    model::Model,
    netns::Netns,
};

use crate::{
    alloc,
    figures::{Figure, Target, num, spread_of, stats},
    load::Lab,
};

/// Runs `f` on a thread inside the namespace of process `pid`.
fn in_netns_of<R: Send>(pid: u32, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = Netns::open(Path::new(&path)).with_context(|| format!("open {path}"))?;
    Ok(ns.run(f)?)
}

/// Wall time of `ss ARGS` run inside the namespace (output to /dev/null).
fn time_ss(pid: u32, args: &'static [&'static str]) -> anyhow::Result<Duration> {
    in_netns_of(pid, || -> anyhow::Result<Duration> {
        let t = Instant::now();
        let st = Command::new("ss")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .context("run ss")?;
        if !st.success() {
            bail!("ss {args:?}: {st}");
        }
        Ok(t.elapsed())
    })?
}

fn ms(d: &[Duration]) -> Vec<f64> {
    d.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

/// Start-up snapshot (sock_diag + owners + sysctls, as a live session takes it, then merged
/// into a model) against `ss -tan` and `ss -tanp`, alternating, `runs` times each.
pub fn snapshot_vs_ss(connections: u64, runs: usize) -> Vec<Figure> {
    match snapshot_vs_ss_inner(connections, runs) {
        Ok(f) => f,
        Err(e) => vec![Figure::missing(
            "snapshot.ms",
            "start-up snapshot",
            format!("{e:#}"),
        )],
    }
}

fn snapshot_vs_ss_inner(connections: u64, runs: usize) -> anyhow::Result<Vec<Figure>> {
    let lab = Lab::hold(connections, 5001)?;
    let sockets = lab.hold.as_ref().map_or(0, |h| h.sockets);
    let only = Options {
        only_netns: Some(vec![lab.netns]),
        ..Options::default()
    };
    let no_owners = Options {
        owners: false,
        ..only.clone()
    };
    let (mut snap, mut load, mut ss, mut ssp) = (vec![], vec![], vec![], vec![]);
    let mut bare = vec![];
    let mut seen = 0;
    for _ in 0..runs {
        ss.push(time_ss(lab.pid, &["-tan"])?);
        let t = Instant::now();
        let report = context::take(&only)?;
        snap.push(t.elapsed());
        let mut m = Model::default();
        m.load_snapshot(&report.snapshot, monotonic_now_ns());
        load.push(t.elapsed());
        seen = report
            .snapshot
            .namespaces
            .iter()
            .map(|n| n.sockets.len())
            .sum();
        ssp.push(time_ss(lab.pid, &["-tanp"])?);
        let t = Instant::now();
        context::take(&no_owners)?;
        bare.push(t.elapsed());
    }
    lab.finish();
    let (snap, load, ss, ssp, bare) = (ms(&snap), ms(&load), ms(&ss), ms(&ssp), ms(&bare));
    let ss_median = stats(&ss).0;
    let ratio = stats(&snap).0 / ss_median;
    let n = format!("{} sockets", num(seen as f64));
    if (seen as u64) < sockets {
        eprintln!("snapshot: saw {seen} of {sockets} sockets");
    }
    Ok(vec![
        Figure::new(
            "snapshot.ss_tan.ms",
            "ss -tan, same sockets",
            ss_median,
            "ms",
        )
        .spread(spread_of(&ss, "runs"))
        .note(n.clone()),
        Figure::new(
            "snapshot.ms",
            "start-up snapshot (with owners)",
            stats(&snap).0,
            "ms",
        )
        .spread(spread_of(&snap, "runs"))
        .note(format!(
            "sock_diag + /proc owner walk + sysctls; ss -tanp {} ms",
            num(stats(&ssp).0)
        )),
        Figure::new("snapshot.vs_ss", "  snapshot / ss -tan", ratio, "")
            .target(Target::AtMost(1.0))
            .note(format!(
                "with model load: {} ms ({:.2}x); {:.2}x ss -tanp, which also finds owners",
                num(stats(&load).0),
                stats(&load).0 / ss_median,
                stats(&snap).0 / stats(&ssp).0
            )),
        Figure::new(
            "snapshot.no_owners.vs_ss",
            "  snapshot without owners / ss -tan",
            stats(&bare).0 / ss_median,
            "",
        )
        .target(Target::AtMost(1.0))
        .spread(spread_of(&bare, "runs (ms)"))
        .note("sock_diag + sysctls: the part that is not the /proc walk"),
    ])
}

/// Model heap per socket after loading a snapshot of `connections` real connections.
pub fn real_memory(connections: u64) -> Vec<Figure> {
    let key = "model.bytes_per_socket.real";
    let label = "model memory / socket, real";
    let run = || -> anyhow::Result<Figure> {
        let lab = Lab::hold(connections, 7001)?;
        let hold = lab.hold.clone().context("no hold report")?;
        let report = context::take(&Options {
            only_netns: Some(vec![lab.netns]),
            ..Options::default()
        })?;
        let before = alloc::live_bytes();
        let mut m = Model::default();
        m.load_snapshot(&report.snapshot, monotonic_now_ns());
        let after = alloc::live_bytes();
        let c = m.counters();
        drop(m);
        drop(report);
        lab.finish();
        Ok(Figure::new(
            key,
            label,
            (after - before) as f64 / c.sockets_tracked.max(1) as f64,
            "B",
        )
        .target(Target::AtMost(160.0))
        .spread(format!(
            "{} sockets tracked of {} held",
            num(c.sockets_tracked as f64),
            num(hold.sockets as f64)
        ))
        .note(format!(
            "held by {} processes (file limit {} each), built in {:.0} s",
            hold.processes,
            fd_limit(),
            hold.elapsed_s
        )))
    };
    vec![run().unwrap_or_else(|e| Figure::missing(key, label, format!("{e:#}")))]
}

fn fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_max
}
