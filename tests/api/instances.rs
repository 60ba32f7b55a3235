//! Several daemons against one PostgreSQL database: each email once, the
//! live instances in `status`, a change through one waking the others, and
//! nothing lost when one is killed or the server restarts. And moving an
//! installation from SQLite with `migrate-db`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Daemon, eventually, log_named as log, signal, start_named, wait_exit};
use crate::helpers::{Received, SmtpServer, TestApp};
use crate::pg::{self, PgServer};

/// Emails the daemon's log says it sent.
fn sent_by(app: &TestApp, name: &str) -> usize {
    log(app, name)
        .lines()
        .filter(|l| l.contains("}: sent reply="))
        .count()
}

/// An app on a new database of `server`, sending to `smtp`, looking every
/// second.
fn on(server: &PgServer, smtp: &SmtpServer) -> TestApp {
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__DATABASE__URL", &server.new_database());
    app.set("KEYDATES__SCHEDULE__POLL", "* * * * * *");
    app
}

fn message_ids(received: &[Received]) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for r in received {
        *ids.entry(r.header("Message-ID").unwrap()).or_insert(0) += 1;
    }
    ids
}

fn status_json(app: &TestApp) -> Value {
    let out = app.run(&["status", "--format", "json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_instances_send_each_email_once_and_status_lists_them() {
    let smtp = SmtpServer::start();
    let app = on(pg::shared(), &smtp);
    app.import_same_day_cases(300);
    let args = ["run", "--now", "2026-11-23"];
    let mut a = start_named(&app, "a", &[], &args);
    let mut b = start_named(&app, "b", &[], &args);
    assert!(
        eventually(Duration::from_secs(60), || smtp.received().len() >= 300),
        "{}\n{}",
        log(&app, "a"),
        log(&app, "b")
    );
    // Every row settled: no send is in flight that could bring a second copy.
    assert!(eventually(Duration::from_secs(30), || app
        .count("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'")
        == 0));
    let ids = message_ids(&smtp.received());
    assert_eq!(ids.len(), 300);
    assert!(ids.values().all(|&n| n == 1), "duplicates: {ids:?}");
    assert_eq!(sent_by(&app, "a") + sent_by(&app, "b"), 300);

    let health = status_json(&app);
    let names: Vec<&str> = health["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{health}");
    for child in [&a, &b] {
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(&format!(":{}", child.id()))),
            "{names:?} names each daemon"
        );
    }
    assert_eq!(health["backend"], "postgres");
    // The fixed clock makes the last pass look stale: exit 2, as it should.
    let table = String::from_utf8(app.run(&["status"]).stdout).unwrap();
    assert!(table.contains("instances running: 2"), "{table}");

    signal(&a, "TERM");
    assert!(wait_exit(&mut a, Duration::from_secs(15)).success());
    let health = status_json(&app);
    assert_eq!(health["instances"].as_array().unwrap().len(), 1, "{health}");
    signal(&b, "TERM");
    assert!(wait_exit(&mut b, Duration::from_secs(15)).success());
}

#[test]
fn a_change_made_elsewhere_wakes_a_daemon_at_once() {
    let smtp = SmtpServer::start();
    let mut app = on(pg::shared(), &smtp);
    // It would look again next year: only a change can wake it.
    app.set("KEYDATES__SCHEDULE__POLL", "0 0 0 1 1 *");
    let daemon = start_named(&app, "a", &[], &["run", "--now", "2026-11-23"]);
    assert!(
        eventually(Duration::from_secs(30), || {
            status_json(&app)["last_pass_at"].is_string()
        }),
        "{}",
        log(&app, "a")
    );
    assert!(smtp.received().is_empty());
    app.import_same_day_cases(3);
    assert!(
        eventually(Duration::from_secs(15), || smtp.received().len() == 3),
        "the import did not wake the daemon:\n{}",
        log(&app, "a")
    );
    drop(daemon);
}

/// The id of the one row for `rule` and `subject`.
fn row_id(app: &TestApp, rule: &str, subject: &str) -> String {
    let outbox = app.outbox();
    let rows = crate::helpers::rows_where(&outbox, rule, subject);
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0]["id"].to_string()
}

