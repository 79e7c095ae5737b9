//! `portwatch replay FILE`: the TUI on a recording, with pause, speed and seek.

use std::{path::PathBuf, process::ExitCode, time::Instant};

use crate::{console::Player, session};

use super::tui::{FrameArgs, need_terminal, run_console};

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Keys: p pause/resume, + / - faster/slower (×2 steps, 1/8 to 64), [ ] back/forward 10 s,
{ } back/forward 60 s; ? lists every key. Seeking back replays the file from its start up to
the new position.")]
pub struct Args {
    /// The recording (from `portwatch record`).
    pub file: PathBuf,
    /// Playback speed (1 = real time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    #[command(flatten)]
    pub frame: FrameArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut player = Player::open(&args.file, args.speed, Instant::now())?;
    need_terminal()?;
    session::block_on(run_console(&mut player, args.frame.fps))
}
