//! Issue 12: the deployment files under `deploy/`, checked offline by the tools their users
//! run: the Prometheus alert rules by `promtool check rules` and their unit tests by `promtool
//! test rules` (Debian's `prometheus` package), the Kubernetes manifests by `kubernetes-validate`
//! (PyPI), the systemd unit by `systemd-analyze verify`; all installed by .ci/run, all offline.
//! Fails (never skips) without them.

use std::{path::PathBuf, process::Command};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?} (installed by .ci/run): {e}"));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {said}");
    said
}

#[test]
fn alert_rules_pass_promtool_check() {
    let said = run(Command::new("promtool")
        .args(["check", "rules"])
        .arg(deploy().join("prometheus/portwatch.rules.yaml")));
    assert!(said.contains("SUCCESS: 5 rules found"), "{said}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let said = run(Command::new("promtool")
        .args(["test", "rules", "portwatch.rules.test.yaml"])
        .current_dir(deploy().join("prometheus")));
    assert!(said.contains("SUCCESS"), "{said}");
}

/// `kubernetes-validate` (PyPI; installed by .ci/run): the Kubernetes API's own OpenAPI
/// schemas, bundled in the package, so it runs offline; `--strict` rejects unknown fields.
/// The Prometheus Operator's kinds have no bundled schema: it says so, and they are checked
/// for consistency with the DaemonSet below.
#[test]
fn kubernetes_manifests_validate_offline() {
    let dir = deploy().join("kubernetes");
    let said = run(Command::new("kubernetes-validate")
        .arg("--strict")
        .args(["namespace.yaml", "daemonset.yaml", "service.yaml"])
        .args(["servicemonitor.yaml", "podmonitor.yaml"])
        .current_dir(&dir));
    for r in [
        "namespace/portwatch",
        "daemonset/portwatch",
        "service/portwatch",
    ] {
        assert!(said.contains(&format!("passed for resource {r}")), "{said}");
    }
    // It does reject a wrong field (so "passed" means something).
    let bad = std::env::temp_dir().join(format!("pw-bad-ds-{}.yaml", std::process::id()));
    let ds = std::fs::read_to_string(dir.join("daemonset.yaml")).unwrap();
    std::fs::write(&bad, ds.replace("hostPID: true", "hostPid: true")).unwrap();
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&bad);
    assert!(!out.status.success(), "a misspelt field passed");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The DaemonSet, the Service, the monitors and the systemd unit agree with each other and
/// with the binary: one port (the default), one port name, one label, the same capabilities.
#[test]
fn deployment_files_agree() {
    let port = portwatch::serve::DEFAULT_PORT.to_string();
    let ds = read("kubernetes/daemonset.yaml");
    let svc = read("kubernetes/service.yaml");
    assert!(ds.contains(&format!("--listen=$(POD_IP):{port}")), "{ds}");
    assert!(ds.contains(&format!("containerPort: {port}")));
    assert!(svc.contains(&format!("port: {port}")));
    for f in [
        "kubernetes/service.yaml",
        "kubernetes/servicemonitor.yaml",
        "kubernetes/podmonitor.yaml",
    ] {
        let y = read(f);
        assert!(y.contains("app.kubernetes.io/name: portwatch"), "{f}");
        assert!(
            y.contains("port: metrics") || y.contains("targetPort: metrics"),
            "{f}"
        );
    }
    assert!(ds.contains("name: metrics"));
    let unit = read("systemd/portwatch.service");
    assert!(unit.contains(&format!("--listen 127.0.0.1:{port}")));
    let caps_line = ds
        .lines()
        .find(|l| l.trim_start().starts_with("add: ["))
        .expect("the DaemonSet's added capabilities");
    let mut k8s: Vec<String> = caps_line
        .split(['[', ']', ',', '"', ' '])
        .filter(|c| !c.is_empty() && *c != "add:")
        .map(|c| format!("CAP_{c}"))
        .collect();
    let ambient = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities");
    let bounding = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet");
    assert_eq!(ambient, bounding);
    let mut systemd: Vec<String> = ambient.split(' ').map(String::from).collect();
    k8s.sort();
    systemd.sort();
    assert_eq!(
        k8s, systemd,
        "the DaemonSet and the systemd unit grant the same"
    );
    assert!(ds.contains("privileged: false") && ds.contains("drop: [\"ALL\"]"));
}

/// `systemd-analyze verify` on the unit (its ExecStart pointed at the binary under test).
#[test]
fn systemd_unit_verifies() {
    let bin = portwatch_tests::live::portwatch_bin();
    let unit = read("systemd/portwatch.service").replace("/usr/local/bin/portwatch", &bin);
    let dir = std::env::temp_dir().join(format!("pw-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("portwatch.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("spawn systemd-analyze (Debian package systemd, installed by .ci/run)");
    let _ = std::fs::remove_dir_all(&dir);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
