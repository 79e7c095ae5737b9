//! The ring buffer's reader: a thread of its own that only empties the ring, decodes, and
//! hands batches of events to the collector's user over a bounded channel.
//!
//! Why a thread, and why a real-time one: the ring holds what arrives while nobody reads it,
//! and nothing else. Measured under a loopback flood on 2 vCPUs shared with other sessions'
//! builds (tests/tests/flood.rs, `ReadStats`): a reader on the thread that also ran the rest
//! of the program (there, appending to a growing `Vec`; in portwatch, the model, the recorder
//! and the views) stopped reading for up to 150 ms at a time; and at nice -10 it still waited
//! 0.3–1.0 s runnable on a run queue during a 3 s flood, because with autogroups (the default)
//! nice only weighs a thread against its own session's threads, while every other session
//! gets an equal share. A 4 MiB ring holds ~0.7 s of that flood. Here the reader runs at
//! `SCHED_FIFO` priority 1, which any normal thread yields to at once (run-queue wait: under
//! 10 ms in the same floods), and does nothing else. It cannot hog a CPU: each wake-up is
//! bounded work (the records present), and when the user falls behind the channel fills and
//! the reader waits, so the ring fills and the kernel counts what it drops, per kind.
//! Without `CAP_SYS_NICE` it stays a normal thread, at nice -10 if allowed.
//!
//! Waking: a level-triggered `poll()` on the ring, which reports readable whenever unread data
//! is there, so a record committed without a wake-up (`BPF_RB_NO_WAKEUP`, see
//! `portwatch-ebpf/src/emit.rs`) is never slept through: the next poll sees it, at the latest
//! after [`POLL_INTERVAL`](super::POLL_INTERVAL).

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{POLL_INTERVAL, decode, dedup};
use crate::event::{Event, EventKind};

/// Most events in one batch sent to the user.
const BATCH: usize = 1024;
/// Batches the channel holds before the reader waits for the user (and the ring, then the
/// kernel's per-kind loss counters, take the rest): the userspace backlog budget. Memory is
/// cheaper than loss: a full batch is ~150 KB (1024 events of 144 bytes), so 256 of them are
/// ~38 MB, held only while the model is behind (the channel allocates as it fills, and
/// [`Recycler`] keeps at most [`RECYCLED_BATCHES`]), and they carry the model through a stall
/// of ~1.1 s at the benchmark's minimal churn (~230k events/s on 2 vCPUs), on top of the
/// ~0.2 s the 4 MiB ring holds. It was 128 (~0.55 s).
const QUEUED_BATCHES: usize = 256;
/// Emptied batches kept for reuse (~140 KB each): steady churn needs a handful; a burst that
/// queued more frees the rest.
const RECYCLED_BATCHES: usize = 64;

/// What userspace received, dropped as repeats and failed to decode, per kind, and how the
/// reader fared.
#[derive(Default)]
pub(super) struct Tally {
    pub received: [u64; 3],
    /// Rescued records that repeated a primary's (`dedup`): state, call (always 0), timewait.
    pub duplicates: [u64; 3],
    dedup: dedup::Dedup,
    pub decode_errors: u64,
    pub first_error: Option<String>,
    pub stats: ReadStats,
    last_read: Option<Instant>,
}

/// How the reader fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadStats {
    /// Whether the reader runs at real-time priority (`SCHED_FIFO`).
    pub realtime: bool,
    /// Times `poll()` found the ring readable.
    pub wakeups: u64,
    /// Readable, but nothing could be read: the first record was still being written.
    pub empty_wakeups: u64,
    /// Times `poll()` timed out after [`POLL_INTERVAL`](super::POLL_INTERVAL) with nothing.
    pub polls: u64,
    /// Reads that found records.
    pub batches: u64,
    /// Records read (decoded or not).
    pub records: u64,
    /// Most records found in one read (at most [`BATCH`] per read): with ~100 bytes each,
    /// how full the ring got.
    pub max_batch: u64,
    /// Longest time between the starts of two reads, in microseconds: while it lasts, the
    /// ring fills and nothing empties it.
    pub max_gap_us: u64,
    /// Time spent reading and decoding, in microseconds.
    pub busy_us: u64,
    /// Times the reader waited because the user had [`QUEUED_BATCHES`] batches unread.
    pub user_behind: u64,
    /// Most batches unread at once (of [`QUEUED_BATCHES`]): how much of the backlog budget
    /// a stall of the user used.
    pub max_queued: u64,
    /// The reader thread's time on a CPU, and its time runnable but waiting for one, in
    /// microseconds (`/proc/thread-self/schedstat`, updated a few times a second).
    pub cpu_us: u64,
    pub runqueue_wait_us: u64,
}

