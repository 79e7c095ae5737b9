//! What a recording holds besides events, and how: the live session's context as typed
//! records (record::ContextRecord), so that replay rebuilds the same model.
//!
//! - `snapshot` records with schema [`Schema::Startup`]: the start-up sock_diag snapshot,
//!   merged with `Model::load_snapshot`;
//! - `snapshot` records with schema [`Schema::Reconcile`]: each reconciliation snapshot,
//!   applied with `Model::reconcile` at the same point among the events;
//! - `counters` records named [`LOSS`]: `collect::Counters`, cumulative, every second and at
//!   the end;
//! - `note` records of level `warning`: degraded hooks and other problems;
//! - `snapshot` records with schema [`WORKLOADS`]: cgroup ids → workloads (unit, container,
//!   pod) as the live session learned them, fed to `Model::learn_workloads`.

use crate::{
    collect::Counters,
    model::SystemSnapshot,
    record::{self, ContextRecord, Note, Payload},
};

/// Name of the loss counters records.
pub const LOSS: &str = "loss";
/// Level of the notes that carry warnings.
pub const WARNING_NOTE: &str = "warning";
/// Version of the snapshot payloads (`model::SystemSnapshot` as JSON).
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Startup,
    Reconcile,
}

impl Schema {
    pub fn name(self) -> &'static str {
        match self {
            Schema::Startup => "portwatch.snapshot.startup",
            Schema::Reconcile => "portwatch.snapshot.reconcile",
        }
    }

    pub fn of(name: &str) -> Option<Schema> {
        [Schema::Startup, Schema::Reconcile]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// Schema of the `snapshot` records that carry learned workloads (`Vec<CgroupWorkload>`).
pub const WORKLOADS: &str = "portwatch.workloads";
pub const WORKLOADS_VERSION: u32 = 1;

pub fn workloads_record(
    at_ns: u64,
    learned: &[crate::model::CgroupWorkload],
) -> anyhow::Result<ContextRecord> {
    Ok(ContextRecord::Snapshot(Payload::new(
        at_ns,
        0,
        WORKLOADS,
        WORKLOADS_VERSION,
        &learned,
    )?))
}

/// `at_ns`: the model time the snapshot was merged at (replay merges it at the same time).
pub fn snapshot_record(
    schema: Schema,
    at_ns: u64,
    snap: &SystemSnapshot,
) -> anyhow::Result<ContextRecord> {
    Ok(ContextRecord::Snapshot(Payload::new(
        at_ns,
        0,
        schema.name(),
        SNAPSHOT_VERSION,
        snap,
    )?))
}

pub fn loss_record(ts_ns: u64, c: &Counters) -> anyhow::Result<ContextRecord> {
    Ok(ContextRecord::Counters(record::Counters::from_serialize(
        ts_ns, LOSS, c,
    )?))
}

pub fn warning_note(ts_ns: u64, text: &str) -> ContextRecord {
    ContextRecord::Note(Note {
        ts_ns,
        level: WARNING_NOTE.into(),
        text: text.into(),
    })
}

/// The loss counters back from their flattened record (`state.lost` → `{state: {lost}}`).
pub fn counters_from_record(c: &record::Counters) -> anyhow::Result<Counters> {
    let mut root = serde_json::Map::new();
    for (name, value) in &c.values {
        let mut node = &mut root;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), serde_json::Value::from(*value));
            } else {
                let entry = node
                    .entry(part.to_string())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                node = entry.as_object_mut().ok_or_else(|| {
                    anyhow::anyhow!("counter {name}: {part} is both a value and a group")
                })?;
            }
        }
    }
    Ok(serde_json::from_value(serde_json::Value::Object(root))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{KindCounters, Skipped};

    #[test]
    fn loss_counters_round_trip_through_a_record() {
        let c = Counters {
            state: KindCounters {
                seen: 10,
                lost: 2,
                received: 8,
                duplicates: 0,
            },
            call: KindCounters {
                seen: 1,
                lost: 0,
                received: 1,
                duplicates: 0,
            },
            timewait: KindCounters {
                seen: 5,
                lost: 1,
                received: 4,
                duplicates: 0,
            },
            decode_errors: 3,
            skipped: Skipped {
                state: 4,
                calls: 5,
                timers: 6,
            },
            untracked_calls: 7,
            read_failed: 8,
            rescued: 9,
        };
        let ContextRecord::Counters(rec) = loss_record(42, &c).unwrap() else {
            panic!()
        };
        assert_eq!(rec.values["state.lost"], 2);
        assert_eq!(counters_from_record(&rec).unwrap(), c);
    }

    #[test]
    fn schemas_are_named_and_found() {
        for s in [Schema::Startup, Schema::Reconcile] {
            assert_eq!(Schema::of(s.name()), Some(s));
        }
        assert_eq!(Schema::of("other"), None);
    }
}
