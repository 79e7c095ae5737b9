//! `portwatch check`: can this machine run portwatch? One line per item, then a verdict.

use std::{path::Path, process::ExitCode};

use crate::{
    collect::{Collector, Options, btf::Btf, layout::Layout, tracefs},
    privileges,
};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 when portwatch can run (possibly with degraded features, shown as `warn`),
1 when it cannot. Without privileges only the static checks run.")]
pub struct Args {
    /// Only the static checks: do not load and attach the programs.
    #[arg(long)]
    no_attach: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    worst: Level,
}

impl Report {
    fn line(&mut self, level: Level, item: &str, detail: impl AsRef<str>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {item:<34} {}", detail.as_ref());
        self.worst = self.worst.max(level);
    }
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// (major, minor) of a release string like "6.18.44-fc".
pub fn parse_release(r: &str) -> Option<(u32, u32)> {
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The active lockdown mode from /sys/kernel/security/lockdown ("none [integrity] …").
pub fn lockdown_mode(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = text[start..].find(']')? + start;
    Some(&text[start..end])
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut r = Report { worst: Level::Ok };

    let privileged = privileges::check();
    match &privileged {
        Ok(how) => r.line(Level::Ok, "privileges", how),
        Err(e) => r.line(Level::Fail, "privileges", e),
    }

    let release = kernel_release();
    match parse_release(&release) {
        Some(v) if v >= (5, 8) => r.line(
            Level::Ok,
            "kernel",
            format!("{release} (needs 5.8+: ring buffer, BTF tracepoints)"),
        ),
        Some(_) => r.line(
            Level::Fail,
            "kernel",
            format!("{release}: needs 5.8 or newer (BPF ring buffer)"),
        ),
        None => r.line(
            Level::Warn,
            "kernel",
            format!("cannot parse release `{release}`"),
        ),
    }

    let btf_path = Path::new("/sys/kernel/btf/vmlinux");
    let layout = match Btf::from_file(btf_path) {
        Err(e) => {
            r.line(
                Level::Fail,
                "BTF",
                format!("{e} (needs CONFIG_DEBUG_INFO_BTF=y)"),
            );
            None
        }
        Ok(btf) => {
            let syms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
            match Layout::resolve(&btf, &syms) {
                Ok(l) => {
                    r.line(
                        Level::Ok,
                        "BTF",
                        format!("{}: socket layout resolved", btf_path.display()),
                    );
                    Some(l)
                }
                Err(e) => {
                    r.line(Level::Fail, "BTF", format!("socket layout: {e}"));
                    None
                }
            }
        }
    };
    if let Some(l) = &layout {
        for (item, res, loss) in [
            (
                "BTF: network namespaces",
                &l.netns,
                "every event says netns 0",
            ),
            (
                "BTF + kallsyms: timewait timers",
                &l.timewait,
                "no live TIME_WAIT",
            ),
            (
                "BTF: fd -> socket",
                &l.fd_to_sock,
                "no socket on failures, no bound ports",
            ),
        ] {
            match res {
                Ok(()) => r.line(Level::Ok, item, "resolved"),
                Err(e) => r.line(Level::Warn, item, format!("{e}: {loss}")),
            }
        }
    }

    match tracefs::find() {
        Some(p) => r.line(Level::Ok, "tracefs", format!("mounted at {}", p.display())),
        None if privileged.is_ok() => r.line(
            Level::Ok,
            "tracefs",
            format!("not mounted; portwatch mounts it on {}", tracefs::TRACEFS),
        ),
        None => r.line(
            Level::Warn,
            "tracefs",
            "not mounted, and only root can mount it",
        ),
    }

    match std::fs::read_to_string("/sys/kernel/security/lockdown") {
        Err(_) => r.line(Level::Ok, "lockdown", "no lockdown LSM interface (not locked down)"),
        Ok(text) => match lockdown_mode(&text) {
            Some("confidentiality") => r.line(
                Level::Fail,
                "lockdown",
                "confidentiality: BPF may not read kernel memory (boot with lockdown=integrity or none)",
            ),
            Some(mode) => r.line(Level::Ok, "lockdown", format!("{mode}: BPF reads allowed (kprobes/fentry may not be; portwatch uses neither)")),
            None => r.line(Level::Warn, "lockdown", format!("unreadable: {}", text.trim())),
        },
    }

    if args.no_attach {
        println!("(--no-attach: programs not loaded)");
    } else if privileged.is_ok() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _guard = rt.enter();
        match Collector::start(&Options::default()) {
            Ok(mut c) => {
                r.line(Level::Ok, "ring buffer", "BPF_MAP_TYPE_RINGBUF created");
                for a in c.attached() {
                    match &a.result {
                        Ok(()) => r.line(
                            Level::Ok,
                            &a.hook.attach_point(),
                            format!("attached in {:.1} ms", a.ms),
                        ),
                        Err(e) => r.line(
                            Level::Warn,
                            &a.hook.attach_point(),
                            format!("{e}: {}", a.hook.loss_if_missing()),
                        ),
                    }
                }
                c.stop();
            }
            Err(e) => r.line(Level::Fail, "load and attach", format!("{e:#}")),
        }
    } else {
        println!("(not privileged: programs not loaded)");
    }

    println!();
    Ok(match r.worst {
        Level::Ok => {
            println!("portwatch can run here.");
            ExitCode::SUCCESS
        }
        Level::Warn => {
            println!("portwatch can run here, with the features marked `warn` degraded.");
            ExitCode::SUCCESS
        }
        Level::Fail => {
            println!("portwatch cannot run here: fix the FAIL lines above.");
            ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_and_lockdown() {
        assert_eq!(parse_release("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(parse_release("5.4.0"), Some((5, 4)));
        assert_eq!(parse_release("x"), None);
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality\n"),
            Some("integrity")
        );
        assert_eq!(
            lockdown_mode("[none] integrity confidentiality"),
            Some("none")
        );
        assert_eq!(lockdown_mode("garbage"), None);
    }
}