#[test]
fn a_retry_or_a_confirm_made_elsewhere_wakes_a_daemon_at_once() {
    let smtp = SmtpServer::start();
    let mut app = on(pg::shared(), &smtp);
    // It would look again next year: only a change can wake it.
    app.set("KEYDATES__SCHEDULE__POLL", "0 0 0 1 1 *");
    app.import_examples();
    // The data request fails for good; the chase is held for confirmation.
    smtp.set_mode(crate::helpers::Mode::RejectRecipients);
    app.pass("2026-11-24");
    smtp.set_mode(crate::helpers::Mode::Accept);
    let request = row_id(&app, "child-data-request", "RIV-2026-01#1");
    let status_of = |id: &str| {
        app.count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE id = {id} AND status = 'sent'"
        ))
    };
    // Its first pass done (the clock it was given is the pass's time).
    let passed_at = |prefix: &str| {
        status_json(&app)["last_pass_at"]
            .as_str()
            .is_some_and(|t| t.starts_with(prefix))
    };
    // A daemon started at `now` that would look again only next year: once
    // its first pass is done, `command` on `id` must wake it.
    let wakes = |name: &str, now: &str, command: &[&str], id: &str| {
        let daemon = start_named(&app, name, &[], &["run", "--now", now]);
        assert!(
            eventually(Duration::from_secs(30), || passed_at(&now[..13])),
            "{}",
            log(&app, name)
        );
        assert_eq!(status_of(id), 0, "not sent before the {command:?}");
        app.ok(command);
        assert!(
            eventually(Duration::from_secs(15), || status_of(id) == 1),
            "the {command:?} did not wake the daemon:\n{}",
            log(&app, name)
        );
        drop(daemon);
    };
    wakes("a", "2026-11-24T12:00:00Z", &["retry", &request], &request);
    app.pass("2026-12-22");
    let chase = row_id(&app, "plan-chase", "NOR-2026-01");
    // The lead inspector has confirmed; the senior HMI's confirmation wakes it.
    app.ok(&["confirm", &chase, "--as", "lead_inspector"]);
    wakes(
        "b",
        "2026-12-22T12:00:00Z",
        &["confirm", &chase, "--as", "shmi"],
        &chase,
    );
}

#[test]
fn the_daily_digest_goes_once_however_many_instances_look_at_once() {
    let smtp = SmtpServer::start();
    smtp.set_mode(crate::helpers::Mode::RejectRecipients);
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__DATABASE__URL", &pg::shared().new_database());
    app.import_examples();
    // The data request fails for good; the digest cannot go yet either.
    app.pass("2026-11-24");
    smtp.set_mode(crate::helpers::Mode::Accept);

    let settings = app.settings_sending_to(&smtp);
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T11:00:00Z")
        .unwrap()
        .to_utc();
    let sent = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let engine = keydates::delivery::Engine::new(settings).unwrap();
            // Four instances' connections, each looking at the same moment.
            let mut pools = Vec::new();
            for _ in 0..4 {
                pools.push(keydates::db::connect(&engine.settings).await.unwrap());
            }
            let look = |pool| keydates::delivery::send_digest_if_due(&engine, pool, now);
            let (a, b, c, d) = tokio::join!(
                look(&pools[0]),
                look(&pools[1]),
                look(&pools[2]),
                look(&pools[3])
            );
            [a, b, c, d]
                .into_iter()
                .filter(|r| *r.as_ref().unwrap())
                .count()
        });
    let digests = smtp
        .received()
        .into_iter()
        .filter(|m| m.to == ["ims@example.org"])
        .count();
    assert_eq!(
        (sent, digests),
        (1, 1),
        "one digest a day, from one instance"
    );
}

/// What a burst of emails came to, for two instances.
#[derive(Debug)]
#[allow(dead_code)] // printed, for BENCHMARKS.md
struct Burst {
    due: usize,
    received: usize,
    unique: usize,
    duplicates: usize,
    lost: usize,
    by_a: usize,
    by_b: usize,
    /// Daemons still running at the end.
    running: usize,
    /// Passes that stopped on an error, as the two logs say.
    failed_passes: usize,
}

/// Two instances send `due` emails; `fault` strikes once `at` have arrived.
fn burst(
    server: &mut PgServer,
    due: usize,
    at: usize,
    fault: impl FnOnce(&mut PgServer, &mut Daemon),
) -> Burst {
    let smtp = SmtpServer::start();
    let app = on(server, &smtp);
    app.import_same_day_cases(due);
    let args = ["run", "--now", "2026-11-23"];
    let mut a = start_named(&app, "a", &[], &args);
    let mut b = start_named(&app, "b", &[], &args);
    assert!(
        eventually(Duration::from_secs(60), || smtp.received().len() >= at),
        "{}\n{}",
        log(&app, "a"),
        log(&app, "b")
    );
    fault(server, &mut a);
    // Settled: every row sent (a dead instance's claims resent after their
    // lease), so no send in flight can still bring a copy.
    eventually(Duration::from_secs(120), || {
        app.count("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'") == 0
    });
    let received = smtp.received();
    let ids = message_ids(&received);
    let exited = [&mut a, &mut b]
        .into_iter()
        .filter_map(|d| d.try_wait().unwrap())
        .count();
    let burst = Burst {
        due,
        received: received.len(),
        unique: ids.len(),
        duplicates: received.len() - ids.len(),
        lost: due.saturating_sub(ids.len()),
        by_a: sent_by(&app, "a"),
        by_b: sent_by(&app, "b"),
        running: 2 - exited,
        failed_passes: ["a", "b"]
            .iter()
            .map(|n| log(&app, n).matches("pass failed").count())
            .sum(),
    };
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'"),
        0,
        "{burst:?}\n{}\n{}",
        log(&app, "a"),
        log(&app, "b")
    );
    for d in [&mut a, &mut b] {
        if d.try_wait().unwrap().is_none() {
            signal(d, "TERM");
            assert!(wait_exit(d, Duration::from_secs(15)).success());
        }
    }
    eprintln!("{burst:?}");
    burst
}

