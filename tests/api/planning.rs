//! Planning over simulated months: each action on its day, once; records
//! that change move or cancel the right rows; downtime, DST, two processes.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};

use crate::helpers::{SmtpServer, TestApp, agenda_item, rows_where};

/// Messages addressed to Riverton's visit coordinator.
fn to_riverton(smtp: &SmtpServer) -> usize {
    smtp.received()
        .iter()
        .filter(|m| {
            m.to.iter()
                .any(|t| t == "coordinator@riverton.example.gov.uk")
        })
        .count()
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn a_year_of_daily_passes_sends_every_action_on_its_due_day_once() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let mut d = day("2026-09-01");
    while d <= day("2027-09-10") {
        app.pass(&d.to_string());
        d = d + Days::new(1);
    }
    let rows = app.outbox();
    let sent: Vec<_> = rows.iter().filter(|r| r["status"] == "sent").collect();
    // Every action of the shipped rules for the examples, and nothing else.
    let expect = [
        // NOR, requires improvement, report 12 October 2026, no plan.
        ("planning-invitation", "NOR-2026-01", "2026-10-12"),
        ("plan-chase-confirmation", "NOR-2026-01", "2026-12-16"),
        ("plan-deadline", "NOR-2026-01", "2027-01-22"),
        // SOU, inadequate, report 2 November 2026, no plan: no chase (001
        // has none), only the overdue notice.
        ("planning-invitation", "SOU-2026-01", "2026-11-02"),
        ("plan-deadline", "SOU-2026-01", "2027-02-12"),
        // RIV's first visit, 8 December 2026, audited cases selected.
        ("child-data-request", "RIV-2026-01#1", "2026-11-24"),
        ("child-data-check", "RIV-2026-01#1", "2026-11-27"),
        ("audited-case-notice", "RIV-2026-01#1", "2026-11-26"),
        ("audited-files-due", "RIV-2026-01#1", "2026-12-03"),
        ("monitoring-report-draft", "RIV-2026-01#1", "2026-12-22"),
        ("monitoring-report-comments", "RIV-2026-01#1", "2026-12-29"),
        // RIV's second visit, 9 March 2027, no audited cases: the lead
        // inspector is reminded instead of the notice; its report is published.
        ("child-data-request", "RIV-2026-01#2", "2027-02-23"),
        ("child-data-check", "RIV-2026-01#2", "2027-02-26"),
        ("audited-case-selection", "RIV-2026-01#2", "2027-02-25"),
        ("monitoring-report-draft", "RIV-2026-01#2", "2027-03-23"),
        ("monitoring-report-comments", "RIV-2026-01#2", "2027-03-30"),
        (
            "monitoring-report-prepublication",
            "RIV-2026-01#2",
            "2027-04-05",
        ),
        (
            "monitoring-report-publication",
            "RIV-2026-01#2",
            "2027-04-07",
        ),
        // SOU's first visit, 13 April 2027, no audited cases.
        ("child-data-request", "SOU-2026-01#1", "2027-03-30"),
        ("child-data-check", "SOU-2026-01#1", "2027-04-02"),
        ("audited-case-selection", "SOU-2026-01#1", "2027-04-01"),
        ("monitoring-report-draft", "SOU-2026-01#1", "2027-04-27"),
        ("monitoring-report-comments", "SOU-2026-01#1", "2027-04-30"),
        // EAS's plan arrived on 6 November 2026 (000 §30).
        ("plan-received", "EAS-2026-01", "2026-11-06"),
        // The seminars.
        ("seminar-evaluation", "G2G-SW-2027-01", "2027-01-28"),
        ("seminar-notification", "G2G-SW-2027-01", "2026-10-27"),
        ("seminar-notification", "G2G-NW-2027-01", "2026-11-24"),
        ("seminar-invitation", "G2G-SW-2027-01", "2027-01-06"),
        ("dcs-conversation", "G2G-SW-2027-01", "2027-07-27"),
    ];
    for (rule, subject, due) in expect {
        let found = rows_where(&rows, rule, subject);
        assert!(!found.is_empty(), "{rule} {subject} was never planned");
        for r in found {
            assert_eq!(r["status"], "sent", "{rule} {subject}: {r}");
            assert_eq!(r["due_on"], due, "{rule} {subject}");
            let sent_day = r["sent_at"].as_str().unwrap();
            // 09:00 London is 09:00 or 08:00 UTC: the same calendar day.
            assert!(
                sent_day.starts_with(due),
                "{rule} {subject} sent {sent_day}, due {due}"
            );
        }
    }
    // The two SOU delegates each get their own invitation.
    assert_eq!(
        rows_where(&rows, "seminar-invitation", "G2G-SW-2027-01").len(),
        2
    );
    // The unconfirmed seminar invites nobody and has no six-month conversation.
    assert!(rows_where(&rows, "seminar-invitation", "G2G-NW-2027-01").is_empty());
    // Nothing goes without a date recorded for it, or without the audited cases.
    for rule in [
        "planning-agenda",
        "planning-record",
        "dcs-record-due",
        "audited-case-notice",
    ] {
        let planned: Vec<_> = rows.iter().filter(|r| r["rule"] == rule).collect();
        assert!(
            planned.iter().all(|r| r["subject"] == "RIV-2026-01#1"),
            "{rule}: {planned:?}"
        );
    }
    // Nobody confirmed the chase: it waits, held, and goes nowhere.
    let chase = rows_where(&rows, "plan-chase", "NOR-2026-01");
    assert_eq!(chase[0]["status"], "awaiting_confirmation");
    assert!(rows_where(&rows, "plan-chase", "SOU-2026-01").is_empty());
    assert!(
        rows.iter()
            .all(|r| r["status"] == "sent" || r["status"] == "awaiting_confirmation"),
        "nothing missed or failed"
    );
    // What the server got matches the outbox, one message per row; the rest
    // is IMS's daily digest, which lists the held chases.
    let received: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| {
            !m.to.iter().any(|t| t == "ims@example.org")
                || !m
                    .parsed()
                    .subject()
                    .unwrap_or_default()
                    .starts_with("keydates:")
        })
        .collect();
    assert_eq!(received.len(), sent.len());
    let digests = smtp.received().len() - received.len();
    assert!(digests > 0, "the held chases reach the digest");
    let ids: HashSet<String> = received
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), received.len(), "no Message-ID twice");
    // Another pass on the last day sends nothing new.
    app.pass("2027-09-10T12:00:00Z");
    assert_eq!(smtp.received().len(), received.len() + digests);
}

