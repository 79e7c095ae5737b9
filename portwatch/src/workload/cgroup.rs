//! Pure parsing: `/proc/PID/cgroup` content → the path that says where the process lives, and
//! a cgroup path → [`Workload`] (unit, slice, container runtime + id, pod UID).
//!
//! The naming schemes (samples with their sources are in `tests.rs`):
//! - systemd: the path is a chain of slices (`a.slice/a-b.slice/…`) ending in a unit
//!   (`*.service`, `*.scope`, …), possibly with sub-cgroups below it (delegation).
//! - container runtimes with the systemd driver create a scope per container:
//!   `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`;
//!   their monitors get `crio-conmon-<id>.scope` / `libpod-conmon-<id>.scope` (not the
//!   container itself).
//! - with the cgroupfs driver: `/docker/<id>`, `/libpod_parent/libpod-<id>`,
//!   `/kubepods/<qos>/pod<uid>/<id>` (containerd, dockershim) or `…/crio-<id>` (CRI-O).
//! - the kubelet puts each pod under its QoS class: `kubepods-<qos>-pod<uid>.slice` (systemd,
//!   dashes of the UID written as `_`) or `kubepods/<qos>/pod<uid>` (cgroupfs); Guaranteed
//!   pods sit directly under `kubepods`.
//!
//! When containers nest (kind, minikube: a node container running pods), the innermost
//! container wins.

use super::{Container, Pod, Runtime, Workload};

/// The path from `/proc/PID/cgroup` content that says where the process lives: the unified
/// (`0::`) path, unless it is the root while the v1 `name=systemd` hierarchy says more (a
/// hybrid host whose systemd tracks units there only). `None` if neither line is present.
pub fn proc_cgroup_path(content: &str) -> Option<&str> {
    let mut unified = None;
    let mut systemd = None;
    for line in content.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            unified = Some(path);
        } else if controllers == "name=systemd" {
            systemd = Some(path);
        }
    }
    match (unified, systemd) {
        (Some(u), Some(s)) if u == "/" && s != "/" => Some(s),
        (Some(u), _) => Some(u),
        (None, s) => s,
    }
}

/// What a cgroup path says about the process in it. Never fails: what is not recognised is
/// left `None`.
pub fn parse_path(path: &str) -> Workload {
    let mut w = Workload {
        cgroup: path.to_string(),
        ..Workload::default()
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let parent = if i > 0 { Some(parts[i - 1]) } else { None };
        if let Some(uid) = pod_uid(part) {
            w.pod = Some(Pod {
                namespace: None,
                name: None,
                uid,
            });
        }
        if let Some((runtime, id)) = container_id(part, parent, w.pod.is_some()) {
            w.container = Some(Container {
                runtime,
                id: id.to_string(),
                name: None,
            });
        }
        if let Some(unit) = systemd_unit(part) {
            if unit.ends_with(".slice") {
                w.slice = Some(unit.to_string());
            } else {
                w.unit = Some(unit.to_string());
            }
        }
    }
    w
}

/// `parse_path` of the path [`proc_cgroup_path`] picks.
pub fn parse_proc_cgroup(content: &str) -> Option<Workload> {
    proc_cgroup_path(content).map(parse_path)
}

/// Unit types systemd puts in the cgroup tree (systemd.unit(5): only slices, scopes and the
/// units that run processes appear there).
const UNIT_SUFFIXES: [&str; 6] = [".slice", ".service", ".scope", ".socket", ".mount", ".swap"];

fn systemd_unit(part: &str) -> Option<&str> {
    UNIT_SUFFIXES
        .iter()
        .any(|s| part.len() > s.len() && part.ends_with(s))
        .then_some(part)
}

/// A container id in one path component: prefixed ids in any position, bare 64-hex ids only
/// where the parent says which runtime (or under a pod).
fn container_id<'a>(
    part: &'a str,
    parent: Option<&str>,
    in_pod: bool,
) -> Option<(Runtime, &'a str)> {
    let bare = part.strip_suffix(".scope").unwrap_or(part);
    const PREFIXES: [(&str, Runtime); 5] = [
        ("cri-containerd-", Runtime::Containerd),
        ("docker-", Runtime::Docker),
        ("crio-", Runtime::CriO),
        ("libpod-payload-", Runtime::Podman),
        ("libpod-", Runtime::Podman),
    ];
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = bare.strip_prefix(prefix)
            && is_id(id)
        {
            return Some((runtime, id));
        }
    }
    if is_full_id(part) {
        match parent {
            Some("docker") => return Some((Runtime::Docker, part)),
            _ if in_pod => return Some((Runtime::Cri, part)),
            _ => {}
        }
    }
    None
}

/// A runtime-prefixed id: hex, at least 12 digits (some tools shorten them).
fn is_id(s: &str) -> bool {
    s.len() >= 12 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A bare id: exactly 64 lowercase hex digits, so that no ordinary cgroup name matches.
fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The pod UID in `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid>.slice` (systemd, with
/// `_` for `-`, possibly under a `kubelet-` prefix), with dashes.
fn pod_uid(part: &str) -> Option<String> {
    let raw = if let Some(slice) = part.strip_suffix(".slice") {
        let at = slice.rfind("-pod")?;
        if !slice[..at].split('-').any(|w| w == "kubepods") {
            return None;
        }
        &slice[at + 4..]
    } else {
        part.strip_prefix("pod")?
    };
    let uid = raw.replace('_', "-");
    is_uid(&uid).then_some(uid)
}

/// 8-4-4-4-12 hex digits.
fn is_uid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}
