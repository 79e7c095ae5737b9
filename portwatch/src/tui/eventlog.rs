//! The events tab's bounded ring: the last N transitions, an incremental filter (each event is
//! formatted once, when it arrives, and only while a filter is set), and a scroll position that
//! stays on the same events while new ones arrive.

use std::collections::VecDeque;

use super::widgets::state_short;
use crate::event::{CallKind, Event, EventKind, TcpState, TwOp};

/// Events kept for the events tab.
pub const DEFAULT_CAPACITY: usize = 5000;

/// An event as the events tab shows it, in columns.
pub struct EventText {
    pub time: String,
    pub pid: String,
    pub comm: String,
    pub kind: &'static str,
    pub detail: String,
    /// A failed call.
    pub failure: bool,
    /// Kernel state names, so that a filter on `TIME_WAIT` finds `time-wait`.
    states: [&'static str; 2],
}

impl EventText {
    pub fn of(e: &Event) -> EventText {
        let mut states = ["", ""];
        let (kind, detail, failure) = match &e.kind {
            EventKind::State(s) => {
                states = [s.old.name(), s.new.name()];
                (
                    "state",
                    format!(
                        "{}→{} {}→{}",
                        state_short(s.old),
                        state_short(s.new),
                        s.local,
                        s.remote
                    ),
                    false,
                )
            }
            EventKind::Call(c) => {
                let kind = match c.call {
                    CallKind::Connect => "connect",
                    CallKind::Bind => "bind",
                };
                let detail = match (c.error, c.bound_port) {
                    (Some(err), _) => format!("{err} {}", c.addr),
                    (None, Some(p)) if c.call == CallKind::Connect => {
                        format!("in progress {} port {p}", c.addr)
                    }
                    (None, Some(p)) => format!("ok {} port {p}", c.addr),
                    (None, None) => format!("ok {}", c.addr),
                };
                (kind, detail, c.error.is_some())
            }
            EventKind::TimeWait(t) => {
                let op = match t.op {
                    TwOp::Start => "start",
                    TwOp::Cancel => "cancel",
                    TwOp::Expire => "expire",
                };
                states = [t.substate.name(), ""];
                let sub = match t.substate {
                    TcpState::TimeWait => "",
                    s => state_short(s),
                };
                let sub = if sub.is_empty() {
                    String::new()
                } else {
                    format!(" ({sub})")
                };
                ("tw", format!("{op}{sub} {}→{}", t.local, t.remote), false)
            }
        };
        EventText {
            time: super::widgets::mono(e.ts_ns),
            pid: e.task.pid.to_string(),
            comm: e.task.comm.to_string(),
            kind,
            detail,
            failure,
            states,
        }
    }

    fn matches(&self, needle: &str) -> bool {
        [
            self.pid.as_str(),
            &self.comm,
            self.kind,
            &self.detail,
            &self.time,
            self.states[0],
            self.states[1],
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(needle))
    }
}

pub struct EventLog {
    ring: VecDeque<Event>,
    /// Sequence number of `ring[0]`.
    first_seq: u64,
    cap: usize,
    /// Lower-cased filter; empty = everything.
    filter: String,
    /// Sequence numbers of the events that match the filter (only kept while one is set).
    matches: VecDeque<u64>,
    /// Lines between the newest shown line and the newest event (0 = following).
    pub(super) from_bottom: usize,
    /// Events that arrived while the display was paused.
    held: VecDeque<Event>,
    pub(super) held_dropped: u64,
    pub(super) paused: bool,
}

impl EventLog {
    pub fn new(cap: usize) -> EventLog {
        let cap = cap.max(1);
        EventLog {
            ring: VecDeque::with_capacity(cap.min(65_536)),
            first_seq: 0,
            cap,
            filter: String::new(),
            matches: VecDeque::new(),
            from_bottom: 0,
            held: VecDeque::new(),
            held_dropped: 0,
            paused: false,
        }
    }

