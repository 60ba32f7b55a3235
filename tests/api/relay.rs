//! A relay that misbehaves: silent, refusing keydates' login, closing (421),
//! or dropping the connection mid-message. Each is the relay's or keydates'
//! own fault, not the email's: the emails wait, nothing fails for good, and
//! `status` names the cause until the relay works again.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::helpers::{Mode, SmtpServer, TestApp, dropping_server, rows_where, silent_server};

fn riv_request(app: &TestApp) -> serde_json::Value {
    rows_where(&app.outbox(), "child-data-request", "RIV-2026-01#1")[0].clone()
}

/// The row waits for the relay: pending, its error naming the relay.
fn assert_waiting(app: &TestApp) {
    let row = riv_request(app);
    assert_eq!(row["status"], "pending", "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .starts_with("mail relay:"),
        "{row}"
    );
}

/// `status` exits non-zero and names the relay.
fn assert_status_names_the_relay(app: &TestApp) {
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mail relay cannot be used"), "{text}");
}

#[test]
fn a_refused_login_keeps_the_emails_waiting_until_the_password_is_fixed() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "new-pass");
    let mut app = TestApp::with_starttls(&smtp, &tls, "keydates", "old-pass");
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    assert_waiting(&app);
    let failed: Vec<_> = app
        .outbox()
        .into_iter()
        .filter(|r| r["status"] == "failed")
        .collect();
    assert!(
        failed.is_empty(),
        "a refused login fails nothing: {failed:?}"
    );
    assert!(
        riv_request(&app)["last_error"]
            .as_str()
            .unwrap()
            .contains("535"),
    );
    assert_status_names_the_relay(&app);

    // Past the retry lifetime it still waits: the email is not at fault.
    app.set("KEYDATES__SCHEDULE__RETRY_LIFETIME_HOURS", "1");
    app.pass_relay_down("2026-11-24T12:00:00Z");
    assert_waiting(&app);

    app.set("KEYDATES__MAIL__SMTP__PASSWORD", "new-pass");
    app.pass("2026-11-24T14:00:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
    assert!(!smtp.received().is_empty());
    let out = app.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("mail relay"), "{text}");
    // The next daily digest to IMS says, once, that the relay was down.
    app.pass("2026-11-25T09:00:00Z");
    let digests: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == "ims@example.org"))
        .collect();
    assert_eq!(digests.len(), 1);
    let body = digests[0].parsed().body_text(0).unwrap().to_string();
    assert!(body.contains("THE MAIL RELAY COULD NOT BE USED"), "{body}");
    assert!(body.contains("535"), "{body}");
    app.pass("2026-11-26T09:00:00Z");
    let later: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t == "ims@example.org"))
        .filter(|m| {
            m.parsed()
                .body_text(0)
                .is_some_and(|b| b.contains("MAIL RELAY"))
        })
        .collect();
    assert_eq!(later.len(), 1, "said once");
}

#[test]
fn a_relay_closing_with_421_keeps_the_emails_waiting() {
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::Closing);
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    assert_waiting(&app);
    assert!(
        riv_request(&app)["last_error"]
            .as_str()
            .unwrap()
            .contains("421")
    );
    assert_status_names_the_relay(&app);
    smtp.set_mode(Mode::Accept);
    app.pass("2026-11-24T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
}

#[test]
fn a_connection_dropped_mid_message_is_retried_with_the_same_message_id() {
    let dropping = dropping_server();
    let mut app = TestApp::with_smtp(dropping);
    app.import_examples();
    app.pass("2026-11-24");
    // The email is not at fault for good, nor is the relay: retried later.
    let row = riv_request(&app);
    assert_eq!(row["status"], "pending", "{row}");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("connection lost"),
        "{row}"
    );
    let message_id = row["message_id"].as_str().unwrap().to_string();
    let smtp = SmtpServer::start();
    app.set("KEYDATES__MAIL__SMTP__PORT", &smtp.addr.port().to_string());
    app.pass("2026-11-24T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
    let got: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.header("Message-ID").as_deref() == Some(message_id.as_str()))
        .collect();
    assert_eq!(got.len(), 1);
}

#[test]
fn auth_without_tls_is_refused_unless_allowed() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__MAIL__SMTP__USERNAME", "keydates");
    app.set("KEYDATES__MAIL__SMTP__PASSWORD", "pass");
    let err = app.fails(&["send-test", "--to", "admin@example.org"]);
    assert!(err.contains("allow_plaintext_auth"), "{err}");
    assert!(smtp.received().is_empty());
}

#[test]
fn a_username_with_an_empty_password_is_refused() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__MAIL__SMTP__TLS", "starttls");
    app.set("KEYDATES__MAIL__SMTP__USERNAME", "keydates");
    let credentials = app.dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    std::fs::write(credentials.join("smtp-password"), "\n").unwrap();
    app.set("CREDENTIALS_DIRECTORY", credentials.to_str().unwrap());
    let err = app.fails(&["send-test", "--to", "admin@example.org"]);
    assert!(err.contains("password is missing or empty"), "{err}");
}

/// A silent relay: the daemon keeps telling the watchdog it is alive while
/// the send waits, gives the send up at its deadline, and keeps running.
#[test]
fn a_silent_relay_never_starves_the_watchdog_and_the_email_waits() {
    let silent = silent_server();
    let mut app = TestApp::with_smtp(silent);
    app.set("KEYDATES__MAIL__SMTP__TIMEOUT_SECS", "4");
    app.import_examples();
    let socket_path = app.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut daemon = crate::daemon::start(
        &app,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // systemd's WatchdogSec=1s: keydates pings every half of it.
            ("WATCHDOG_USEC", "1000000"),
        ],
        &["run", "--now", "2026-11-24"],
    );
    let start = Instant::now();
    let mut last_ping: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    let mut ready = false;
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(12) {
        let mut buf = [0u8; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            ready |= text.contains("READY=1");
            if ready && text.contains("WATCHDOG=1") {
                let now = Instant::now();
                if let Some(last) = last_ping {
                    longest = longest.max(now - last);
                }
                last_ping = Some(now);
                pings += 1;
            }
        }
    }
    assert!(ready, "{}", crate::daemon::log_of(&app));
    // Every half second for 12 s, less the start: a keepalive that stopped
    // after READY (or never began) shows here, not as a short gap.
    assert!(
        pings >= 15,
        "{pings} keepalives in 12 s\n{}",
        crate::daemon::log_of(&app)
    );
    let quiet_at_end = last_ping.map(|t| t.elapsed()).unwrap_or(Duration::MAX);
    assert!(
        quiet_at_end < Duration::from_millis(1000),
        "no keepalive for the last {quiet_at_end:?}"
    );
    assert!(
        longest < Duration::from_millis(1000),
        "a gap of {longest:?} between keepalives would trip a 1s watchdog\n{}",
        crate::daemon::log_of(&app)
    );
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
    assert_waiting(&app);
    assert_status_names_the_relay(&app);
    crate::daemon::signal(&daemon, "TERM");
    let exit = crate::daemon::wait_exit(&mut daemon, Duration::from_secs(15));
    assert!(exit.success(), "{exit:?}");
}
