//! `portwatch` without a subcommand: the TUI on live tracing. Also the terminal loop that
//! `replay` and `demo` share ([`run_console`]).

use std::{
    io::{self, IsTerminal},
    process::ExitCode,
    time::{Duration, Instant},
};

use crate::{
    console::{FPS_RANGE, Frames, LiveSource, Source},
    session::{self, Live},
    tui::{self, Action, App, TerminalGuard, on_key},
};
use anyhow::Context as _;
use crossterm::event::Event as TermEvent;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    time::MissedTickBehavior,
};

use super::{SessionArgs, TraceArgs};

/// How often the screen refreshes.
#[derive(clap::Args, Debug, Clone)]
pub struct FrameArgs {
    /// Refreshes per second, 1 to 4. Events keep flowing into the model between refreshes.
    #[arg(long, value_name = "HZ", default_value_t = 2.0, value_parser = parse_fps)]
    pub fps: f64,
}

fn parse_fps(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if FPS_RANGE.contains(&f) {
        Ok(f)
    } else {
        Err(format!("{f} is outside 1 to 4"))
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this network namespace (inode number, as in `ls -lL /proc/PID/ns/net`), filtered
    /// in the kernel.
    #[arg(long, value_name = "INODE")]
    pub netns: Option<u32>,
    #[command(flatten)]
    pub frame: FrameArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
    #[command(flatten)]
    pub session: SessionArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    session::traced(async {
        need_terminal()?;
        let mut opts = args.session.live_options(&args.trace);
        opts.trace.netns = args.netns;
        let live = Live::start(opts).await?;
        let mut src = LiveSource::new(live);
        let out = run_console(&mut src, args.frame.fps).await;
        src.live.finish(&mut []).await?;
        // The terminal is restored by now: say what the session received and lost, as
        // `events` does, so that nothing lost goes unsaid once the screen is gone.
        eprintln!("{}", super::events::summary(&src.live.counters()));
        out
    })
}

/// The TUI draws on stdout and reads keys from the terminal.
pub fn need_terminal() -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        anyhow::bail!(
            "the TUI needs a terminal on stdout; for a plain stream of events use \
             `portwatch events`"
        )
    }
}

/// Runs the TUI on `src` until `q`, Ctrl-C, SIGINT or SIGTERM (exit status 0). The terminal
/// is restored on every way out: those, an error (the guard's drop) and a panic (the hook).
pub async fn run_console(src: &mut impl Source, fps: f64) -> anyhow::Result<ExitCode> {
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut app = App::new(tui::Options {
        color: tui::theme::color_from_env(),
        ..Default::default()
    });
    let mut frames = Frames::default();
    let mut batch = Vec::new();
    let mut frame = tokio::time::interval(Duration::from_secs_f64(1.0 / fps));
    frame.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut guard = TerminalGuard::enter().context("set up the terminal")?;
    let mut keys = terminal_events()?;
    loop {
        let mut refresh = false;
        let mut draw = false;
        tokio::select! {
            r = src.next_events(&mut batch) => r?,
            _ = frame.tick() => refresh = true,
            k = keys.recv() => match k {
                Some(Ok(TermEvent::Key(key))) => match on_key(&mut app, key) {
                    Action::None => {}
                    Action::Quit => break,
                    Action::Redraw => {
                        frames.answer_new_request(src, &mut app, Instant::now());
                        draw = true;
                    }
                    a @ (Action::TogglePause | Action::Speed(_) | Action::Seek(_)) => {
                        src.control(a, &mut batch)?;
                        if matches!(a, Action::Seek(_)) {
                            frames.invalidate();
                        }
                        refresh = true;
                    }
                },
                Some(Ok(TermEvent::Resize(..))) => draw = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("read the terminal"),
                None => break,
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
        if refresh {
            src.tick(&mut batch)?;
        }
        if !batch.is_empty() {
            app.push_events(&batch);
            batch.clear();
        }
        if refresh {
            let view = frames.view(src, &app, Instant::now());
            app.update(view);
            draw = true;
        }
        if draw {
            guard.draw(&app).context("draw")?;
        }
    }
    drop(guard);
    Ok(ExitCode::SUCCESS)
}

/// Keys and resizes, read on a thread of their own that blocks in `read()` (crossterm's
/// `EventStream` polls the terminal on every wake-up of the loop: with the collector's 50 Hz
/// ring polls that cost more than the rest of an idle session). The thread ends after the
/// first event once the receiver is gone, or with the process.
fn terminal_events() -> io::Result<mpsc::Receiver<io::Result<TermEvent>>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            loop {
                let ev = crossterm::event::read();
                let failed = ev.is_err();
                if tx.blocking_send(ev).is_err() || failed {
                    break;
                }
            }
        })?;
    Ok(rx)
}
