//! Delivery through a real SMTP server that refuses, is down, stalls, wants
//! STARTTLS and a password, or loses its client to `kill -9`.

use std::time::{Duration, Instant};

use crate::helpers::{ClosedPort, Mode, SmtpServer, TestApp, rows_where, silent_server};

/// What reached Riverton's coordinator (the daily digest to IMS aside).
fn to_riverton(smtp: &SmtpServer) -> Vec<crate::helpers::Received> {
    smtp.received()
        .into_iter()
        .filter(|m| {
            m.to.iter()
                .any(|t| t == "coordinator@riverton.example.gov.uk")
        })
        .collect()
}

/// RIV's first data request falls due on 24 November 2026.
fn riv_request(app: &TestApp) -> serde_json::Value {
    rows_where(&app.outbox(), "child-data-request", "RIV-2026-01#1")[0].clone()
}

#[test]
fn a_5xx_refusal_fails_at_once_and_is_not_retried() {
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::RejectRecipients);
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    let row = riv_request(&app);
    assert_eq!(row["status"], "failed");
    assert_eq!(row["attempts"], 1);
    assert!(row["last_error"].as_str().unwrap().contains("550"), "{row}");
    smtp.set_mode(Mode::Accept);
    app.pass("2026-11-24T15:00:00Z");
    assert_eq!(riv_request(&app)["attempts"], 1, "not retried");
    assert!(to_riverton(&smtp).is_empty());
    // Shown to admins, who can send it again.
    let failed: Vec<serde_json::Value> =
        serde_json::from_str(&app.ok(&["outbox", "--status", "failed", "--format", "json"]))
            .unwrap();
    let request = rows_where(&failed, "child-data-request", "RIV-2026-01#1");
    assert_eq!(request.len(), 1);
    let id = request[0]["id"].to_string();
    app.ok(&["retry", &id]);
    app.pass("2026-11-24T15:05:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
    assert_eq!(to_riverton(&smtp).len(), 1);
}

#[test]
fn a_server_that_is_down_is_retried_and_delivered_when_it_returns() {
    let port = ClosedPort::new();
    let app = TestApp::with_smtp(port.addr());
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    let row = riv_request(&app);
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attempts"], 1);
    assert!(row["next_attempt_at"].as_str().unwrap() > "2026-11-24T09:00:00Z");
    // Before the back-off has run out nothing is tried.
    app.pass_relay_down("2026-11-24T09:00:30Z");
    assert_eq!(riv_request(&app)["attempts"], 1);
    let smtp = SmtpServer::start_with(port.listen());
    app.pass("2026-11-24T11:00:00Z");
    let row = riv_request(&app);
    assert_eq!(row["status"], "sent", "{row}");
    assert_eq!(row["attempts"], 2);
    let got = to_riverton(&smtp);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("Message-ID").unwrap(),
        row["message_id"].as_str().unwrap(),
        "the retry keeps its Message-ID"
    );
}

#[test]
fn a_transient_4xx_is_retried_then_fails_after_the_retry_lifetime() {
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::TempFail);
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__SCHEDULE__RETRY_LIFETIME_HOURS", "2");
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(riv_request(&app)["status"], "pending");
    app.pass("2026-11-24T10:00:00Z");
    app.pass("2026-11-24T12:00:00Z");
    let row = riv_request(&app);
    assert_eq!(row["status"], "failed", "{row}");
    assert!(
        row["last_error"].as_str().unwrap().contains("gave up"),
        "{row}"
    );
}

#[test]
fn a_server_that_stalls_times_out_and_is_retried() {
    let stalled = silent_server();
    let mut app = TestApp::with_smtp(stalled);
    app.set("KEYDATES__MAIL__SMTP__TIMEOUT_SECS", "1");
    app.import_examples();
    app.pass_relay_down("2026-11-24");
    let row = riv_request(&app);
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attempts"], 1, "{row}");
    let smtp = SmtpServer::start();
    app.set("KEYDATES__MAIL__SMTP__PORT", &smtp.addr.port().to_string());
    app.pass("2026-11-24T11:00:00Z");
    assert_eq!(riv_request(&app)["status"], "sent");
    assert_eq!(to_riverton(&smtp).len(), 1);
}

