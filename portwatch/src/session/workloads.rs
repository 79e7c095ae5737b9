//! Feeds the model the workloads (unit, container, pod) of the cgroup ids it has seen: the
//! model hands out each new id once (`Model::cgroups_to_resolve`), the resolver maps it on a
//! blocking thread (a walk of the cgroup tree, an API call per container), and the answers
//! become an [`crate::model::Input::Workloads`] that the session feeds to the model and its
//! sinks (the recorder among them), so that replay learns the same names at the same point.
//!
//! An id not found yet (its cgroup made after the last walk), or found while a runtime API
//! was too busy to name its container, is tried again on later ticks for [`RETRY_FOR`] and
//! once more when the session ends; a cgroup removed before that stays unnamed (its id is
//! still shown).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    context::cgroups::{Resolver, ResolverStats},
    model::{CgroupWorkload, Model},
};

/// How long an id that could not be mapped is retried.
pub const RETRY_FOR: Duration = Duration::from_secs(3);

type Answer = (Vec<CgroupWorkload>, Vec<u64>, Duration);

pub struct WorkloadFeed {
    resolver: Arc<Mutex<Resolver>>,
    pending: Option<tokio::task::JoinHandle<Answer>>,
    retry: Vec<(u64, Instant)>,
    /// Learned since the session last took them (to feed as an input).
    pub learned: Vec<CgroupWorkload>,
    /// Time spent resolving, in total (for the cost figures).
    pub busy: Duration,
}

impl WorkloadFeed {
    pub fn new(resolver: Resolver) -> WorkloadFeed {
        WorkloadFeed {
            resolver: Arc::new(Mutex::new(resolver)),
            pending: None,
            retry: Vec::new(),
            learned: Vec::new(),
            busy: Duration::ZERO,
        }
    }

    /// Merges a finished resolution, and starts one for ids waiting. Call a few times a
    /// second from the session's tick.
    pub fn tick(&mut self, model: &mut Model) {
        if let Some(h) = &self.pending
            && h.is_finished()
        {
            let h = self.pending.take().expect("checked");
            if let Some(answer) = now_or_never(h) {
                self.merge(answer);
            }
        }
        if self.pending.is_some() {
            return;
        }
        let ids = self.due(model);
        if ids.is_empty() {
            return;
        }
        let resolver = Arc::clone(&self.resolver);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            resolve(&mut resolver.lock().expect("resolver lock"), &ids)
        }));
    }

    /// Resolves everything still waiting now (at the end of a session, so that the last
    /// picture has its names).
    pub fn finish(&mut self, model: &mut Model) {
        if let Some(h) = self.pending.take() {
            // The blocking thread ends within the API timeouts.
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(5));
            }
            if let Some(answer) = now_or_never(h) {
                self.merge(answer);
            }
        }
        let mut ids = self.due(model);
        ids.extend(self.retry.drain(..).map(|(id, _)| id));
        if !ids.is_empty() {
            let answer = resolve(&mut self.resolver.lock().expect("resolver lock"), &ids);
            self.merge(answer);
            self.retry.clear();
        }
    }

    pub fn stats(&self) -> ResolverStats {
        self.resolver.lock().map(|r| r.stats).unwrap_or_default()
    }

    fn due(&mut self, model: &mut Model) -> Vec<u64> {
        let now = Instant::now();
        let mut ids = model.cgroups_to_resolve();
        for &(id, first) in &self.retry {
            if now.duration_since(first) < RETRY_FOR && !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.retry
            .retain(|&(_, first)| now.duration_since(first) < RETRY_FOR);
        ids
    }

    fn merge(&mut self, (learned, unknown, took): Answer) {
        self.busy += took;
        let now = Instant::now();
        self.retry
            .retain(|&(id, _)| unknown.contains(&id) || !learned.iter().any(|l| l.cgroup == id));
        for id in unknown {
            if !self.retry.iter().any(|&(r, _)| r == id) {
                self.retry.push((id, now));
            }
        }
        self.learned.extend(learned);
    }
}

fn resolve(r: &mut Resolver, ids: &[u64]) -> Answer {
    let start = Instant::now();
    let found = r.resolve(ids);
    // Not found, or found without the name a busy runtime API could not give in time.
    let mut unknown: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| !found.iter().any(|(f, _)| f == id))
        .collect();
    unknown.extend(r.take_late());
    let learned = found
        .into_iter()
        .map(|(cgroup, workload)| CgroupWorkload { cgroup, workload })
        .collect();
    (learned, unknown, start.elapsed())
}

fn now_or_never<T>(h: tokio::task::JoinHandle<T>) -> Option<T> {
    use std::task::{Context, Poll, Waker};
    let mut h = std::pin::pin!(h);
    match h.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(v)) => Some(v),
        _ => None,
    }
}
