//! The unit file: systemd's own checks, where systemd-analyze is installed.

use std::process::Command;

use crate::helpers::{REPO, TestApp};

/// The shipped unit with ExecStart pointing at the binary under test, since
/// `verify` checks that the program exists.
fn unit_under_test(app: &TestApp) -> Option<std::path::PathBuf> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: unit checks skipped");
        return None;
    }
    let unit = std::fs::read_to_string(format!("{REPO}/systemd/keydates.service")).unwrap();
    let unit = unit.replace(
        "ExecStart=/usr/local/bin/keydates",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_keydates")),
    );
    Some(app.write("keydates.service", &unit))
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let app = TestApp::new();
    let Some(unit) = unit_under_test(&app) else {
        return;
    };
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("keydates.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}

#[test]
fn the_unit_is_rated_2_or_lower_by_systemd_analyze_security() {
    let app = TestApp::new();
    let Some(unit) = unit_under_test(&app) else {
        return;
    };
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&unit)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let level: f64 = stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for keydates.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}"));
    assert!(level <= 2.0, "exposure {level}:\n{stdout}");
}
