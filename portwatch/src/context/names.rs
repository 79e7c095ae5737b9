//! The names a cgroup path does not carry: a container's name from its runtime's API socket
//! (docker and podman answer the same `GET /containers/{id}/json` over a unix socket), from
//! the kubelet's `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` links, and a pod's
//! namespace and name from `/var/log/pods/<namespace>_<pod>_<uid>/`.
//!
//! Everything here degrades: no socket, no answer within [`API_TIMEOUT`], no kubelet
//! directory — the name stays `None` and the id is shown. Answers (found or not) are cached
//! per container id and pod UID; an API that did not answer in time is not an answer: it is
//! asked again on the next [`Names::fill`] (the caller retries for a while). The kubelet
//! directories are listed again at most every [`RELIST_AFTER`] when a UID or id is missing.

use std::{
    collections::HashMap,
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::workload::{Runtime, Workload};

/// How long one API request may take (connect, write, read).
pub const API_TIMEOUT: Duration = Duration::from_millis(300);
/// Least time between two listings of a kubelet directory.
pub const RELIST_AFTER: Duration = Duration::from_secs(2);
/// Largest API answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// Where names come from.
pub struct Names {
    /// Runtime API sockets, tried in order for containers of that runtime.
    pub sockets: Vec<(Runtime, PathBuf)>,
    /// `/var/log/pods`.
    pub pods_dir: Option<PathBuf>,
    /// `/var/log/containers`.
    pub containers_dir: Option<PathBuf>,
    containers: HashMap<String, Option<String>>,
    pods: HashMap<String, (String, String)>,
    cri_names: HashMap<String, String>,
    listed: Option<Instant>,
}

impl Names {
    /// The usual places, and `$CONTAINER_HOST` / `$DOCKER_HOST` when they are `unix://` paths.
    pub fn system() -> Names {
        let mut sockets = Vec::new();
        for (var, runtime) in [
            ("CONTAINER_HOST", Runtime::Podman),
            ("DOCKER_HOST", Runtime::Docker),
        ] {
            if let Ok(v) = std::env::var(var)
                && let Some(p) = v.strip_prefix("unix://")
            {
                sockets.push((runtime, PathBuf::from(p)));
            }
        }
        sockets.push((Runtime::Podman, "/run/podman/podman.sock".into()));
        sockets.push((Runtime::Docker, "/run/docker.sock".into()));
        sockets.push((Runtime::Docker, "/var/run/docker.sock".into()));
        Names {
            sockets,
            pods_dir: Some("/var/log/pods".into()),
            containers_dir: Some("/var/log/containers".into()),
            ..Names::none()
        }
    }

    /// No source at all: ids and paths only.
    pub fn none() -> Names {
        Names {
            sockets: Vec::new(),
            pods_dir: None,
            containers_dir: None,
            containers: HashMap::new(),
            pods: HashMap::new(),
            cri_names: HashMap::new(),
            listed: None,
        }
    }

    /// Fills the container's name and the pod's namespace and name where a source knows them.
    /// False when a runtime API did not answer in time: the name may come on a later call.
    pub fn fill(&mut self, w: &mut Workload) -> bool {
        let missing_pod = w
            .pod
            .as_ref()
            .is_some_and(|p| !self.pods.contains_key(&p.uid));
        let missing_cri = w
            .container
            .as_ref()
            .is_some_and(|c| w.pod.is_some() && !self.cri_names.contains_key(&c.id));
        if (missing_pod || missing_cri) && self.listed.is_none_or(|t| t.elapsed() >= RELIST_AFTER) {
            self.list_kubelet_dirs();
        }
        if let Some(p) = &mut w.pod
            && let Some((ns, name)) = self.pods.get(&p.uid)
        {
            p.namespace = Some(ns.clone());
            p.name = Some(name.clone());
        }
        let Some(c) = &mut w.container else {
            return true;
        };
        if let Some(n) = self.cri_names.get(&c.id) {
            c.name = Some(n.clone());
            return true;
        }
        if let Some(known) = self.containers.get(&c.id) {
            c.name = known.clone();
            return true;
        }
        let mut late = false;
        let found = self
            .sockets
            .iter()
            .filter(|(r, _)| *r == c.runtime)
            .find_map(|(_, sock)| match container_name(sock, &c.id) {
                Ok(name) => name,
                Err(e) => {
                    late |= is_late(&e);
                    None
                }
            });
        if found.is_some() || !late {
            self.containers.insert(c.id.clone(), found.clone());
        }
        c.name = found;
        !late || c.name.is_some()
    }

    fn list_kubelet_dirs(&mut self) {
        self.listed = Some(Instant::now());
        if let Some(dir) = &self.pods_dir {
            for name in dir_names(dir) {
                if let Some((ns, pod, uid)) = parse_pod_dir(&name) {
                    self.pods.insert(uid.into(), (ns.into(), pod.into()));
                }
            }
        }
        if let Some(dir) = &self.containers_dir {
            for name in dir_names(dir) {
                if let Some((_, _, container, id)) = parse_container_log(&name) {
                    self.cri_names.insert(id.into(), container.into());
                }
            }
        }
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// `<namespace>_<pod>_<uid>` (kubelet's `/var/log/pods` entries). Namespaces and pod names
/// are DNS labels/subdomains, which have no `_`.
pub fn parse_pod_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    (!ns.is_empty() && !pod.is_empty() && uid.len() == 36).then_some((ns, pod, uid))
}

/// `<pod>_<namespace>_<container>-<64 hex id>.log` (kubelet's `/var/log/containers` links).
pub fn parse_container_log(name: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = name.strip_suffix(".log")?;
    let mut it = stem.splitn(3, '_');
    let (pod, ns, rest) = (it.next()?, it.next()?, it.next()?);
    let (container, id) = rest.rsplit_once('-')?;
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !container.is_empty())
        .then_some((pod, ns, container, id))
}

/// The container's name from a docker-compatible API socket: `Ok(None)` when the socket
/// answered without one (another status, another body), an error when it could not be asked.
pub fn container_name(sock: &Path, id: &str) -> std::io::Result<Option<String>> {
    let Some(body) = api_get(sock, &format!("/containers/{id}/json"))? else {
        return Ok(None);
    };
    let v: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let name = v.as_ref().and_then(|v| v.get("Name")?.as_str());
    Ok(name.map(|n| n.trim_start_matches('/').to_string()))
}

/// An API that is there but did not answer within [`API_TIMEOUT`] (a busy service): worth
/// asking again, unlike a socket that does not exist or refuses.
fn is_late(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
}

/// `GET path` over HTTP/1.0 on a unix socket: the body of a 200 answer, `None` for another
/// status.
fn api_get(sock: &Path, path: &str) -> std::io::Result<Option<Vec<u8>>> {
    let mut s = UnixStream::connect(sock)?;
    s.set_read_timeout(Some(API_TIMEOUT))?;
    s.set_write_timeout(Some(API_TIMEOUT))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer)?;
    Ok(http_body(&answer))
}