#[test]
fn record_changes_move_and_cancel_the_right_rows() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    // Far enough ahead for the outbox to hold the chase and the deadline.
    app.set("KEYDATES__SCHEDULE__HORIZON_DAYS", "120");
    app.import_examples();
    app.pass("2026-11-23");
    let before = app.outbox();
    assert_eq!(
        rows_where(&before, "plan-chase", "NOR-2026-01")[0]["status"],
        "awaiting_confirmation"
    );

    // The plan arrives: its chase and deadline reminder are cancelled.
    app.ok(&["plan-received", "NOR-2026-01", "--on", "2026-11-23"]);
    // The first visit moves a week: the old requests go, new ones come.
    app.ok(&["move-visit", "RIV-2026-01", "1", "2026-12-15"]);
    // The seminar is cancelled: its invitations go.
    app.ok(&["cancel-seminar", "G2G-SW-2027-01"]);
    app.pass("2026-11-23T10:00:00Z");
    let after = app.outbox();
    for rule in ["plan-chase", "plan-chase-confirmation", "plan-deadline"] {
        let r = rows_where(&after, rule, "NOR-2026-01");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["status"], "cancelled", "{rule}");
    }
    let requests = rows_where(&after, "child-data-request", "RIV-2026-01#1");
    let by_anchor: HashMap<&str, &str> = requests
        .iter()
        .map(|r| {
            (
                r["anchor_on"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_anchor.get("2026-12-08"), Some(&"cancelled"));
    assert_eq!(by_anchor.get("2026-12-15"), Some(&"pending"));
    let moved = requests
        .iter()
        .find(|r| r["anchor_on"] == "2026-12-15")
        .unwrap();
    assert_eq!(moved["due_on"], "2026-12-01");
    let invitations = rows_where(&after, "seminar-invitation", "G2G-SW-2027-01");
    assert!(!invitations.is_empty());
    for r in invitations {
        assert_eq!(r["status"], "cancelled");
    }
    // Confirming it again brings the invitations back, still one row each.
    app.ok(&["confirm-seminar", "G2G-SW-2027-01"]);
    app.pass("2026-11-23T11:00:00Z");
    let again = rows_where(&app.outbox(), "seminar-invitation", "G2G-SW-2027-01")
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    assert_eq!(again, ["pending", "pending"]);
    assert!(
        !smtp
            .received()
            .iter()
            .any(|m| m.to.iter().any(|t| t.contains("riverton"))),
        "nothing for Riverton was due on 23 November"
    );
}

#[test]
fn a_sent_row_is_never_sent_again_even_when_its_record_changes() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    assert_eq!(to_riverton(&smtp), 1, "the RIV data request");
    app.ok(&["cancel-visit", "RIV-2026-01", "1"]);
    app.pass("2026-11-24T12:00:00Z");
    let rows = app.outbox();
    let r = rows_where(&rows, "child-data-request", "RIV-2026-01#1");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["status"], "sent");
    assert_eq!(to_riverton(&smtp), 1);
}

