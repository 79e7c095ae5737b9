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

impl LostEvents {
    /// What the losses mean, in words, the same in every view: nothing, or "degraded", what
    /// was lost by kind, and what repairs it. Socket and port counts come back at the next
    /// reconciliation (the model is corrected from the kernel's socket table); failed
    /// connect()/bind() calls that were lost do not.
    pub fn verdict(&self) -> String {
        use crate::explain::words::{count, plural};
        if self.total == 0 {
            return "No events were lost.".to_string();
        }
        let parts: Vec<String> = [
            (self.state, "state transitions (ring full)"),
            (self.timewait, "TIME_WAIT records (ring full)"),
            (self.call, "connect()/bind() records (ring full)"),
            (self.decode_errors, "undecodable records"),
            (self.skipped_state, "state program runs skipped"),
            (self.skipped_calls, "connect()/bind() program runs skipped"),
            (self.untracked_calls, "connect()/bind() calls untracked"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{} {what}", count(n)))
        .collect();
        let mut out = format!(
            "Degraded: {} lost ({}): counts may be low.",
            plural(self.total, "event", "events"),
            parts.join(", ")
        );
        if self.state + self.timewait + self.decode_errors + self.skipped_state > 0 {
            out.push_str(
                " Socket and port counts are repaired at the next reconciliation with the \
                 kernel's socket table (every 10 s by default).",
            );
        }
        if self.call + self.skipped_calls + self.untracked_calls > 0 {
            out.push_str(" Lost connect()/bind() failures are not: failure counts may be low.");
        }
        out
    }
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
    fn the_verdict_says_degraded_what_was_lost_and_what_repairs_it() {
        assert_eq!(LostEvents::default().verdict(), "No events were lost.");
        let ring = LostEvents {
            total: 1_200,
            state: 1_195,
            skipped_state: 5,
            ..LostEvents::default()
        };
        let v = ring.verdict();
        assert!(
            v.starts_with(
                "Degraded: 1,200 events lost (1,195 state transitions (ring full), 5 state \
                 program runs skipped): counts may be low."
            ),
            "{v}"
        );
        assert!(v.contains("repaired at the next reconciliation"), "{v}");
        assert!(!v.contains("failure counts"), "{v}");
        let calls = LostEvents {
            total: 1,
            call: 1,
            ..LostEvents::default()
        };
        let v = calls.verdict();
        assert!(
            v.starts_with("Degraded: 1 event lost (1 connect()/bind() records"),
            "{v}"
        );
        assert!(v.contains("failure counts may be low"), "{v}");
        assert!(!v.contains("reconciliation"), "{v}");
    }

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
