//! Issue 12: the deployment files under `deploy/`, checked offline by the tools their users
//! run: the Prometheus alert rules by `promtool check rules` and their unit tests by `promtool
//! test rules` (Debian's `prometheus` package, installed by .ci/run). Fails without promtool.

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
