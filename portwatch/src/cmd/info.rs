//! `portwatch info FILE`: what a recording holds — header, time span, counts, loss, integrity.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::record::Info;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A recording from `portwatch record`.
    file: PathBuf,
    /// As JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let info = Info::open(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(if info.integrity.is_complete() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    let h = &info.header.host;
    let at = |mono: u64| {
        let wall = h.wall_ns(mono).max(0) as u64;
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_nanos(wall))
            .to_string()
    };
    println!(
        "file        {} ({} bytes, format {})",
        info.path.display(),
        info.file_bytes,
        info.header.version
    );
    println!(
        "host        {} (kernel {}, {}), portwatch {}",
        h.hostname, h.kernel_release, h.machine, h.portwatch_version
    );
    println!("started     {}", at(h.start_mono_ns));
    match (info.first_ts_ns, info.last_ts_ns) {
        (Some(a), Some(b)) => println!(
            "events      {} from {} to {} ({:.1} s)",
            info.events,
            at(a),
            at(b),
            info.span_ns() as f64 / 1e9
        ),
        _ => println!("events      none"),
    }
    let k = &info.by_kind;
    println!(
        "  by kind   {} transitions; connect ok/failed {}/{}; bind ok/failed {}/{}; timewait start/cancel/expire {}/{}/{}",
        k.state,
        k.connect_ok,
        k.connect_failed,
        k.bind_ok,
        k.bind_failed,
        k.tw_start,
        k.tw_cancel,
        k.tw_expire
    );
    println!(
        "namespaces  {}; processes {}",
        info.netns.len(),
        info.processes
    );
    let ctx: Vec<String> = info
        .contexts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!(
        "context     {}",
        if ctx.is_empty() {
            "none".into()
        } else {
            ctx.join(", ")
        }
    );
    match &info.loss {
        Some(c) => println!(
            "lost        {} events (kernel counters at the end of the recording)",
            c.lost_total()
        ),
        None => println!("lost        unknown (no loss counters recorded)"),
    }
    for w in &info.warnings {
        println!("warning     {w}");
    }
    println!("integrity   {}", info.integrity);
    for e in &info.errors {
        println!("  {e}");
    }
    Ok(if info.integrity.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