#[test]
fn starttls_with_a_password_sends() {
    let (smtp, tls) = SmtpServer::start_tls("keydates", "s3cret-pass");
    let mut app = TestApp::with_starttls(&smtp, &tls, "keydates", "s3cret-pass");
    let out = app.ok(&["send-test", "--to", "admin@example.org"]);
    assert!(out.starts_with("sent: 250"), "{out}");
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(smtp.received()[0].to, ["admin@example.org"]);
    assert!(smtp.received()[0].tls, "the session was upgraded to TLS");
    assert_eq!(smtp.received()[0].login.as_deref(), Some("keydates"));
    assert!(!tls.cert_pem.is_empty());

    app.set("KEYDATES__MAIL__SMTP__PASSWORD", "wrong");
    let err = app.fails(&["send-test", "--to", "admin@example.org"]);
    assert!(err.contains("535") || err.contains("credentials"), "{err}");
}

#[test]
fn a_crash_between_claim_and_send_loses_nothing() {
    // The server accepts and says nothing, so the send hangs after the claim.
    let stalled = silent_server();
    let mut app = TestApp::with_smtp(stalled);
    app.set("KEYDATES__MAIL__SMTP__TIMEOUT_SECS", "30");
    app.import_examples();
    let mut child = app
        .command()
        .args(["run", "--once", "--now", "2026-11-24"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Several workers claim side by side: wait for this email's own claim.
    while app.count(
        "SELECT COUNT(*) FROM outbox WHERE rule_id = 'child-data-request'
         AND subject = 'RIV-2026-01#1' AND status = 'sending'",
    ) == 0
    {
        assert!(start.elapsed() < Duration::from_secs(30), "never claimed");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let claimed = riv_request(&app);
    assert_eq!(claimed["status"], "sending");
    let message_id = claimed["message_id"].as_str().unwrap().to_string();

    let smtp = SmtpServer::start();
    app.set("KEYDATES__MAIL__SMTP__PORT", &smtp.addr.port().to_string());
    app.pass("2026-11-24T09:01:00Z");
    let row = riv_request(&app);
    assert_eq!(row["status"], "sent");
    let got = to_riverton(&smtp);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("Message-ID").unwrap(), message_id);
}

#[test]
fn an_address_outside_the_allow_list_fails_with_the_reason() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.own_config(|t| {
        t.replace(
            "allowed_domains = []",
            "allowed_domains = [\"example.gov.uk\", \"example.org\"]",
        )
    });
    let authorities = std::fs::read_to_string(crate::helpers::examples().join("authorities.csv"))
        .unwrap()
        .replace(
            "coordinator@riverton.example.gov.uk",
            "coordinator@riverton.example.gov.uk.typo",
        );
    assert!(
        app.import("authorities", "a.csv", &authorities)
            .status
            .success()
    );
    for kind in ["cases", "visits", "seminars", "delegates"] {
        let f = crate::helpers::examples().join(format!("{kind}.csv"));
        app.ok(&["import", kind, f.to_str().unwrap()]);
    }
    app.pass("2026-11-24");
    let row = riv_request(&app);
    assert_eq!(row["status"], "failed");
    assert!(
        row["last_error"]
            .as_str()
            .unwrap()
            .contains("allowed_domains"),
        "{row}"
    );
    assert!(to_riverton(&smtp).is_empty());
}

#[test]
fn redirect_all_sends_everything_to_one_address_listing_the_real_ones() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__MAIL__REDIRECT_ALL_TO", "trial@example.org");
    app.import_examples();
    app.pass("2026-11-24");
    let got = smtp.received();
    assert!(!got.is_empty());
    assert!(
        got.iter().all(|m| m.to == ["trial@example.org"]),
        "only the trial inbox"
    );
    let got: Vec<_> = got
        .into_iter()
        .filter(|m| {
            m.parsed()
                .subject()
                .is_some_and(|s| s.starts_with("[Trial] Riverton"))
        })
        .collect();
    assert_eq!(got.len(), 1);
    let text = got[0].parsed().body_text(0).unwrap().to_string();
    assert!(
        text.contains("coordinator@riverton.example.gov.uk"),
        "{text}"
    );
}

