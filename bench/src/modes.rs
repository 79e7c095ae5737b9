//! Which traced modes this machine and this portwatch build offer, each as a command line.
//! A portwatch subcommand that is not there yet falls back to a stand-in (the library code
//! it will run, in a process of its own), and the table says so.

use std::{
    path::Path,
    process::{Command, Stdio},
};

use crate::tracer::{How, Mode, Parse};

/// libbpf-tools' tcpstates (Debian package `libbpf-tools`).
const TCPSTATES: &str = "/usr/sbin/tcpstates";

fn has_subcommand(portwatch: &Path, name: &str) -> bool {
    Command::new(portwatch)
        .args([name, "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

pub fn discover(
    portwatch: &Path,
    me: &Path,
    port: u16,
    overrides: &[String],
    baseline: Option<&Path>,
) -> anyhow::Result<Vec<Mode>> {
    let pw = portwatch.to_string_lossy().into_owned();
    let me = me.to_string_lossy().into_owned();
    let mut modes = vec![Mode {
        key: "bare",
        label: "bare hooks: programs that return at once, same attach points".into(),
        how: How::Bare,
        note: String::new(),
        targeted: false,
    }];
    modes.push(Mode {
        key: "kernel",
        label: "collector only (library, in the harness)".into(),
        how: How::InProcess,
        note: String::new(),
        targeted: false,
    });
    modes.push(if has_subcommand(portwatch, "record") {
        Mode {
            key: "record",
            label: "portwatch record".into(),
            how: How::Command {
                argv: argv(&[&pw, "record", "--netns", "{netns}", "--output", "{out}"]),
                parse: Parse::Recording,
            },
            note: String::new(),
            targeted: true,
        }
    } else {
        Mode {
            key: "record",
            label: "record stand-in".into(),
            how: How::Command {
                argv: argv(&[
                    &me, "standin", "record", "--netns", "{netns}", "--output", "{out}",
                ]),
                parse: Parse::Recording,
            },
            note: "portwatch has no `record` yet: library Live + record::Writer in its own \
                   process"
                .into(),
            targeted: true,
        }
    });
    modes.push(if has_subcommand(portwatch, "report") {
        Mode {
            key: "report",
            label: "portwatch report".into(),
            how: How::Command {
                argv: argv(&[
                    &pw,
                    "report",
                    "--json",
                    "--netns",
                    "{netns}",
                    "--duration",
                    "10m",
                ]),
                parse: Parse::ReportJson,
            },
            note: String::new(),
            targeted: true,
        }
    } else {
        Mode {
            key: "report",
            label: "live-model stand-in".into(),
            how: How::Command {
                argv: argv(&[&me, "standin", "live", "--netns", "{netns}"]),
                parse: Parse::StandinJson,
            },
            note: "portwatch has no `report` yet: library Live (collector + snapshot + model) \
                   in its own process; `events` below is the shipped command"
                .into(),
            targeted: true,
        }
    });
    // Without a subcommand portwatch is the TUI: on a pseudo-terminal of the harness's.
    modes.push(Mode {
        key: "tui",
        label: "portwatch (the TUI, on a pty)".into(),
        how: How::Command {
            argv: argv(&[&pw, "--netns", "{netns}"]),
            parse: Parse::Tui,
        },
        note: String::new(),
        targeted: true,
    });
    modes.push(Mode {
        key: "events",
        label: "portwatch events --json".into(),
        how: How::Command {
            argv: argv(&[&pw, "events", "--json", "--netns", "{netns}"]),
            parse: Parse::EventsJson,
        },
        note: "every event formatted as JSON and piped".into(),
        targeted: false,
    });
    modes.push(Mode {
        key: "tcpstates",
        label: "libbpf-tools tcpstates".into(),
        how: if Path::new(TCPSTATES).exists() {
            How::Command {
                argv: argv(&[TCPSTATES]),
                parse: Parse::Tcpstates { port },
            }
        } else {
            How::Unavailable(format!(
                "{TCPSTATES} not installed (Debian package libbpf-tools)"
            ))
        },
        note: "the reference: one text line per transition, all namespaces".into(),
        targeted: false,
    });
    for o in overrides {
        let (key, cmd) = o
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--mode-cmd {o}: expected KEY=ARGS"))?;
        let m = modes
            .iter_mut()
            .find(|m| m.key == key)
            .ok_or_else(|| anyhow::anyhow!("--mode-cmd: no mode {key}"))?;
        let How::Command { argv, .. } = &mut m.how else {
            anyhow::bail!("--mode-cmd: mode {key} is not a command");
        };
        *argv = cmd.split_whitespace().map(String::from).collect();
        m.label = format!("{} (command overridden)", m.label);
    }
    if let Some(base) = baseline {
        modes = with_baseline(modes, &pw, &base.to_string_lossy());
    }
    Ok(modes)
}

/// Each mode that runs `portwatch` twice: as built (`KEY`) and with the `baseline` binary
/// (`KEY-base`, right after it), so that a change is measured before and after in one run,
/// in the same alternating pairs.
fn with_baseline(modes: Vec<Mode>, pw: &str, base: &str) -> Vec<Mode> {
    let mut out = Vec::with_capacity(modes.len() * 2);
    for m in modes {
        let twin = match &m.how {
            How::Command { argv, parse } if argv.first().is_some_and(|a| a == pw) => {
                let mut argv = argv.clone();
                argv[0] = base.to_string();
                Some(Mode {
                    // A handful of modes per run: leaking their keys is fine.
                    key: Box::leak(format!("{}-base", m.key).into_boxed_str()),
                    label: format!("{} (baseline {base})", m.label),
                    how: How::Command {
                        argv,
                        parse: *parse,
                    },
                    note: m.note.clone(),
                    targeted: m.targeted,
                })
            }
            _ => None,
        };
        out.push(m);
        out.extend(twin);
    }
    out
}
