//! The unit file: systemd's own checks (systemd-analyze), and the admin wrapper.

use std::process::Command;

use crate::helpers::{REPO, TestApp};

/// The shipped unit with ExecStart pointing at the binary under test, since
/// `verify` checks that the program exists.
fn unit_under_test(app: &TestApp) -> std::path::PathBuf {
    assert!(
        Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .is_ok(),
        "systemd-analyze is needed for the unit checks: apt-get install systemd"
    );
    let unit = std::fs::read_to_string(format!("{REPO}/systemd/keydates.service")).unwrap();
    let unit = unit.replace(
        "ExecStart=/usr/bin/keydates",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_keydates")),
    );
    app.write("keydates.service", &unit)
}

#[test]
fn systemd_analyze_verify_is_clean() {
    let app = TestApp::new();
    let unit = unit_under_test(&app);
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
    let unit = unit_under_test(&app);
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

/// The admin wrapper runs commands in the service's own sandbox: what it
/// passes to systemd-run, read from the shipped unit.
#[test]
fn the_admin_wrapper_carries_the_units_sandbox() {
    let app = TestApp::new();
    let bin = app.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A stand-in for `systemctl cat`, printing the shipped unit.
    std::fs::write(
        bin.join("systemctl"),
        format!("#!/bin/sh\ncat {REPO}/systemd/keydates.service\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(format!("{REPO}/systemd/keydates-admin"))
        .arg("--print-properties")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let props = String::from_utf8_lossy(&out.stdout);
    for needed in [
        "DynamicUser=yes",
        "StateDirectory=keydates",
        "ProtectSystem=strict",
        "LoadCredential=smtp-password:/etc/keydates/smtp-password",
        "SystemCallFilter=@system-service",
        "Environment=KEYDATES__DATABASE__URL=/var/lib/keydates/keydates.db",
        "LimitCORE=0",
        "UMask=0077",
    ] {
        assert!(
            props.lines().any(|l| l == needed),
            "{needed} missing:\n{props}"
        );
    }
    for daemon_only in ["Type=", "WatchdogSec=", "ExecStart=", "Restart="] {
        assert!(
            !props.lines().any(|l| l.starts_with(daemon_only)),
            "{daemon_only} passed:\n{props}"
        );
    }
}
