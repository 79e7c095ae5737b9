//! Per-second counters and history for pools.
//!
//! Rates are counted in 1-second buckets (by event time, CLOCK_MONOTONIC) and averaged over
//! the last [`RATE_WINDOW_S`] *complete* seconds before `now` — or fewer when the model has
//! not been running that long (the window actually used is reported). Ten seconds smooths
//! bursty clients while still reacting within a few 4 Hz refreshes.

use serde::Serialize;

/// Seconds averaged for rates.
pub const RATE_WINDOW_S: u64 = 10;
/// Seconds of per-pool history kept for sparklines.
pub const HISTORY_S: usize = 60;

const SLOTS: usize = 16;
const _: () = assert!(SLOTS as u64 > RATE_WINDOW_S);

#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Slot {
    /// `connect()` attempts (CLOSE → SYN_SENT).
    pub opened: u32,
    /// Ports given back (connection gone, TIME_WAIT ended).
    pub released: u32,
    /// Port searches that found nothing (SYN_SENT → CLOSE with source port 0).
    pub failed: u32,
    /// Ports `connect()`'s own search chose (the socket had no port before), by parity:
    /// `[even, odd]` (docs/early-warning.md).
    pub chosen: [u32; 2],
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Rates {
    head: u64,
    slots: [Slot; SLOTS],
}

/// Averages over the rate window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RateStats {
    /// Connection attempts per second.
    pub attempts_per_s: f64,
    /// Ports taken per second (attempts that got a port).
    pub new_per_s: f64,
    /// Ports released per second.
    pub released_per_s: f64,
    /// Port searches that failed per second (EADDRNOTAVAIL).
    pub failed_per_s: f64,
    /// Seconds averaged (≤ [`RATE_WINDOW_S`]; 0 before the first full second).
    pub window_s: u64,
}

impl Rates {
    pub fn slot(&mut self, sec: u64) -> Option<&mut Slot> {
        if sec > self.head {
            let gap = (sec - self.head).min(SLOTS as u64);
            for k in 0..gap {
                self.slots[((sec - k) % SLOTS as u64) as usize] = Slot::default();
            }
            self.head = sec;
        }
        (self.head - sec < SLOTS as u64).then(|| &mut self.slots[(sec % SLOTS as u64) as usize])
    }

    /// Averages over the complete seconds in `[now_sec − window, now_sec)` that are not before
    /// `start_sec` (the first second the model saw).
    pub fn stats(&self, now_sec: u64, start_sec: u64) -> RateStats {
        let (sum, window) = self.window_sum(now_sec, start_sec);
        if window == 0 {
            return RateStats::default();
        }
        let w = window as f64;
        RateStats {
            attempts_per_s: f64::from(sum.opened) / w,
            new_per_s: f64::from(sum.opened.saturating_sub(sum.failed)) / w,
            released_per_s: f64::from(sum.released) / w,
            failed_per_s: f64::from(sum.failed) / w,
            window_s: window,
        }
    }

    /// Ports chosen by `connect()`'s search, by parity (`[even, odd]`), over the latest
    /// complete seconds: back from `now_sec` until at least `enough` were chosen or the rate
    /// window is covered (so that the share follows the newest connections, not a 10 s
    /// average). Also the seconds covered.
    pub fn chosen_recent(&self, now_sec: u64, start_sec: u64, enough: u32) -> ([u32; 2], u64) {
        let from = now_sec.saturating_sub(RATE_WINDOW_S).max(start_sec);
        let mut sum = [0u32; 2];
        let mut covered = 0;
        for sec in (from..now_sec).rev() {
            covered += 1;
            if sec <= self.head && self.head - sec < SLOTS as u64 {
                let c = self.slots[(sec % SLOTS as u64) as usize].chosen;
                sum[0] += c[0];
                sum[1] += c[1];
            }
            if sum[0] + sum[1] >= enough {
                break;
            }
        }
        (sum, covered)
    }

    /// The sum of the complete seconds in `[now_sec − window, now_sec)` not before
    /// `start_sec`, and how many seconds that is.
    fn window_sum(&self, now_sec: u64, start_sec: u64) -> (Slot, u64) {
        let from = now_sec.saturating_sub(RATE_WINDOW_S).max(start_sec);
        let window = now_sec.saturating_sub(from);
        let mut sum = Slot::default();
        for sec in from..now_sec {
            if sec > self.head || self.head - sec >= SLOTS as u64 {
                continue;
            }
            let s = &self.slots[(sec % SLOTS as u64) as usize];
            sum.opened += s.opened;
            sum.released += s.released;
            sum.failed += s.failed;
        }
        (sum, window)
    }
}

/// One value per second, oldest first, for the last [`HISTORY_S`] seconds.
#[derive(Clone, Debug)]
pub(crate) struct History {
    /// The second whose value is still being formed.
    sec: u64,
    len: usize,
    pos: usize,
    buf: [u32; HISTORY_S],
}

impl History {
    pub fn new(sec: u64) -> History {
        History {
            sec,
            len: 0,
            pos: 0,
            buf: [0; HISTORY_S],
        }
    }

    /// Whether [`History::advance`] to `sec` would move it (so that callers compute the
    /// current value only then: once a second, not on every change).
    #[inline]
    pub fn behind(&self, sec: u64) -> bool {
        sec > self.sec
    }

    /// Moves to second `sec`: every second passed ends with `current` (nothing changed since,
    /// because this runs before any change at `sec`).
    pub fn advance(&mut self, sec: u64, current: u32) {
        if sec <= self.sec {
            return;
        }
        let n = ((sec - self.sec) as usize).min(HISTORY_S);
        for _ in 0..n {
            self.buf[self.pos] = current;
            self.pos = (self.pos + 1) % HISTORY_S;
            self.len = (self.len + 1).min(HISTORY_S);
        }
        self.sec = sec;
    }

    pub fn values(&self) -> Vec<u32> {
        let start = (self.pos + HISTORY_S - self.len) % HISTORY_S;
        (0..self.len)
            .map(|k| self.buf[(start + k) % HISTORY_S])
            .collect()
    }
}
