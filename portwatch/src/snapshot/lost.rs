//! Lost events, as the snapshot (and so every view) states them: plain named counters a
//! machine can read, filled from the collector's [`Counters`] (live) or from a recording's
//! saved counters.

use serde::Serialize;

use crate::collect::Counters;

/// Events that should have reached the model and did not. `total` is the sum of every other
/// field but `timers_skipped_upper_bound`; any non-zero `total` means counts may be low.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LostEvents {
    pub total: u64,
    /// State transitions the kernel could not emit (ring buffer full, read failed).
    pub state: u64,
    /// connect()/bind() records not emitted.
    pub call: u64,
    /// TIME_WAIT timer records not emitted.
    pub timewait: u64,
    /// Records received that did not decode.
    pub decode_errors: u64,
    /// Transitions never traced: the program was already running on that CPU.
    pub skipped_state: u64,
    /// connect()/bind() entries or exits never traced (possibly lost failures).
    pub skipped_calls: u64,
    /// connect()/bind() calls whose arguments could not be kept until they returned.
    pub untracked_calls: u64,
    /// Timer events never traced: an upper bound on lost TIME_WAIT events, mostly about
    /// unrelated timers (not in `total`).
    pub timers_skipped_upper_bound: u64,
}

impl From<&Counters> for LostEvents {
    fn from(c: &Counters) -> LostEvents {
        LostEvents {
            total: c.lost_total(),
            state: c.state.lost,
            call: c.call.lost,
            timewait: c.timewait.lost,
            decode_errors: c.decode_errors,
            skipped_state: c.skipped.state,
            skipped_calls: c.skipped.calls,
            untracked_calls: c.untracked_calls,
            timers_skipped_upper_bound: c.skipped.timers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{KindCounters, progs::Skipped};

    #[test]
    fn total_matches_the_collector() {
        let c = Counters {
            state: KindCounters {
                seen: 10,
                lost: 2,
                received: 8,
                duplicates: 0,
            },
            call: KindCounters {
                seen: 5,
                lost: 1,
                received: 4,
                duplicates: 0,
            },
            decode_errors: 3,
            skipped: Skipped {
                state: 4,
                calls: 5,
                timers: 99,
            },
            untracked_calls: 6,
            ..Counters::default()
        };
        let l = LostEvents::from(&c);
        assert_eq!(l.total, c.lost_total());
        assert_eq!(
            l.total,
            l.state
                + l.call
                + l.timewait
                + l.decode_errors
                + l.skipped_state
                + l.skipped_calls
                + l.untracked_calls
        );
        assert_eq!(l.timers_skipped_upper_bound, 99);
    }
}
