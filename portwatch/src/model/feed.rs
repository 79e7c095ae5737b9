//! The model's one entry point, [`Model::feed`], and what it keeps of the inputs that are not
//! about sockets (the loss counters, the warnings, the last corrections), plus the
//! ownership query `events --pid` filters with ([`Model::event_owner`]).

use super::{Input, Model, addr::Tuple, socket::flag};
use crate::{
    collect::Counters,
    event::{Event, EventKind},
};

/// Distinct warnings kept; later ones are counted in [`Warnings::dropped`].
pub const MAX_WARNINGS: usize = 64;

/// What the sources could not do, in the order first seen (a repeat is counted, not kept).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Warnings {
    pub texts: Vec<String>,
    /// Warnings beyond [`MAX_WARNINGS`], and repeats of kept ones.
    pub dropped: u64,
}

impl Model {
    /// Takes one input: every event, snapshot, loss reading, warning and clock tick enters
    /// here, live and in replay alike.
    pub fn feed(&mut self, input: &Input) {
        match input {
            Input::Event(ev) => self.apply(ev),
            Input::Startup(s) => self.load_snapshot(&s.value, s.at_ns),
            Input::Reconcile(s) => {
                self.last_corrections = self.reconcile(&s.value, s.at_ns);
            }
            Input::Loss(s) => {
                self.clock(s.at_ns);
                self.loss = s.value;
            }
            Input::Warning(s) => {
                self.clock(s.at_ns);
                let w = &mut self.warnings;
                if w.texts.len() >= MAX_WARNINGS || w.texts.contains(&s.value) {
                    w.dropped += 1;
                } else {
                    w.texts.push(s.value.clone());
                }
            }
            Input::Workloads(s) => {
                self.clock(s.at_ns);
                self.learn_workloads(&s.value);
            }
            Input::Executables(s) => {
                self.clock(s.at_ns);
                self.learn_exes(&s.value);
            }
            Input::Conntrack(r) => self.set_conntrack(r),
            Input::Latency(r) => {
                self.clock(r.taken_at_ns);
                self.latency.feed(r);
            }
            Input::Tick(at) => self.tick(*at),
        }
    }

    /// The collector's loss counters, as last fed.
    pub fn loss(&self) -> &Counters {
        &self.loss
    }

    /// Every warning fed so far.
    pub fn warnings(&self) -> &Warnings {
        &self.warnings
    }

    /// The corrections of the last reconciliation.
    pub fn last_corrections(&self) -> &[super::Correction] {
        &self.last_corrections
    }

    /// The pid the model attributes an event to: the caller of a `connect()`/`bind()`, the
    /// owner of the socket a transition is about (taken in process context, inherited by
    /// accepted sockets, kept through TIME_WAIT). `None` when the socket is unknown or its
    /// owner is. Ask before and after feeding the event: a closing event removes the socket,
    /// an opening one creates it.
    pub fn event_owner(&self, ev: &Event) -> Option<u32> {
        let i = match &ev.kind {
            EventKind::Call(_) => return Some(ev.task.pid),
            EventKind::State(s) => self.socks.find_sk(s.sk)?,
            EventKind::TimeWait(t) => match self.socks.find_sk(t.tw) {
                Some(i) if self.socks.get(i).has(flag::TW) => i,
                _ => self
                    .socks
                    .find_tuple(&Tuple::new(ev.netns, t.local, t.remote), |s| {
                        s.has(flag::TW)
                    })?,
            },
        };
        let owner = self.socks.get(i).owner;
        self.procs.opt(owner).map(|p| p.pid)
    }
}