/// This thread's (time on a CPU, time waiting on a run queue), in microseconds.
fn schedstat_us() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = s
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0) / 1000);
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

impl Tally {
    /// Reads and decodes up to `max` records, appending events to `out`; returns how many
    /// records it read.
    fn drain(&mut self, ring: &mut RingBuf<MapData>, out: &mut Vec<Event>, max: usize) -> usize {
        let start = Instant::now();
        if let Some(last) = self.last_read {
            let gap = start.duration_since(last).as_micros() as u64;
            self.stats.max_gap_us = self.stats.max_gap_us.max(gap);
        }
        self.last_read = Some(start);
        let mut n = 0;
        while n < max {
            let Some(item) = ring.next() else { break };
            n += 1;
            match decode::decode_flagged(&item) {
                Ok((ev, rescued)) => {
                    let k = kind_index(&ev);
                    if self.dedup.is_repeat(&ev, rescued) {
                        self.duplicates[k] += 1;
                    } else {
                        self.received[k] += 1;
                        out.push(ev);
                    }
                }
                Err(e) => {
                    self.decode_errors += 1;
                    self.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let s = &mut self.stats;
        if n > 0 {
            s.batches += 1;
            s.records += n as u64;
            s.max_batch = s.max_batch.max(n as u64);
        }
        s.busy_us += start.elapsed().as_micros() as u64;
        n
    }
}

fn kind_index(ev: &Event) -> usize {
    match ev.kind {
        EventKind::State(_) => 0,
        EventKind::Call(_) => 1,
        EventKind::TimeWait(_) => 2,
    }
}

/// Emptied batches handed back to the reader, so that a batch's buffer is allocated once
/// and reused: each event is written once, by the decoder, into a buffer that travels to the
/// model and back (no per-batch allocation, no page faults on fresh memory).
#[derive(Clone, Default)]
pub struct Recycler(Arc<Mutex<Vec<Vec<Event>>>>);

impl Recycler {
    /// Hands an emptied (or not) batch back; kept only up to what the channel can hold.
    pub fn give(&self, mut batch: Vec<Event>) {
        batch.clear();
        if batch.capacity() < BATCH {
            return;
        }
        let mut free = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < RECYCLED_BATCHES {
            free.push(batch);
        }
    }

    fn take(&self) -> Vec<Event> {
        let got = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        got.unwrap_or_else(|| Vec::with_capacity(BATCH))
    }
}

/// The running reader thread.
pub(super) struct Reader {
    pub tally: Arc<Mutex<Tally>>,
    pub batches: mpsc::Receiver<Vec<Event>>,
    pub recycler: Recycler,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Reader {
    pub fn spawn(ring: RingBuf<MapData>) -> std::io::Result<Reader> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, batches) = mpsc::channel(QUEUED_BATCHES);
        let recycler = Recycler::default();
        let thread = thread::Builder::new()
            .name("portwatch-ring".into())
            .spawn({
                let (tally, stop, recycler) = (tally.clone(), stop.clone(), recycler.clone());
                move || run(ring, &tally, &stop, &tx, &recycler)
            })?;
        Ok(Reader {
            tally,
            batches,
            recycler,
            stop,
            thread: Some(thread),
        })
    }

    /// Tells the thread to read what is left and end, receives everything it sends until it
    /// has, and appends it to `out`. Call once the programs are detached. Idempotent.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.stop.store(true, Ordering::Release);
        while let Some(t) = self.thread.take() {
            // The thread may be waiting for room in the channel: keep emptying it.
            while let Ok(mut b) = self.batches.try_recv() {
                out.append(&mut b);
                self.recycler.give(b);
            }
            if t.is_finished() {
                if t.join().is_err() {
                    log::error!("the ring buffer reader panicked");
                }
            } else {
                self.thread = Some(t);
                thread::sleep(Duration::from_millis(1));
            }
        }
        while let Ok(mut b) = self.batches.try_recv() {
            out.append(&mut b);
            self.recycler.give(b);
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Closing the channel ends a thread waiting for room in it.
        self.batches.close();
    }
}

fn run(
    mut ring: RingBuf<MapData>,
    tally: &Mutex<Tally>,
    stop: &AtomicBool,
    tx: &mpsc::Sender<Vec<Event>>,
    recycler: &Recycler,
) {
    let realtime = raise_priority();
    tally.lock().unwrap().stats.realtime = realtime;
    let sched0 = schedstat_us();
    let mut sched_at = Instant::now();
    let mut woken = false;
    // The buffer being filled; a full one leaves for the user and a recycled one takes its place.
    let mut batch = recycler.take();
    loop {
        if last_pass_or_due(stop, &mut sched_at) {
            let (cpu, wait) = schedstat_us();
            let mut t = tally.lock().unwrap();
            t.stats.cpu_us = cpu.saturating_sub(sched0.0);
            t.stats.runqueue_wait_us = wait.saturating_sub(sched0.1);
        }
        // Read once more after the stop: the programs are detached by then, so this read
        // finds the last records.
        let last = stop.load(Ordering::Acquire);
        let mut read = 0;
        loop {
            let n = tally.lock().unwrap().drain(&mut ring, &mut batch, BATCH);
            read += n;
            if !batch.is_empty() {
                let batch = std::mem::replace(&mut batch, recycler.take());
                match tx.try_send(batch) {
                    Ok(()) => {
                        let queued = (tx.max_capacity() - tx.capacity()) as u64;
                        let mut t = tally.lock().unwrap();
                        t.stats.max_queued = t.stats.max_queued.max(queued);
                    }
                    Err(mpsc::error::TrySendError::Full(b)) => {
                        tally.lock().unwrap().stats.user_behind += 1;
                        if tx.blocking_send(b).is_err() {
                            return;
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            if n < BATCH {
                break;
            }
        }
        if last {
            return;
        }
        if woken && read == 0 {
            tally.lock().unwrap().stats.empty_wakeups += 1;
            // Readable, but the first record is reserved and not yet committed: a program on
            // another CPU is writing it (well under a microsecond). Do not spin on it.
            thread::sleep(Duration::from_micros(200));
        }
        woken = wait_readable(&ring);
        let mut t = tally.lock().unwrap();
        if woken {
            t.stats.wakeups += 1;
        } else {
            t.stats.polls += 1;
        }
    }
}

/// Whether to read the scheduler's figures now: four times a second, and before the last read.
fn last_pass_or_due(stop: &AtomicBool, at: &mut Instant) -> bool {
    if stop.load(Ordering::Acquire) || at.elapsed() >= Duration::from_millis(250) {
        *at = Instant::now();
        return true;
    }
    false
}

/// Waits up to [`POLL_INTERVAL`] for unread data (level-triggered: returns at once when some
/// is there, woken or not); true if readable.
fn wait_readable(ring: &RingBuf<MapData>) -> bool {
    let mut p = libc::pollfd {
        fd: ring.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe { libc::poll(&mut p, 1, POLL_INTERVAL.as_millis() as i32) > 0 }
}

/// Makes the calling thread `SCHED_FIFO` priority 1 (true), or failing that (no
/// `CAP_SYS_NICE`), nice -10 if allowed (false).
fn raise_priority() -> bool {
    // On Linux scheduling policy and nice value are per thread: the thread id selects this one.
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: a valid sched_param for the duration of the call.
    if unsafe { libc::sched_setscheduler(tid, libc::SCHED_FIFO, &param) } == 0 {
        return true;
    }
    log::debug!(
        "the ring reader stays a normal thread: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: setpriority has no memory preconditions.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10) } != 0 {
        log::debug!(
            "could not raise the ring reader's priority: {}",
            std::io::Error::last_os_error()
        );
    }
    false
}
