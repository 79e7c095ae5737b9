//! A recording played back as a console [`Source`]: wall time × speed maps to recording time;
//! pause, speed and seek move that mapping. Seeking forward plays on; seeking back re-opens
//! the file and replays from the start up to the target (the model applies millions of events
//! per second, so this is quick, and it is exactly what the live model would have shown).

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use super::Source;
use crate::{
    event::Event,
    model::{Model, ModelConfig},
    record::Info,
    session::Replay,
    tui::{self, Action, MAX_SPEED, MIN_SPEED, ReplayInfo, SourceInfo},
};

/// Recording time played per step of a long jump; `out` is trimmed between steps.
const STEP_NS: u64 = 1_000_000_000;

pub struct Player {
    replay: Replay,
    path: PathBuf,
    cfg: ModelConfig,
    /// CLOCK_MONOTONIC of the recording's start (position 0).
    start_ns: u64,
    /// Time of the last event, once the background scan has read the whole file.
    end_ns: Option<u64>,
    scan: Option<thread::JoinHandle<Option<u64>>>,
    speed: f64,
    paused: bool,
    /// Recording time at `anchor_wall`.
    anchor_ns: u64,
    anchor_wall: Instant,
    /// Recording time the model has been played to.
    now_ns: u64,
    /// Events kept in `out` during a long jump (the App's ring keeps no more anyway).
    keep: usize,
}

impl Player {
    /// Opens a recording to play from its start at `speed` (1.0: real time). Its length is
    /// read on a background thread and shows once known.
    pub fn open(path: &Path, speed: f64, now: Instant) -> anyhow::Result<Player> {
        let cfg = ModelConfig::default();
        let replay = Replay::open(path, cfg.clone())?;
        let start_ns = replay.host.start_mono_ns;
        let scan_path = path.to_path_buf();
        let scan = thread::Builder::new()
            .name("replay-scan".into())
            .spawn(move || Info::open(&scan_path).ok().and_then(|i| i.last_ts_ns))?;
        Ok(Player {
            replay,
            path: path.to_path_buf(),
            cfg,
            start_ns,
            end_ns: None,
            scan: Some(scan),
            speed: clamp_speed(speed),
            paused: false,
            anchor_ns: start_ns,
            anchor_wall: now,
            now_ns: start_ns,
            keep: tui::Options::default().event_capacity,
        })
    }

    /// Waits for the length scan (tests; the console just shows it when it comes).
    pub fn wait_for_length(&mut self) {
        if let Some(h) = self.scan.take() {
            self.end_ns = h.join().ok().flatten();
        }
    }

    /// The recording time the clock shows at `now`.
    fn clock(&self, now: Instant) -> u64 {
        if self.paused || self.replay.ended() {
            return self.anchor_ns;
        }
        let played = now
            .saturating_duration_since(self.anchor_wall)
            .as_secs_f64()
            * self.speed;
        self.anchor_ns
            .saturating_add(Duration::from_secs_f64(played).as_nanos() as u64)
    }

    fn reanchor(&mut self, at_ns: u64, now: Instant) {
        self.anchor_ns = at_ns;
        self.anchor_wall = now;
    }

    /// Plays to where the clock is at `now`.
    pub fn tick_at(&mut self, now: Instant, out: &mut Vec<Event>) -> anyhow::Result<()> {
        if let Some(h) = &self.scan
            && h.is_finished()
        {
            self.wait_for_length();
        }
        let target = self.clock(now);
        self.play_to(target, out)?;
        if self.replay.ended() && self.anchor_ns != self.now_ns {
            // Stop the clock at the end, so that a seek back starts from there.
            self.reanchor(self.now_ns, now);
        }
        Ok(())
    }

    /// Applies a replay key at `now`.
    pub fn control_at(
        &mut self,
        action: Action,
        now: Instant,
        out: &mut Vec<Event>,
    ) -> anyhow::Result<()> {
        let at = self.clock(now);
        match action {
            Action::TogglePause => {
                self.reanchor(at, now);
                self.paused = !self.paused;
            }
            Action::Speed(s) => {
                self.reanchor(at, now);
                self.speed = clamp_speed(s);
            }
            Action::Seek(secs) => {
                let delta = secs.unsigned_abs().saturating_mul(1_000_000_000);
                let mut to = if secs < 0 {
                    at.saturating_sub(delta).max(self.start_ns)
                } else {
                    at.saturating_add(delta)
                };
                if let Some(end) = self.end_ns {
                    to = to.min(end.max(self.start_ns));
                }
                self.reanchor(to, now);
                self.play_to(to, out)?;
                if self.replay.ended() {
                    self.reanchor(self.now_ns, now);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Plays the model to `target`: on from here, or again from the start when it lies
    /// behind.
    fn play_to(&mut self, target: u64, out: &mut Vec<Event>) -> anyhow::Result<()> {
        if target < self.now_ns {
            self.replay = Replay::open(&self.path, self.cfg.clone())?;
            self.now_ns = self.start_ns;
        }
        while self.now_ns < target && !self.replay.ended() {
            let step = target.min(self.now_ns.saturating_add(STEP_NS));
            let more = self.replay.advance_to(step, out)?;
            self.now_ns = if more {
                step
            } else {
                self.replay.position_ns.min(step)
            };
            if out.len() > 2 * self.keep {
                out.drain(..out.len() - self.keep);
            }
        }
        Ok(())
    }

    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    pub fn replay_info(&self) -> ReplayInfo {
        let secs = |ns: u64| ns.saturating_sub(self.start_ns) as f64 / 1e9;
        let end = match self.end_ns {
            Some(e) => Some(e),
            None if self.replay.ended() => Some(self.replay.position_ns),
            None => None,
        };
        ReplayInfo {
            file: self.path.display().to_string(),
            position_s: secs(self.now_ns),
            duration_s: end.map(secs),
            speed: self.speed,
            paused: self.paused,
            ended: self.replay.ended(),
        }
    }
}

fn clamp_speed(s: f64) -> f64 {
    if s.is_finite() {
        s.clamp(MIN_SPEED, MAX_SPEED)
    } else {
        1.0
    }
}

impl Source for Player {
    async fn next_events(&mut self, _out: &mut Vec<Event>) -> anyhow::Result<()> {
        // A recording moves on the frame clock only.
        std::future::pending().await
    }

    fn tick(&mut self, out: &mut Vec<Event>) -> anyhow::Result<()> {
        self.tick_at(Instant::now(), out)
    }

    fn model(&self) -> &Model {
        &self.replay.model
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn info(&self) -> SourceInfo {
        SourceInfo::Replay(self.replay_info())
    }

    fn control(&mut self, action: Action, out: &mut Vec<Event>) -> anyhow::Result<()> {
        self.control_at(action, Instant::now(), out)
    }
}