#[test]
fn downtime_across_a_due_date_catches_up_once_and_past_the_limit_misses() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-23");
    // Down from the 23rd to the 27th: the request (24th) and notice (26th) go late, once.
    app.pass("2026-11-27");
    let rows = app.outbox();
    for rule in ["child-data-request", "audited-case-notice"] {
        assert_eq!(
            rows_where(&rows, rule, "RIV-2026-01#1")[0]["status"],
            "sent",
            "{rule}"
        );
    }
    assert_eq!(to_riverton(&smtp), 2);
    app.pass("2026-11-27T12:00:00Z");
    assert_eq!(to_riverton(&smtp), 2, "nothing repeats");

    // Down until the visit itself: a reminder for it is missed, never sent.
    let late = TestApp::with_smtp(smtp.addr);
    late.import_examples();
    late.pass("2026-11-23");
    late.pass("2026-12-08");
    let rows = late.outbox();
    for rule in [
        "child-data-request",
        "audited-case-notice",
        "audited-files-due",
    ] {
        assert_eq!(
            rows_where(&rows, rule, "RIV-2026-01#1")[0]["status"],
            "missed",
            "{rule}"
        );
    }
    assert_eq!(
        to_riverton(&smtp),
        2,
        "the second install sent Riverton nothing"
    );

    // Down for eight weeks, far past the outbox's horizon: what fell due
    // meanwhile is found all the same; what passed its limit is recorded as
    // missed and reported to IMS, and nothing of it is sent.
    let long = TestApp::with_smtp(smtp.addr);
    long.import_examples();
    long.pass("2026-11-23");
    let before = smtp.received().len();
    long.pass("2027-01-20T12:00:00Z");
    let rows = long.outbox();
    let missed: Vec<_> = rows
        .iter()
        .filter(|r| r["status"] == "missed" && r["due_on"].as_str().unwrap() > "2026-11-30")
        .collect();
    assert!(!missed.is_empty(), "{rows:#?}");
    for r in &missed {
        assert!(r["last_error"].as_str().unwrap().contains("stopped"), "{r}");
    }
    let digest: Vec<_> = smtp.received()[before..]
        .iter()
        .filter(|m| m.to == ["ims@example.org"])
        .map(crate::helpers::Received::text)
        .collect();
    assert_eq!(digest.len(), 1, "one digest");
    for r in &missed {
        assert!(
            digest[0].contains(r["rule"].as_str().unwrap()),
            "{}",
            digest[0]
        );
    }
}

