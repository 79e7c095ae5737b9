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
