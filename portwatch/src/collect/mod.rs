//! Kernel → typed events: load the embedded eBPF object with this kernel's layout, attach
//! its programs, read the ring buffer on a thread of its own (`reader`), decode, and account
//! for every record.
//!
//! The accounting is exact: each program counts every record it tries to emit (`seen`) and
//! every one it could not (`lost`: ring full, or a kernel read failed); the kernel counts
//! program runs it skipped (`recursion_misses`); userspace counts what it received and what it
//! could not decode, and drops (and counts) the rare record a rescuer repeated (`dedup`).
//! After [`Collector::stop`] and a final drain, `received + lost + duplicates == seen` per
//! kind.

pub mod bare;
pub mod btf;
pub mod decode;
pub mod dedup;
pub mod latency;
pub mod layout;
pub mod progs;
mod reader;
pub mod tracefs;

use std::{io, sync::MutexGuard, time::Instant};

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, PerCpuHashMap, RingBuf},
};
use portwatch_common::{maps, stat};

pub use self::progs::{Attach, Hook, Skipped};
pub use self::reader::{ReadStats, Recycler};
use self::reader::{Reader, Tally};
use crate::event::Event;

/// The eBPF object, built by `cargo xtask build-ebpf` and checked fresh by build.rs.
static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/portwatch-ebpf.o"));

/// How often the reader looks at the ring when nothing woke it: the kernel only wakes it
/// once a CPU committed [`wakeup_bytes`] since its last wake-up, so this bounds the latency of
/// a quiet trickle of events.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// Bytes one CPU commits between two wake-ups of the reader (`portwatch-ebpf/src/emit.rs`):
/// a quarter of the ring shared by the CPUs (ring/8 on 2 CPUs), so that unread data at a
/// wake-up stays under a quarter of the ring even if every CPU was just short of it. It was
/// min(ring/4, 64 KiB) of unread data, asked of the ring on every record.
pub fn wakeup_bytes(ring_bytes: u32) -> u64 {
    let cpus = aya::util::nr_cpus().map_or(1, |n| n.max(1)) as u64;
    (ring_bytes as u64 / 4 / cpus).max(1)
}

/// Default ring buffer: 4 MiB carried ~150k events/s of loopback churn with no loss here.
pub const DEFAULT_RING_BYTES: u32 = 4 << 20;

#[derive(Debug, Clone)]
pub struct Options {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Track TIME_WAIT through the timewait timers (every timer in the system passes through
    /// a filter; off saves that cost and loses live TIME_WAIT).
    pub timewait: bool,
    /// Trace connect()/bind() failures and binds.
    pub calls: bool,
    /// Only this network namespace (inode number), filtered in the kernel before counting.
    pub netns: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ring_bytes: DEFAULT_RING_BYTES,
            timewait: true,
            calls: true,
            netns: None,
        }
    }
}

/// Validates a ring buffer size: the kernel wants a power-of-two multiple of the page size.
pub fn check_ring_bytes(bytes: u32) -> Result<(), String> {
    let page = page_size();
    if bytes < page || !bytes.is_power_of_two() {
        return Err(format!(
            "{bytes} is not a power of two of at least the page size ({page})"
        ));
    }
    Ok(())
}

pub fn page_size() -> u32 {
    // SAFETY: sysconf has no memory-safety preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u32 }
}

/// Counters of one record kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KindCounters {
    /// Records the programs tried to emit.
    pub seen: u64,
    /// Records the programs could not emit (ring full, kernel read failed).
    pub lost: u64,
    /// Records userspace received and decoded.
    pub received: u64,
    /// Records received twice for one kernel event (a rescuer repeated the primary's record:
    /// `dedup`), dropped: in `seen`, not in `received`.
    pub duplicates: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Counters {
    pub state: KindCounters,
    pub call: KindCounters,
    pub timewait: KindCounters,
    /// Records that arrived but did not decode (a bug: reported, never silent).
    pub decode_errors: u64,
    /// Program runs the kernel skipped because the program was already running on that CPU
    /// (`recursion_misses`). Their events never existed, so they are lost too.
    pub skipped: progs::Skipped,
    /// connect()/bind() calls whose arguments could not be remembered until they returned.
    pub untracked_calls: u64,
    /// Kernel memory reads that failed.
    pub read_failed: u64,
    /// Nested runs the rescuer programs did instead of the skipped primaries (not lost).
    pub rescued: u64,
}

