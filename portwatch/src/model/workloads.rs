//! Cgroup id → workload (unit, container, pod): what the model knows of where its processes
//! live. The ids come with the events (`Task::cgroup`, taken in the owner's context) and the
//! start-up snapshot's owners; the workloads come from outside (`context::cgroups::Resolver`
//! live, the recording's `workloads` records in replay) through [`Model::learn_workloads`].
//! The model asks for each id once ([`Model::cgroups_to_resolve`]) and never reads the system.
//!
//! A process keeps the cgroup it was last seen in, and a socket keeps its process after the
//! process has exited, so a TIME_WAIT socket still names its container.

use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::Model;
use crate::workload::Workload;

/// A learned mapping, as the recording keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupWorkload {
    pub cgroup: u64,
    pub workload: Workload,
}

/// A shared workload, serialized as the workload itself (views flatten it into a process).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadRef(pub Arc<Workload>);

impl std::ops::Deref for WorkloadRef {
    type Target = Workload;
    fn deref(&self) -> &Workload {
        &self.0
    }
}

impl Serialize for WorkloadRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[derive(Default)]
pub(crate) struct Workloads {
    by_cgroup: FxHashMap<u64, WorkloadRef>,
    asked: FxHashSet<u64>,
}

impl Workloads {
    pub fn get(&self, cgroup: u64) -> Option<WorkloadRef> {
        if cgroup == 0 {
            return None;
        }
        self.by_cgroup.get(&cgroup).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_cgroup.len()
    }
}

impl Model {
    /// Cgroup ids seen since the last call that have no workload yet and were not asked for
    /// before. Each id is handed out once; call it now and then (each tick), not per event.
    pub fn cgroups_to_resolve(&mut self) -> Vec<u64> {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.procs.new_cgroups) {
            if !self.workloads.by_cgroup.contains_key(&id) && self.workloads.asked.insert(id) {
                out.push(id);
            }
        }
        out
    }

    /// Records where cgroups are (a later entry for the same id replaces the earlier one).
    pub fn learn_workloads(&mut self, learned: &[CgroupWorkload]) {
        for l in learned {
            self.workloads
                .by_cgroup
                .insert(l.cgroup, WorkloadRef(Arc::new(l.workload.clone())));
        }
    }

    /// The workload of a cgroup id, if learned.
    pub fn workload(&self, cgroup: u64) -> Option<WorkloadRef> {
        self.workloads.get(cgroup)
    }

    /// Workloads known (for the counters).
    pub fn workloads_known(&self) -> usize {
        self.workloads.len()
    }
}

/// What `report --group-by` groups processes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Container,
    Pod,
    Unit,
}

/// Processes of one container, pod or unit (or of none: `key` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadGroupStats {
    /// The container's name (or `runtime short-id`), the pod's `namespace/name` (or UID), the
    /// unit; `None` for processes outside any.
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::workload::Container>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<crate::workload::Pod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub processes: u32,
    pub sockets: u32,
    pub connects: u64,
    pub failures: u64,
    pub outbound_states: super::StateCounts,
}

impl GroupBy {
    pub const ALL: [GroupBy; 3] = [GroupBy::Container, GroupBy::Pod, GroupBy::Unit];

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Container => "container",
            GroupBy::Pod => "pod",
            GroupBy::Unit => "unit",
        }
    }

    fn key(self, w: Option<&Workload>) -> Option<String> {
        let w = w?;
        match self {
            GroupBy::Container => w.container.as_ref().map(|c| {
                c.name
                    .clone()
                    .unwrap_or_else(|| format!("{} {}", c.runtime, c.short_id()))
            }),
            GroupBy::Pod => w.pod.as_ref().map(|p| match (&p.namespace, &p.name) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                _ => p.uid.clone(),
            }),
            GroupBy::Unit => w.unit.clone(),
        }
    }
}

impl Model {
    /// Every process with sockets, connects or failures, grouped by container, pod or unit;
    /// most sockets first, at most `top_n` groups.
    pub fn workload_groups(&self, by: GroupBy, top_n: usize) -> Vec<WorkloadGroupStats> {
        let mut groups: FxHashMap<Option<String>, WorkloadGroupStats> = FxHashMap::default();
        for p in self.processes(usize::MAX) {
            let w = p.process.workload.as_deref();
            let key = by.key(w);
            let g = groups
                .entry(key.clone())
                .or_insert_with(|| WorkloadGroupStats {
                    key,
                    container: w
                        .filter(|_| by == GroupBy::Container)
                        .and_then(|w| w.container.clone()),
                    pod: w
                        .filter(|_| by != GroupBy::Unit)
                        .and_then(|w| w.pod.clone()),
                    unit: w
                        .filter(|_| by == GroupBy::Unit)
                        .and_then(|w| w.unit.clone()),
                    processes: 0,
                    sockets: 0,
                    connects: 0,
                    failures: 0,
                    outbound_states: super::StateCounts::default(),
                });
            g.processes += 1;
            g.sockets += p.sockets;
            g.connects += p.connects;
            g.failures += p.failures;
            g.outbound_states.merge(&p.outbound_states);
        }
        let mut v: Vec<WorkloadGroupStats> = groups.into_values().collect();
        v.sort_by(|a, b| {
            b.sockets
                .cmp(&a.sockets)
                .then(b.failures.cmp(&a.failures))
                .then(a.key.cmp(&b.key))
        });
        v.truncate(top_n);
        v
    }
}