/// The body of a `200` HTTP answer (not chunked: a 1.0 request gets none).
fn http_body(answer: &[u8]) -> Option<Vec<u8>> {
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&answer[..at]).ok()?.lines().next()?;
    let code = status.split(' ').nth(1)?;
    (code == "200").then(|| answer[at + 4..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::cgroup;

    #[test]
    fn kubelet_names() {
        assert_eq!(
            parse_pod_dir("shop_checkout-7f9c-x2x_9692aa0e-748e-11e8-8dfa-76d458035df6"),
            Some((
                "shop",
                "checkout-7f9c-x2x",
                "9692aa0e-748e-11e8-8dfa-76d458035df6"
            ))
        );
        assert_eq!(parse_pod_dir("nonsense"), None);
        let id = "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152";
        let link = format!("checkout-7f9c-x2x_shop_checkout-api-{id}.log");
        assert_eq!(
            parse_container_log(&link),
            Some(("checkout-7f9c-x2x", "shop", "checkout-api", id))
        );
        assert_eq!(parse_container_log("x_y_z-123.log"), None);
    }

    #[test]
    fn http_answers() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Name\":\"/web\"}";
        assert_eq!(http_body(ok).as_deref(), Some(&b"{\"Name\":\"/web\"}"[..]));
        assert_eq!(http_body(b"HTTP/1.0 404 Not Found\r\n\r\n{}"), None);
        assert_eq!(http_body(b"garbage"), None);
    }

    #[test]
    fn fills_pod_and_container_names_from_kubelet_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let (pods, logs) = (dir.path().join("pods"), dir.path().join("containers"));
        let uid = "9692aa0e-748e-11e8-8dfa-76d458035df6";
        let id = "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152";
        std::fs::create_dir_all(pods.join(format!("shop_checkout-7f9c-x2x_{uid}"))).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join(format!("checkout-7f9c-x2x_shop_api-{id}.log")),
            "",
        )
        .unwrap();
        let mut names = Names {
            pods_dir: Some(pods),
            containers_dir: Some(logs),
            ..Names::none()
        };
        let mut w = cgroup::parse_path(&format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{id}.scope",
            uid.replace('-', "_")
        ));
        names.fill(&mut w);
        assert_eq!(
            w.label().as_deref(),
            Some("api in pod shop/checkout-7f9c-x2x")
        );
        // No source: the ids stay.
        let mut bare = cgroup::parse_path(&format!("/docker/{id}"));
        Names::none().fill(&mut bare);
        assert_eq!(
            bare.label().as_deref(),
            Some("container docker abddff03dfd7")
        );
    }

    /// A runtime API that answers after [`API_TIMEOUT`] is asked again; one that answers is
    /// not (its answer is cached); a socket that does not exist is no source.
    #[test]
    fn a_late_api_is_asked_again_and_an_answer_is_kept() {
        use std::{io::BufRead as _, os::unix::net::UnixListener, thread};
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("api.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = thread::spawn(move || {
            for late in [true, false] {
                let (s, _) = listener.accept().unwrap();
                let mut r = std::io::BufReader::new(&s);
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                if late {
                    thread::sleep(API_TIMEOUT * 2);
                }
                let _ = (&s).write_all(b"HTTP/1.0 200 OK\r\n\r\n{\"Name\":\"/web\"}");
            }
        });
        let id = "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152";
        let mut names = Names {
            sockets: vec![
                (Runtime::Podman, dir.path().join("absent.sock")),
                (Runtime::Podman, sock),
            ],
            ..Names::none()
        };
        let name = |w: &Workload| w.container.as_ref().and_then(|c| c.name.clone());
        let mut w = cgroup::parse_path(&format!("/libpod_parent/libpod-{id}"));
        assert!(!names.fill(&mut w), "too late: to be asked again");
        assert_eq!(name(&w), None);
        assert!(names.fill(&mut w));
        assert_eq!(name(&w).as_deref(), Some("web"));
        server.join().unwrap();
        // Kept: the server is gone, the name is not.
        let mut again = cgroup::parse_path(&format!("/libpod_parent/libpod-{id}"));
        assert!(names.fill(&mut again));
        assert_eq!(name(&again).as_deref(), Some("web"));
    }
}