#[test]
fn two_instances_lose_nothing_when_one_is_killed_or_postgresql_restarts() {
    // A server of its own, durable, since this test stops it.
    let mut server = PgServer::start(true);
    // Each instance has at most four workers (pool_size), each with at most two sends
    // not yet recorded.
    let in_flight = 2 * 4;

    let killed = burst(&mut server, 2000, 300, |_, a| {
        a.kill().unwrap(); // SIGKILL
        a.wait().unwrap();
    });
    assert_eq!(killed.lost, 0, "{killed:?}");
    assert_eq!(killed.unique, killed.due, "{killed:?}");
    assert!(killed.duplicates <= in_flight, "{killed:?}");
    assert_eq!(killed.running, 1, "{killed:?}");

    let restarted = burst(&mut server, 2000, 300, |server, _| {
        server.down();
        std::thread::sleep(Duration::from_secs(2));
        server.up();
    });
    assert_eq!(restarted.lost, 0, "{restarted:?}");
    assert_eq!(restarted.unique, restarted.due, "{restarted:?}");
    assert!(restarted.duplicates <= 2 * in_flight, "{restarted:?}");
    assert_eq!(restarted.running, 2, "both kept running: {restarted:?}");
}

#[test]
fn migrate_db_moves_an_installation_and_refuses_a_database_that_is_not_empty() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    let cancelled = app
        .outbox()
        .iter()
        .find(|r| r["status"] == "pending" || r["status"] == "awaiting_confirmation")
        .expect("an email still to go")["id"]
        .as_i64()
        .unwrap()
        .to_string();
    app.ok(&["cancel", &cancelled]);
    let sent = smtp.received().len();
    assert!(sent > 0);
    let outbox = app.outbox();
    assert!(
        outbox.iter().any(|r| r["status"] == "cancelled"),
        "a cancelled row to carry across"
    );
    let agenda = app.agenda("2026-11-24");
    let attempts = app.count("SELECT COUNT(*) FROM attempts");
    assert!(attempts > 0);

    let url = pg::shared().new_database();
    let db = app.db_path().display().to_string();
    let out = app.ok(&["migrate-db", "--from", &db, "--to", &url]);
    assert!(out.contains("outbox"), "{out}");

    let mut moved = TestApp::with_smtp(smtp.addr);
    moved.set("KEYDATES__DATABASE__URL", &url);
    assert_eq!(moved.outbox(), outbox, "the outbox, history and all");
    assert_eq!(moved.agenda("2026-11-24"), agenda);
    assert_eq!(moved.count("SELECT COUNT(*) FROM attempts"), attempts);
    // Nothing already sent goes again; new rows number on after the old.
    moved.pass("2026-11-24T10:00:00Z");
    assert_eq!(smtp.received().len(), sent);
    moved.import_same_day_cases(1);
    moved.pass("2026-11-23T10:00:00Z");
    let max_old = outbox
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(
        moved
            .outbox()
            .iter()
            .any(|r| r["id"].as_i64().unwrap() > max_old)
    );

    let rows = moved.count("SELECT COUNT(*) FROM outbox");
    let err = app.fails(&["migrate-db", "--from", &db, "--to", &url]);
    assert!(err.contains("--to") && err.contains("not empty"), "{err}");
    assert_eq!(
        moved.count("SELECT COUNT(*) FROM outbox"),
        rows,
        "unchanged"
    );

    let err = app.fails(&[
        "migrate-db",
        "--from",
        "/nonexistent/keydates.db",
        "--to",
        &url,
    ]);
    assert!(
        err.contains("--from") && err.contains("no such file"),
        "{err}"
    );
    // Some other file given by mistake is left as it was.
    let other = app.write("notes.db", "not a database");
    let err = app.fails(&[
        "migrate-db",
        "--from",
        other.to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(err.contains("not a keydates database"), "{err}");
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "not a database");
    let err = app.fails(&["migrate-db", "--from", &db, "--to", "mysql://x/y"]);
    assert!(
        err.contains("--to") && err.contains("not a PostgreSQL URL"),
        "{err}"
    );
}

#[test]
fn migrate_db_refuses_a_target_that_lacks_a_column_the_source_holds() {
    let app = TestApp::new();
    app.import_examples();
    app.pass("2026-11-24");
    app.edit_by_hand("ALTER TABLE cases ADD COLUMN notes TEXT");
    let url = pg::shared().new_database();
    let db = app.db_path().display().to_string();
    let err = app.fails(&["migrate-db", "--from", &db, "--to", &url]);
    assert!(
        err.contains("cases.notes") && err.contains("nothing was copied"),
        "{err}"
    );
    let mut target = TestApp::new();
    target.set("KEYDATES__DATABASE__URL", &url);
    assert_eq!(
        target.count("SELECT COUNT(*) FROM cases"),
        0,
        "nothing copied"
    );
}
