//! The daemon as a process: systemd notifications, SIGHUP reloads, SIGTERM
//! in the middle of a burst, and `status` for monitoring.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{SmtpServer, TestApp};

pub fn signal(child: &Child, name: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Polls `check` until it holds, for at most `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < limit, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon process; killed if a test fails before it stops it.
pub struct Daemon(pub Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

pub fn start_daemon(app: &TestApp, extra_env: &[(&str, &str)]) -> Daemon {
    start(app, extra_env, &["run", "--now", "2026-11-23"])
}

pub fn start(app: &TestApp, extra_env: &[(&str, &str)], args: &[&str]) -> Daemon {
    start_named(app, "daemon", extra_env, args)
}

/// A daemon of `app` logging to `NAME.log` in its folder, for tests that run
/// several.
pub fn start_named(app: &TestApp, name: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Daemon {
    start_within(app, name, None, extra_env, args)
}

/// A daemon whose open-file limit is `nofile`, as systemd's `LimitNOFILE=` sets it.
pub fn start_with_file_limit(
    app: &TestApp,
    nofile: u32,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> Daemon {
    start_within(app, "daemon", Some(nofile), extra_env, args)
}

fn start_within(
    app: &TestApp,
    name: &str,
    nofile: Option<u32>,
    extra_env: &[(&str, &str)],
    args: &[&str],
) -> Daemon {
    let log = std::fs::File::create(app.dir.path().join(format!("{name}.log"))).unwrap();
    // Through `sh -c exec` so that WATCHDOG_PID can name the daemon's own pid,
    // as systemd does.
    let limit = nofile
        .map(|n| format!("ulimit -n {n} && "))
        .unwrap_or_default();
    // The console's socket, when the test holds one, goes as descriptor 3
    // with LISTEN_FDS and LISTEN_PID, as systemd passes it.
    let activation = if app.console.is_some() {
        "LISTEN_FDS=1 LISTEN_PID=$$ "
    } else {
        ""
    };
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!("{limit}{activation}WATCHDOG_PID=$$ exec \"$0\" \"$@\""),
    ])
    .arg(env!("CARGO_BIN_EXE_keydates"))
    .arg("--config")
    .arg(&app.config)
    .args(args);
    cmd.env_remove("RUST_LOG");
    for (k, v) in &app.env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    if let Some(console) = &app.console {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let fd = console.as_raw_fd();
        // SAFETY: dup2 is async-signal-safe; it gives the child a copy of
        // the socket at 3, without close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                let at_three = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if at_three == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    Daemon(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// Waits until the daemon says its console serves. Connecting tells nothing
/// when the test holds the console's socket: the kernel queues connections
/// from the start.
pub fn console_up(app: &TestApp) -> bool {
    eventually(Duration::from_secs(20), || {
        log_of(app).contains("console listening")
    })
}

pub fn log_of(app: &TestApp) -> String {
    log_named(app, "daemon")
}

pub fn log_named(app: &TestApp, name: &str) -> String {
    std::fs::read_to_string(app.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn ready_and_watchdog_reach_the_notify_socket_and_sigterm_exits_zero() {
    let app = TestApp::new();
    app.import_examples();
    let socket_path = app.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = start_daemon(
        &app,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen = Vec::new();
    let found = eventually(Duration::from_secs(20), || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
        let all = seen.join("\n");
        all.contains("READY=1") && all.contains("WATCHDOG=1") && all.contains("STATUS=")
    });
    assert!(found, "notifications seen: {seen:?}\n{}", log_of(&app));
    let status = seen.iter().find(|s| s.contains("STATUS=")).unwrap();
    assert!(
        status.contains("next:") && status.contains("failed"),
        "{status}"
    );
    signal(&child, "TERM");
    let exit = wait_exit(&mut child, Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}\n{}", log_of(&app));
}

#[test]
fn sighup_keeps_the_old_rules_on_a_broken_config_and_applies_a_valid_one() {
    let mut app = TestApp::new();
    app.own_config(|t| t);
    // Far enough ahead for the outbox to hold December's chase.
    app.set("KEYDATES__SCHEDULE__HORIZON_DAYS", "120");
    app.import_examples();
    let mut child = start_daemon(&app, &[]);
    // Read from the database: the CLI refuses the broken config too.
    let chase_due = |app: &TestApp| {
        ["2026-12-21", "2026-12-14"]
            .into_iter()
            .find(|due| {
                app.count(&format!(
                    "SELECT COUNT(*) FROM outbox WHERE rule_id = 'plan-chase'
                     AND subject = 'NOR-2026-01' AND status = 'awaiting_confirmation'
                     AND due_on = '{due}'"
                )) == 1
            })
            .map(String::from)
    };
    assert!(
        eventually(Duration::from_secs(20), || chase_due(&app).is_some()),
        "first pass never ran:\n{}",
        log_of(&app)
    );
    assert_eq!(chase_due(&app).as_deref(), Some("2026-12-21"));

    let text = std::fs::read_to_string(&app.config).unwrap();
    std::fs::write(
        &app.config,
        text.replace(
            "offset = \"50 working days\"",
            "offset = \"45 wrking days\"",
        ),
    )
    .unwrap();
    signal(&child, "HUP");
    assert!(
        eventually(Duration::from_secs(20), || log_of(&app)
            .contains("config not reloaded")),
        "{}",
        log_of(&app)
    );
    assert!(
        log_of(&app).contains("45 wrking days"),
        "the reason is logged"
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(
        chase_due(&app).as_deref(),
        Some("2026-12-21"),
        "old rule in force"
    );

    std::fs::write(
        &app.config,
        text.replace(
            "offset = \"50 working days\"",
            "offset = \"45 working days\"",
        ),
    )
    .unwrap();
    signal(&child, "HUP");
    assert!(
        eventually(Duration::from_secs(20), || chase_due(&app).as_deref()
            == Some("2026-12-14")),
        "new offset never applied:\n{}",
        log_of(&app)
    );
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}

#[test]
fn sigterm_during_a_burst_leaves_every_email_sent_or_pending() {
    // Both the daemon and a single pass finish the sends in hand and exit 0.
    for args in [
        &["run", "--now", "2026-11-23"][..],
        &["run", "--once", "--now", "2026-11-23"][..],
    ] {
        let smtp = SmtpServer::start();
        let app = TestApp::with_smtp(smtp.addr);
        app.import_same_day_cases(300);
        let mut child = start(&app, &[], args);
        assert!(
            eventually(Duration::from_secs(30), || !smtp.received().is_empty()),
            "{}",
            log_of(&app)
        );
        signal(&child, "TERM");
        let exit = wait_exit(&mut child, Duration::from_secs(15));
        assert!(exit.success(), "{args:?}: {exit:?}\n{}", log_of(&app));
        let rows = app.outbox();
        let sent = rows.iter().filter(|r| r["status"] == "sent").count();
        let sending = rows.iter().filter(|r| r["status"] == "sending").count();
        assert_eq!(sending, 0, "{args:?}: nothing half-done");
        assert_eq!(
            sent,
            smtp.received().len(),
            "{args:?}: every sent row was received, and only those"
        );
        // The rest go on the next pass.
        app.pass("2026-11-23T09:30:00Z");
        assert_eq!(smtp.received().len(), 300);
    }
}

#[test]
fn status_exit_codes_for_healthy_stale_and_failed() {
    let app = TestApp::new();
    app.ok(&["run", "--dry-run"]);
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "no pass yet");
    app.ok(&["run", "--once"]);
    let out = app.run(&["status", "--format", "json"]);
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{health}");
    assert_eq!(health["healthy"], true);
    assert!(
        health["database"]
            .as_str()
            .unwrap()
            .starts_with("answered in "),
        "{health}"
    );

    app.ok(&["run", "--once", "--now", "2026-01-05"]);
    let out = app.run(&["status", "--format", "json"]);
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "stale: {health}");
    assert!(
        health["problems"][0]
            .as_str()
            .unwrap()
            .contains("last pass")
    );

    let smtp = SmtpServer::start();
    smtp.set_mode(crate::helpers::Mode::RejectRecipients);
    let failing = TestApp::with_smtp(smtp.addr);
    failing.import_examples();
    failing.pass("2026-11-24");
    failing.ok(&["run", "--once"]);
    let out = failing.run(&["status", "--format", "json"]);
    let health: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "failed: {health}");
    assert!(
        health["counts"]["failed"].as_i64().unwrap() >= 1,
        "{health}"
    );
}
