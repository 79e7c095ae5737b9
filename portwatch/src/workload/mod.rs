//! Where a process lives, the way operators name it: the systemd unit of a host service, the
//! container (runtime + id + name) and the Kubernetes pod (namespace, name, UID).
//!
//! - [`cgroup`]: pure parsing of `/proc/PID/cgroup` content and of cgroup paths into a
//!   [`Workload`] (no I/O; unit-tested over real-world paths of every runtime and driver).
//! - The names that a path does not carry (container name, pod namespace/name) are filled in
//!   by `context::workloads` from the runtime's API socket and the kubelet's on-disk layout;
//!   whatever is missing stays `None` (the id and the path are still shown).
//!
//! The kernel tags every event with the cgroup id of the task that ran it
//! (`bpf_get_current_cgroup_id()`, the inode of its directory in the unified hierarchy); the
//! model remembers it per process, so a socket whose owner has exited still names its
//! container.

pub mod cgroup;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A container runtime, as the cgroup path names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Docker,
    /// containerd's CRI plugin (`cri-containerd-<id>.scope`).
    Containerd,
    #[serde(rename = "cri-o")]
    CriO,
    /// podman / libpod.
    Podman,
    /// A container of a Kubernetes pod whose path gives the id but not the runtime (the
    /// cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`).
    Cri,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Cri => "cri",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Container {
    pub runtime: Runtime,
    /// The full id (64 hex digits for every runtime here).
    pub id: String,
    /// From the runtime's API (`podman ps` / `docker ps` NAMES); `None` when no API answered.
    pub name: Option<String>,
}

impl Container {
    /// The first 12 digits, as `docker ps` / `podman ps` show ids.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pod {
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// `metadata.uid`, with dashes (systemd slices write them as underscores).
    pub uid: String,
}

/// Where a process lives. Every field but `cgroup` is optional: a path that matches nothing
/// known is still shown as itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// The cgroup path in the unified hierarchy (or the v1 `name=systemd` one), from its root.
    pub cgroup: String,
    /// The innermost systemd unit (`nginx.service`, `session-3.scope`, `docker-<id>.scope`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// The innermost slice (`system.slice`, `kubepods-burstable-pod<uid>.slice`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub slice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub container: Option<Container>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pod: Option<Pod>,
}

impl Workload {
    /// The name an operator would use, most specific first: `pod ns/name`, `container name`,
    /// `unit`; `None` for the root cgroup and paths that name nothing.
    pub fn label(&self) -> Option<String> {
        if let Some(c) = &self.container {
            let who = c
                .name
                .clone()
                .unwrap_or_else(|| format!("{} {}", c.runtime, c.short_id()));
            return Some(match &self.pod {
                Some(p) => format!("{who} in pod {}", pod_label(p)),
                None => format!("container {who}"),
            });
        }
        if let Some(p) = &self.pod {
            return Some(format!("pod {}", pod_label(p)));
        }
        self.unit.clone()
    }
}

impl Workload {
    /// Where, for a sentence ("python3 (pid 7) in …"): `container web (podman 5c8f8a6b1d2e)`
    /// (`of pod shop/web-1` added when in a pod), `pod shop/web-1`, `nginx.service`; `None`
    /// when the path names nothing.
    pub fn whereabouts(&self) -> Option<String> {
        if let Some(c) = &self.container {
            let id = format!("{} {}", c.runtime, c.short_id());
            let mut s = match &c.name {
                Some(n) => format!("container {n} ({id})"),
                None => format!("container {id}"),
            };
            if let Some(p) = &self.pod {
                s.push_str(&format!(" of pod {}", pod_label(p)));
            }
            return Some(s);
        }
        if let Some(p) = &self.pod {
            return Some(format!("pod {}", pod_label(p)));
        }
        self.unit.clone()
    }
}

fn pod_label(p: &Pod) -> String {
    match (&p.namespace, &p.name) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.clone(),
        _ => p.uid.clone(),
    }
}