#[test]
fn the_march_clock_change_neither_skips_nor_repeats_and_a_clock_going_back_repeats_nothing() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // Clocks go forward at 01:00 UTC on Sunday 28 March 2027. Pass every two
    // hours from Friday to Wednesday.
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-26T00:00:00Z").unwrap();
    for h in (0..5 * 24).step_by(2) {
        let t = start + chrono::Duration::hours(h);
        app.pass(&t.to_rfc3339());
    }
    let rows = app.outbox();
    let request = rows_where(&rows, "child-data-request", "SOU-2026-01#1");
    assert_eq!(request[0]["status"], "sent");
    // 09:00 British Summer Time is 08:00 UTC.
    assert_eq!(request[0]["send_at"], "2027-03-30T08:00:00Z");
    assert!(
        request[0]["sent_at"]
            .as_str()
            .unwrap()
            .starts_with("2027-03-30T08:00")
    );
    let count = smtp.received().len();
    // The clock jumps back a day: nothing goes twice.
    app.pass("2027-03-29T08:00:00Z");
    app.pass("2027-03-30T08:00:00Z");
    assert_eq!(smtp.received().len(), count);
}

#[test]
fn agenda_lists_planned_and_recorded_actions_as_json() {
    let app = TestApp::new();
    app.import_examples();
    let agenda = app.agenda("2026-11-23T08:00:00Z");
    let chase = agenda_item(&agenda, "plan-chase", "NOR-2026-01");
    assert_eq!(chase["status"], "planned");
    assert_eq!(chase["authority"], "NOR");
    assert_eq!(chase["due_on"], "2026-12-21");
    assert_eq!(chase["send_at"], "2026-12-21T09:00:00+00:00");
    assert_eq!(chase["to"][0], "dcs@northfield.example.gov.uk");
    assert!(
        chase["cc"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "ims@example.org")
    );
    app.pass("2026-11-23");
    let agenda = app.agenda("2026-11-23T10:00:00Z");
    let chase = agenda_item(&agenda, "plan-chase", "NOR-2026-01");
    // Four weeks ahead: beyond the outbox's horizon, so planned, with no row.
    assert_eq!(chase["status"], "planned");
    assert!(chase["id"].is_null());
    // With no planning event date recorded, the final agenda waits for one.
    let waiting = agenda_item(&agenda, "planning-agenda", "SOU-2026-01");
    assert_eq!(waiting["status"], "waiting");
    assert!(waiting["due_on"].is_null());
    assert!(
        waiting["detail"]
            .as_str()
            .unwrap()
            .contains("set-planning-event")
    );
    let windowed: Vec<serde_json::Value> = serde_json::from_str(&app.ok(&[
        "agenda",
        "--format",
        "json",
        "--from",
        "2026-11-24",
        "--to",
        "2026-11-30",
    ]))
    .unwrap();
    assert!(!windowed.is_empty());
    assert!(windowed.iter().all(|a| {
        let d = a["due_on"].as_str().unwrap();
        ("2026-11-24"..="2026-11-30").contains(&d)
    }));

    // Once its confirmation is asked for (three working days ahead), the
    // chase has a row, held until the lead inspector and SHMI confirm
    // (000 §28), and the request can name its id.
    app.pass("2026-12-16");
    let agenda = app.agenda("2026-12-16T10:00:00Z");
    let chase = agenda_item(&agenda, "plan-chase", "NOR-2026-01");
    assert_eq!(chase["status"], "awaiting_confirmation");
    assert!(chase["id"].as_i64().is_some());
}

#[test]
fn two_processes_at_once_send_each_email_once() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    // Thirty authorities whose reports all arrived on the same day.
    app.import_same_day_cases(30);
    let spawn = || {
        app.command()
            .args(["run", "--once", "--now", "2026-11-23"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let received = smtp.received();
    assert_eq!(received.len(), 30, "thirty planning invitations");
    let to: HashSet<String> = received.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to.len(), 30, "each authority once");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'"),
        30
    );
}