#[test]
fn a_write_lock_held_elsewhere_is_waited_out_and_nothing_is_lost() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let db = app.db_path();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    // Another process's long write transaction, stood in for by a connection
    // of this one: held for two seconds while the pass runs, then committed.
    let sent_while_held = std::thread::scope(|scope| {
        let holder = scope.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    let mut conn =
                        sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                            .await
                            .unwrap();
                    sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    sqlx::query("UPDATE daemon_state SET value = value")
                        .execute(&mut conn)
                        .await
                        .unwrap();
                    locked_tx.send(()).unwrap();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    // Unblocked, the pass would have sent long before now.
                    let sent = to_riverton(&smtp).len();
                    sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
                    sent
                })
        });
        locked_rx.recv().unwrap();
        app.pass("2026-11-24");
        holder.join().unwrap()
    });
    assert_eq!(sent_while_held, 0, "the pass waited for the lock");
    assert_eq!(riv_request(&app)["status"], "sent");
    assert_eq!(to_riverton(&smtp).len(), 1);
}

/// The examples after a pass in which the data request failed for good (and
/// the digest could not go either); the relay now accepts.
fn a_failure_to_report() -> (SmtpServer, TestApp) {
    let smtp = SmtpServer::start();
    smtp.set_mode(Mode::RejectRecipients);
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(riv_request(&app)["status"], "failed");
    smtp.set_mode(Mode::Accept);
    (smtp, app)
}

#[test]
fn failed_and_missed_actions_reach_ims_in_one_daily_digest() {
    let (smtp, app) = a_failure_to_report();
    app.pass("2026-11-24T11:00:00Z");
    let digests = |smtp: &SmtpServer| -> Vec<crate::helpers::Received> {
        smtp.received()
            .into_iter()
            .filter(|m| m.to == ["ims@example.org"])
            .collect()
    };
    let got = digests(&smtp);
    assert_eq!(got.len(), 1, "one digest");
    let subject = got[0].parsed().subject().unwrap().to_string();
    let failed = app.count("SELECT COUNT(*) FROM outbox WHERE status = 'failed'");
    assert!(subject.contains(&format!("{failed} failed")), "{subject}");
    let text = got[0].parsed().body_text(0).unwrap().to_string();
    assert!(
        text.contains("RIV-2026-01#1") && text.contains("550"),
        "{text}"
    );
    // Once a day, and only for what it has not reported.
    app.pass("2026-11-24T15:00:00Z");
    app.pass("2026-11-25");
    assert_eq!(digests(&smtp).len(), 1);
}

/// Two processes on one SQLite file at the digest hour (the daemon and a
/// `run --once`, say): IMS gets one digest, not two.
#[test]
fn two_processes_on_one_sqlite_file_send_the_digest_once() {
    let (smtp, app) = a_failure_to_report();
    // The relay takes its time over each message, so the two overlap.
    smtp.script(|s| s.final_delay = std::time::Duration::from_secs(2));
    let both: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = app.command();
            cmd.args(["run", "--once", "--now", "2026-11-24T11:00:00Z"]);
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in both {
        assert!(p.wait().unwrap().success());
    }
    let digests = smtp
        .received()
        .into_iter()
        .filter(|m| m.to == ["ims@example.org"])
        .count();
    assert_eq!(digests, 1, "one digest for the day");
}

/// The worker step, driven directly: each call claims one due email, sends
/// it through the real server and records the outcome; then it is idle.
#[test]
fn the_worker_step_sends_one_due_email_per_call_then_idles() {
    use keydates::delivery::{Clock, Engine, Outcome, try_deliver_one};
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let settings = app.settings_sending_to(&smtp);
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T09:00:00Z")
        .unwrap()
        .to_utc();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The SMTP pool lives on the runtime: build and drop it inside.
        let engine = std::sync::Arc::new(Engine::new(settings).unwrap());
        let pool = keydates::db::connect(&engine.settings).await.unwrap();
        keydates::delivery::plan_if_changed(&engine, &pool, now)
            .await
            .unwrap();
        let mut sent = Vec::new();
        loop {
            match try_deliver_one(&engine, &pool, "test-worker", Clock::Fixed(now))
                .await
                .unwrap()
            {
                Outcome::Sent { id } => sent.push(id),
                Outcome::Idle => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(!sent.is_empty());
        assert_eq!(smtp.received().len(), sent.len());
        for id in sent {
            let row = keydates::outbox::get(&pool, id).await.unwrap().unwrap();
            assert_eq!(row.status, keydates::outbox::Status::Sent);
            assert!(row.server_reply.unwrap().starts_with("250"));
        }
        let again = try_deliver_one(&engine, &pool, "test-worker", Clock::Fixed(now))
            .await
            .unwrap();
        assert_eq!(again, Outcome::Idle, "nothing is sent twice");
        pool.close().await;
    });
}

