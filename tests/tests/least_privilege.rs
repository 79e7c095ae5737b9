//! Issue 12: the capabilities the deployment files grant are enough, measured by running the
//! agent with exactly those and nothing else. Root only (to drop from); fails, never skips.
//!
//! - the systemd unit's set, as an unprivileged user (`nobody`) with ambient capabilities
//!   (`setpriv`), as `DynamicUser=yes` runs it;
//! - the DaemonSet's set, in a container as Kubernetes runs it: uid 0, every other capability
//!   dropped, the runtime's default seccomp profile, hostPID, the host's network, a read-only
//!   root and read-only btf and tracefs (`podman --runtime runc`, Debian's packages).
//!
//! Each run must attach every program (no warning: CAP_SYSLOG gives the TIME_WAIT timers),
//! snapshot a namespace other than its own (CAP_SYS_ADMIN: setns) and name the owner of a
//! socket made before it started by a process of another user (CAP_SYS_PTRACE and
//! CAP_DAC_READ_SEARCH: the owner walk); as `nobody`, its ring buffer reader must also run at
//! SCHED_FIFO (CAP_SYS_NICE; in the container this machine's cgroups forbid it, see there).

use std::{process::Command, time::Duration};

use portwatch_tests::{
    Netns,
    live::{Scenario, portwatch_bin},
    serve::{Agent, get},
};

const SCENARIO: &str = env!("CARGO_BIN_EXE_pw-scenario");

fn deploy(path: &str) -> String {
    let p = format!("{}/../deploy/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// The unit's `AmbientCapabilities`, as `setpriv` spells them (`bpf,perfmon,…`).
fn unit_caps() -> String {
    let unit = deploy("systemd/portwatch.service");
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities");
    caps.split(' ')
        .map(|c| c.trim_start_matches("CAP_").to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// The DaemonSet's `capabilities.add`, as podman spells them.
fn daemonset_caps() -> String {
    let ds = deploy("kubernetes/daemonset.yaml");
    let line = ds
        .lines()
        .find(|l| l.trim_start().starts_with("add: ["))
        .expect("capabilities.add");
    line.split(['[', ']', ',', '"', ' '])
        .filter(|c| !c.is_empty() && *c != "add:")
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts a listener in a fresh namespace (a process of its own, root's: another user than
/// `nobody`, and the one process that holds the namespace, as a pod's would), then the agent
/// through `wrapper`, and checks what it could do.
fn check_agent(wrapper: &[&str], bin: &str, realtime: bool) {
    let ns = Netns::new("lp");
    let mut sc = Scenario::start(SCENARIO, &ns, "pw-lplisten", &["listen", "127.0.0.1:8080"]);
    sc.wait("ready", None, Duration::from_secs(20));
    let agent = Agent::start_as(wrapper, bin, ns.inode, &["--refresh", "250ms"]);
    let (status, body) = get(agent.addr, "/report.json");
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listener = r["listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["local"] == "127.0.0.1:8080"))
        .unwrap_or_else(|| panic!("the listener made before start: {r:#}"));
    assert_eq!(listener["owner"]["pid"], sc.pid, "owner walk: {listener:#}");
    if realtime {
        assert_eq!(
            reader_policy(&agent.addr.to_string()),
            Some(SCHED_FIFO),
            "the ring reader's scheduling policy (CAP_SYS_NICE)"
        );
    }
    let (status, _, log) = agent.terminate();
    assert!(status.success(), "{}", log.join("\n"));
    let warnings: Vec<&String> = log.iter().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.is_empty(),
        "with only these capabilities: {warnings:#?}"
    );
}

const SCHED_FIFO: u64 = 1;

/// The scheduling policy of the ring reader thread (`portwatch-ring`) of the agent listening on
/// `listen` (found by its command line), from `/proc/PID/task/TID/stat` (field 41, `policy`).
fn reader_policy(listen: &str) -> Option<u64> {
    for p in std::fs::read_dir("/proc").ok()?.flatten() {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains(listen) {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() != "portwatch-ring" {
                continue;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the parenthesised comm start at field 3 (state).
            let rest = &stat[stat.rfind(')')? + 2..];
            return rest.split_whitespace().nth(41 - 3)?.parse().ok();
        }
    }
    None
}

#[test]
fn the_systemd_units_capabilities_suffice_for_an_unprivileged_user() {
    let caps = unit_caps();
    assert!(
        caps.contains("bpf") && !caps.contains("net_admin"),
        "{caps}"
    );
    let inh = format!("-all,{}", plus(&caps));
    check_agent(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps={inh}"),
            &format!("--ambient-caps={inh}"),
            &format!("--bounding-set={inh}"),
        ],
        &portwatch_bin(),
        true,
    );
}

fn plus(caps: &str) -> String {
    caps.split(',')
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// An image with nothing but mount points: the binary and the libraries it links come from
/// read-only bind mounts of the host.
fn empty_image() -> &'static str {
    const IMAGE: &str = "localhost/portwatch-least-privilege:1";
    let dir = std::env::temp_dir().join(format!("pw-lp-root-{}", std::process::id()));
    for d in [
        "proc",
        "sys/kernel/btf",
        "sys/kernel/tracing",
        "dev",
        "etc",
        "tmp",
    ] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for d in ["usr", "lib", "lib64", "pw"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let tar = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -cf - . | podman import - {IMAGE}",
            dir.display()
        ))
        .output()
        .expect("spawn tar | podman import (Debian package podman, installed by .ci/run)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        tar.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&tar.stderr)
    );
    IMAGE
}

#[test]
fn the_daemonsets_capabilities_suffice_in_a_container() {
    let caps = daemonset_caps();
    assert!(
        caps.contains("sys_admin") && !caps.contains("net_admin"),
        "{caps}"
    );
    let image = empty_image();
    let name = format!("pw-lp-{}", std::process::id());
    let bin = format!("{}:/pw/portwatch:ro", portwatch_bin());
    let wrapper = [
        "podman",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "run",
        "--rm",
        "--name",
        &name,
        "--cap-drop=all",
        &format!("--cap-add={caps}"),
        "--pid=host",
        "--network=host",
        "--read-only",
        // With every capability dropped runc cannot raise limits: these are below the host's.
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=2048:2048",
        "-v",
        "/sys/kernel/btf:/sys/kernel/btf:ro",
        "-v",
        "/sys/kernel/tracing:/sys/kernel/tracing:ro",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/lib:/lib:ro",
        "-v",
        "/lib64:/lib64:ro",
        "-v",
        &bin,
        image,
    ];
    // CAP_SYS_NICE is granted, but SCHED_FIFO is not checked here: this kernel has real-time
    // group scheduling (cgroup v1 `cpu.rt_runtime_us`), and the cgroup podman makes for the
    // container (under libpod_parent) gets no real-time budget (0 µs), so the kernel refuses
    // SCHED_FIFO to any of its threads whatever their capabilities (EPERM); the reader then
    // stays a normal thread.
    check_agent(&wrapper, "/pw/portwatch", false);
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
}