#[test]
fn a_dry_run_renders_what_is_due_and_records_nothing() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let out = app.ok(&["run", "--dry-run", "--now", "2026-11-24"]);
    assert!(
        out.contains("would send child-data-request RIV-2026-01#1"),
        "{out}"
    );
    assert!(out.contains("2 attachment"), "{out}");
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox"), 0);
    assert!(smtp.received().is_empty());
}

#[test]
fn admins_cancel_what_has_not_gone_and_cannot_cancel_what_has() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    let rows = app.outbox();
    let sent = rows_where(&rows, "child-data-request", "RIV-2026-01#1")[0]["id"].to_string();
    let pending = rows_where(&rows, "audited-case-notice", "RIV-2026-01#1")[0]["id"].to_string();
    let err = app.fails(&["cancel", &sent]);
    assert!(err.contains("sent"), "{err}");
    app.ok(&["cancel", &pending]);
    // An admin's cancel holds: the planner does not bring the row back.
    app.pass("2026-11-26");
    let rows = app.outbox();
    assert_eq!(
        rows_where(&rows, "audited-case-notice", "RIV-2026-01#1")[0]["status"],
        "cancelled"
    );
    let err = app.fails(&["retry", "99999"]);
    assert!(err.contains("no outbox row 99999"), "{err}");
}

crate::on_postgres_too!(
    a_year_of_daily_passes_sends_every_action_on_its_due_day_once,
    record_changes_move_and_cancel_the_right_rows,
    a_sent_row_is_never_sent_again_even_when_its_record_changes,
    downtime_across_a_due_date_catches_up_once_and_past_the_limit_misses,
    the_march_clock_change_neither_skips_nor_repeats_and_a_clock_going_back_repeats_nothing,
    agenda_lists_planned_and_recorded_actions_as_json,
    two_processes_at_once_send_each_email_once,
    a_dry_run_renders_what_is_due_and_records_nothing,
    admins_cancel_what_has_not_gone_and_cannot_cancel_what_has,
);

/// A plan of every record reads the cases a batch at a time: with one batch
/// and a little more stored, every case is planned once, as a plan of all
/// the records at once would plan it.
#[test]
fn planning_every_record_in_batches_plans_each_case_once_across_the_boundary() {
    use keydates::delivery::{CASE_BATCH, Engine, plan_every_record};
    let app = TestApp::new();
    let n = CASE_BATCH as usize + 50;
    app.import_same_day_cases(n);
    let mut settings = keydates::config::Settings::load(&app.config).unwrap();
    settings.database.url = app.db_path().display().to_string();
    let engine = Engine::new(settings).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = keydates::db::connect_existing(&engine.settings)
                .await
                .unwrap();
            let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
            let horizon = keydates::plan::Horizon {
                until: chrono::NaiveDate::from_ymd_opt(2027, 12, 31).unwrap(),
                today,
                ..Default::default()
            };
            let mut batches = Vec::new();
            plan_every_record(&engine, &pool, &horizon, async |batch| {
                batches.push(batch);
                Ok(())
            })
            .await
            .unwrap();
            assert!(batches.len() >= 3, "seminars, then two batches of cases");
            let all = keydates::records::store::load(&pool).await.unwrap();
            let whole = keydates::plan::plan_within(
                &all,
                &engine.settings,
                &engine.calendar,
                keydates::config::rules::RuleOn::ALL,
                Some(&horizon),
            );
            let batched = batches.concat();
            let chased: std::collections::HashSet<String> = batched
                .iter()
                .filter(|a| a.rule_id == "plan-chase")
                .map(|a| a.subject.to_string())
                .collect();
            let mut batched: Vec<String> = batched.into_iter().map(|a| a.key).collect();
            let mut keys: Vec<String> = whole.into_iter().map(|a| a.key).collect();
            batched.sort();
            keys.sort();
            assert_eq!(batched.len(), keys.len(), "no action twice, none left out");
            assert_eq!(batched, keys);
            assert_eq!(chased.len(), n, "every case's chase, the last batch's too");
        });
}