// The write-lock test is about SQLite's single writer; the rest hold on both.
crate::on_postgres_too!(
    a_5xx_refusal_fails_at_once_and_is_not_retried,
    a_server_that_is_down_is_retried_and_delivered_when_it_returns,
    a_transient_4xx_is_retried_then_fails_after_the_retry_lifetime,
    a_server_that_stalls_times_out_and_is_retried,
    starttls_with_a_password_sends,
    a_crash_between_claim_and_send_loses_nothing,
    an_address_outside_the_allow_list_fails_with_the_reason,
    redirect_all_sends_everything_to_one_address_listing_the_real_ones,
    failed_and_missed_actions_reach_ims_in_one_daily_digest,
    the_worker_step_sends_one_due_email_per_call_then_idles,
);

/// A case changed by hand in the database (a number in a date column) is
/// named and left as it is; every other email goes.
#[test]
fn a_damaged_case_is_named_and_skipped_while_the_other_emails_go() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-20");
    let sou_open = |app: &TestApp| {
        app.count(
            "SELECT COUNT(*) FROM outbox WHERE subject LIKE 'SOU-2026-01%'
               AND status IN ('pending', 'awaiting_confirmation')",
        )
    };
    let before = sou_open(&app);
    app.edit_by_hand(
        "UPDATE cases SET report_received_on = 20261102 WHERE case_ref = 'SOU-2026-01'",
    );
    app.edit_by_hand(
        "UPDATE seminars SET confirmed = 'maybe' WHERE seminar_ref = 'G2G-NW-2027-01'",
    );
    let out = app.run(&["run", "--once", "--now", "2026-11-24"]);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("SOU-2026-01") && log.contains("report_received_on"),
        "{log}"
    );
    assert!(
        log.contains("G2G-NW-2027-01") && log.contains("confirmed"),
        "{log}"
    );
    let seminar_sent = smtp
        .received()
        .into_iter()
        .filter(|m| !m.to.iter().any(|t| t == "ims@example.org"))
        .filter(|m| m.text().contains("G2G-NW-2027-01"))
        .count();
    assert_eq!(seminar_sent, 0, "nothing goes from a damaged seminar");
    // Everything else went.
    assert_eq!(riv_request(&app)["status"], "sent");
    assert!(!to_riverton(&smtp).is_empty());
    // IMS hear of both in the digest.
    let digest = smtp
        .received()
        .into_iter()
        .find(|m| {
            m.to.iter().any(|t| t == "ims@example.org")
                && m.parsed()
                    .subject()
                    .unwrap_or_default()
                    .starts_with("keydates:")
        })
        .expect("a digest");
    assert!(
        digest.text().contains("RECORDS THAT DO NOT READ BACK: 2"),
        "{}",
        digest.text()
    );
    // The damaged case's emails are neither cancelled nor changed on a guess.
    assert_eq!(sou_open(&app), before);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE subject LIKE 'SOU-2026-01%' AND cancelled_by = 'plan'"),
        0
    );
    // A new day plans every record: the same.
    app.pass("2026-11-25");
    assert_eq!(sou_open(&app), before);
    let out = app.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not read back"), "{text}");
    assert!(
        text.contains("2 stored records are not read back"),
        "{text}"
    );
    // Put right, it is planned again and nothing is reported.
    app.edit_by_hand(
        "UPDATE cases SET report_received_on = '2026-11-02' WHERE case_ref = 'SOU-2026-01'",
    );
    app.edit_by_hand("UPDATE seminars SET confirmed = 0 WHERE seminar_ref = 'G2G-NW-2027-01'");
    app.pass("2026-11-25T10:00:00Z");
    let text = String::from_utf8_lossy(&app.run(&["status"]).stdout).to_string();
    assert!(!text.contains("not read back"), "{text}");
}