impl Counters {
    pub fn kinds(&self) -> [(&'static str, &KindCounters); 3] {
        [
            ("state", &self.state),
            ("call", &self.call),
            ("timewait", &self.timewait),
        ]
    }

    /// Every event that should have reached userspace and did not.
    pub fn lost_total(&self) -> u64 {
        self.state.lost
            + self.call.lost
            + self.timewait.lost
            + self.decode_errors
            + self.skipped.state
            + self.skipped.calls
            + self.untracked_calls
    }

    pub fn received_total(&self) -> u64 {
        self.state.received + self.call.received + self.timewait.received
    }
}

pub struct Collector {
    ebpf: Ebpf,
    reader: Reader,
    stats: PerCpuArray<MapData, u64>,
    /// `connect()` latency per destination; `None` if the object has no such map.
    latency: Option<latency::LatencyMap>,
    attached: Vec<Attach>,
    /// Skipped runs read just before the programs were unloaded.
    final_skipped: Option<progs::Skipped>,
}

impl Collector {
    /// Loads and attaches everything this kernel supports, and starts the ring's reader
    /// thread. Fails only when the essential program (TCP state transitions) cannot run.
    pub fn start(opts: &Options) -> anyhow::Result<Collector> {
        check_ring_bytes(opts.ring_bytes).map_err(|e| anyhow::anyhow!("ring buffer size: {e}"))?;
        let layout = layout::Layout::from_kernel()
            .context("read the kernel's struct layout from /sys/kernel/btf/vmlinux")?;
        // Classic tracepoints resolve through tracefs, and aya caches the lookup for the whole
        // process: mount it before the first attach.
        let tracefs = if opts.calls {
            Some(tracefs::ensure_mounted()?.0)
        } else {
            None
        };
        let btf = aya::Btf::from_sys_fs().context("load the kernel's BTF")?;

        let mut loader = EbpfLoader::new();
        loader.map_max_entries(maps::EVENTS, opts.ring_bytes);
        for (name, value) in &layout.globals {
            loader.override_global(name, value, true);
        }
        let filter = opts.netns.unwrap_or(0) as u64;
        loader.override_global(portwatch_common::globals::FILTER_NETNS, &filter, true);
        let wakeup = wakeup_bytes(opts.ring_bytes);
        loader.override_global(portwatch_common::globals::WAKEUP_BYTES, &wakeup, true);
        let mut ebpf = loader.load(EBPF_OBJECT).context("load the eBPF object")?;

        let attached = progs::attach_all(&mut ebpf, &btf, &layout, opts, tracefs.as_deref());
        if let Some(failed) = attached
            .iter()
            .find(|a| a.hook.essential() && a.result.is_err())
        {
            anyhow::bail!(
                "attach {}: {}",
                failed.hook.attach_point(),
                failed.result.as_ref().unwrap_err()
            );
        }

        let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).context("map EVENTS")?)
            .context("open ring buffer EVENTS")?;
        let reader = Reader::spawn(ring).context("start the ring buffer's reader thread")?;
        let stats = PerCpuArray::try_from(ebpf.take_map(maps::STATS).context("map STATS")?)
            .context("open STATS")?;
        let latency = ebpf
            .take_map(maps::CONNECT_LATENCY)
            .map(PerCpuHashMap::try_from)
            .transpose()
            .context("open CONNECT_LATENCY")?
            .map(latency::LatencyMap::new);
        Ok(Collector {
            ebpf,
            reader,
            stats,
            latency,
            attached,
            final_skipped: None,
        })
    }

    /// The `connect()` latency aggregate now, if there is anything to say
    /// ([`latency::LatencyMap::read`]).
    pub fn latency(&mut self, at_ns: u64) -> Option<crate::model::LatencyReading> {
        self.latency.as_mut()?.read(at_ns)
    }

    /// What was attached, what degraded and why.
    pub fn attached(&self) -> &[Attach] {
        &self.attached
    }

    /// Waits until the reader thread has read something (it reads as soon as the kernel wakes
    /// it, and every [`POLL_INTERVAL`] when nothing did), then appends everything it has
    /// read so far to `out`. Cancel-safe.
    pub async fn next_batch(&mut self, out: &mut Vec<Event>) -> io::Result<()> {
        let mut b = self.recv_batch().await?;
        out.append(&mut b);
        self.reader.recycler.give(b);
        while let Ok(mut b) = self.reader.batches.try_recv() {
            out.append(&mut b);
            self.reader.recycler.give(b);
        }
        Ok(())
    }

    /// Waits for the reader's next batch and hands it over as it is (no copy): give it back
    /// through [`Collector::recycler`] once done with it. Cancel-safe.
    pub async fn recv_batch(&mut self) -> io::Result<Vec<Event>> {
        self.reader
            .batches
            .recv()
            .await
            .ok_or_else(|| io::Error::other("the ring buffer's reader thread ended"))
    }

    /// Where emptied batches from [`Collector::recv_batch`] go back to the reader.
    pub fn recycler(&self) -> Recycler {
        self.reader.recycler.clone()
    }

    /// Appends what the reader has read so far, without waiting; once [`Collector::stop`]
    /// ran, everything left in the ring (the reader reads it, then ends).
    pub fn drain(&mut self, out: &mut Vec<Event>) -> usize {
        let before = out.len();
        if self.final_skipped.is_some() {
            self.reader.finish(out);
        } else {
            while let Ok(mut b) = self.reader.batches.try_recv() {
                out.append(&mut b);
                self.reader.recycler.give(b);
            }
        }
        out.len() - before
    }

    /// How the reader fared so far.
    pub fn read_stats(&self) -> ReadStats {
        self.tally().stats
    }

    /// The first record that failed to decode, if any.
    pub fn first_decode_error(&self) -> Option<String> {
        self.tally().first_error.clone()
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.reader.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Detaches every program, so that the counters stop moving; drain afterwards to receive
    /// the last records. Idempotent.
    pub fn stop(&mut self) {
        if self.final_skipped.is_some() {
            return;
        }
        self.final_skipped = Some(self.skipped_now());
        progs::unload_all(&mut self.ebpf, &self.attached);
    }

    /// The kernel counters, summed over CPUs.
    fn stat_sums(&self) -> [u64; stat::COUNT as usize] {
        let mut sums = [0u64; stat::COUNT as usize];
        for (slot, sum) in sums.iter_mut().enumerate() {
            if let Ok(values) = self.stats.get(&(slot as u32), 0) {
                *sum = values.iter().sum();
            }
        }
        sums
    }

    /// Skipped runs less rescued ones, read while the programs run. Every nested run bumps
    /// a primary's misses, then its rescuer's count: reading the misses while such a pair is
    /// in flight would count a rescued run as lost (under a flood, in any namespace, dozens per
    /// second). So read rescues, misses, rescues again, until no rescue happened in between.
    fn skipped_now(&self) -> progs::Skipped {
        let mut before = self.rescued();
        for _ in 0..32 {
            let s = progs::skipped(&self.ebpf, &self.attached, before);
            let after = self.rescued();
            if after == before {
                return s;
            }
            before = after;
        }
        progs::skipped(&self.ebpf, &self.attached, before)
    }

    /// Runs rescued from nesting: (state, timers). Rescues whose record repeated the
    /// primary's were not rescues (no run was skipped): they are left out.
    fn rescued(&self) -> (u64, u64) {
        self.rescued_in(&self.stat_sums())
    }

    /// [`Collector::rescued`] from counters already read.
    fn rescued_in(&self, sums: &[u64; stat::COUNT as usize]) -> (u64, u64) {
        let d = self.tally().duplicates;
        (
            sums[stat::STATE_RESCUED as usize].saturating_sub(d[0]),
            sums[stat::TIMER_RESCUED as usize].saturating_sub(d[2]),
        )
    }

    pub fn counters(&self) -> Counters {
        let sums = self.stat_sums();
        let (received, duplicates, decode_errors) = {
            let t = self.tally();
            (t.received, t.duplicates, t.decode_errors)
        };
        let k = |seen: u32, lost: u32, idx: usize| KindCounters {
            seen: sums[seen as usize],
            lost: sums[lost as usize],
            received: received[idx],
            duplicates: duplicates[idx],
        };
        Counters {
            state: k(stat::STATE_SEEN, stat::STATE_LOST, 0),
            call: k(stat::CALL_SEEN, stat::CALL_LOST, 1),
            timewait: k(stat::TW_SEEN, stat::TW_LOST, 2),
            decode_errors,
            skipped: self.final_skipped.unwrap_or_else(|| self.skipped_now()),
            rescued: {
                let (state, timers) = self.rescued_in(&sums);
                state + timers
            },
            untracked_calls: sums[stat::CALL_UNTRACKED as usize],
            read_failed: sums[stat::READ_FAILED as usize],
        }
    }
}

/// Wall-clock nanoseconds minus CLOCK_MONOTONIC nanoseconds, to turn event timestamps into
/// dates.
pub fn monotonic_to_realtime_offset_ns() -> i128 {
    fn now(clock: libc::clockid_t) -> i128 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
    }
    now(libc::CLOCK_REALTIME) - now(libc::CLOCK_MONOTONIC)
}

/// CLOCK_MONOTONIC now, in the events' time base.
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Milliseconds since `t`, for attach timings.
pub(crate) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