    /// Appends events; only the last `cap` of a batch are looked at.
    pub fn push(&mut self, events: &[Event]) {
        let tail = &events[events.len().saturating_sub(self.cap)..];
        if self.paused {
            for e in tail {
                if self.held.len() == self.cap {
                    self.held.pop_front();
                    self.held_dropped += 1;
                }
                self.held.push_back(*e);
            }
            return;
        }
        let mut appended = 0;
        for e in tail {
            if self.ring.len() == self.cap {
                self.ring.pop_front();
                self.first_seq += 1;
            }
            let seq = self.first_seq + self.ring.len() as u64;
            self.ring.push_back(*e);
            if self.filter.is_empty() {
                appended += 1;
            } else if EventText::of(e).matches(&self.filter) {
                self.matches.push_back(seq);
                appended += 1;
            }
        }
        while self.matches.front().is_some_and(|&s| s < self.first_seq) {
            self.matches.pop_front();
        }
        if self.from_bottom > 0 {
            // Keep the same lines in view: they moved `appended` lines up.
            self.from_bottom = (self.from_bottom + appended).min(self.len().saturating_sub(1));
        }
    }

    /// Stops or resumes taking events in (display pause in live mode).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if !paused {
            let held: Vec<Event> = self.held.drain(..).collect();
            self.push(&held);
        }
    }

    pub fn set_filter(&mut self, filter: &str) {
        let f = filter.to_lowercase();
        if f == self.filter {
            return;
        }
        self.filter = f;
        self.matches.clear();
        self.from_bottom = 0;
        if !self.filter.is_empty() {
            for (i, e) in self.ring.iter().enumerate() {
                if EventText::of(e).matches(&self.filter) {
                    self.matches.push_back(self.first_seq + i as u64);
                }
            }
        }
    }

    /// Lines shown (matching the filter).
    pub fn len(&self) -> usize {
        if self.filter.is_empty() {
            self.ring.len()
        } else {
            self.matches.len()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events received in total (for "N of M").
    pub fn total(&self) -> usize {
        self.ring.len()
    }

    /// Line `i` (0 = oldest shown).
    pub fn get(&self, i: usize) -> Option<&Event> {
        if self.filter.is_empty() {
            self.ring.get(i)
        } else {
            let seq = *self.matches.get(i)?;
            self.ring.get((seq - self.first_seq) as usize)
        }
    }

    pub fn scroll(&mut self, delta: isize) {
        let max = self.len().saturating_sub(1);
        self.from_bottom = self.from_bottom.saturating_add_signed(delta).min(max);
    }

    pub fn scroll_to_top(&mut self) {
        self.from_bottom = self.len().saturating_sub(1);
    }

    pub fn follow(&mut self) {
        self.from_bottom = 0;
    }

    /// The lines to show in `height` rows: (index of the first, how many).
    pub fn window(&self, height: usize) -> (usize, usize) {
        let len = self.len();
        let end = len.saturating_sub(self.from_bottom);
        let start = end.saturating_sub(height);
        (start, end - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testutil::{Seq, task};

    fn events(n: usize) -> Vec<Event> {
        let mut s = Seq::new();
        for i in 0..n {
            let comm = if i % 2 == 0 { "curl" } else { "java" };
            s.connect(
                task(100 + i as u32, comm),
                i as u64 + 1,
                "10.0.0.1",
                40000,
                "10.0.0.5:443",
            );
        }
        s.events.clone()
    }

    #[test]
    fn ring_is_bounded_and_filter_is_incremental() {
        let mut log = EventLog::new(6);
        log.push(&events(2));
        assert_eq!(log.len(), 4);
        log.set_filter("CURL");
        assert_eq!(
            log.len(),
            1,
            "only the CLOSE → SYN_SENT of curl carries its task"
        );
        log.push(&events(4));
        assert_eq!(log.total(), 6);
        assert!(log.get(0).is_some());
        assert!(
            (0..log.len()).all(|i| log.get(i).unwrap().task.comm.to_string() == "curl"),
            "matches evicted with the ring"
        );
    }

    #[test]
    fn scrolled_view_stays_on_its_events_and_pause_holds() {
        let mut log = EventLog::new(100);
        log.push(&events(10));
        log.scroll(5);
        let (start, n) = log.window(3);
        let first = *log.get(start).unwrap();
        log.push(&events(1));
        let (start2, n2) = log.window(3);
        assert_eq!((n, n2), (3, 3));
        assert_eq!(*log.get(start2).unwrap(), first);
        log.set_paused(true);
        log.push(&events(3));
        assert_eq!(log.total(), 22);
        log.set_paused(false);
        assert_eq!(log.total(), 28);
    }
}
