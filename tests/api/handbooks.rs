//! Each email against its handbook paragraph (000: requires improvement,
//! 001: inadequate): the right email, or none, on the right day, to the right
//! people, with the right words. Real SQLite, a real SMTP server.

use crate::helpers::{Received, SmtpServer, TestApp, agenda_item, rows_where};

/// The messages whose subject contains `part`.
fn about(smtp: &SmtpServer, part: &str) -> Vec<Received> {
    smtp.received()
        .into_iter()
        .filter(|m| m.parsed().subject().is_some_and(|s| s.contains(part)))
        .collect()
}

fn text(m: &Received) -> String {
    m.text()
}

/// Recipients as the headers name them (To and Cc), lower-cased.
pub(crate) fn header_addresses(m: &Received, name: &str) -> Vec<String> {
    m.header(name)
        .unwrap_or_default()
        .split(',')
        .map(|a| {
            a.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_ascii_lowercase()
        })
        .filter(|a| !a.is_empty())
        .collect()
}

/// Everyone these messages are addressed to, in order.
fn everyone_to(messages: &[Received]) -> Vec<String> {
    let mut to: Vec<_> = messages
        .iter()
        .flat_map(|m| header_addresses(m, "To"))
        .collect();
    to.sort();
    to
}

fn status(app: &TestApp, rule: &str, subject: &str) -> String {
    let rows = app.outbox();
    rows_where(&rows, rule, subject)
        .first()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "none".to_string())
}

// 1. 001 §27: the audited-case notice goes only with the selected cases.
#[test]
fn the_audited_case_notice_waits_for_the_selection_and_the_lead_inspector_is_reminded() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // RIV's second visit (9 March 2027) has no audited cases; its notice day
    // is 25 February.
    app.pass("2027-02-25");
    assert_eq!(status(&app, "audited-case-notice", "RIV-2026-01#2"), "none");
    let reminders = about(&smtp, "select the audited cases for monitoring visit 2");
    assert_eq!(reminders.len(), 1);
    assert_eq!(
        header_addresses(&reminders[0], "To"),
        ["dev.hmi@ofsted.example.gov.uk"]
    );
    let asks = text(&reminders[0]);
    assert!(
        asks.contains("for visit 2 of case RIV-2026-01")
            && asks.contains("on the authority's page in the keydates console"),
        "{asks}"
    );
    assert!(
        !smtp
            .received()
            .iter()
            .any(|m| m.to.iter().any(|t| t.contains("riverton"))
                && m.parsed().subject().unwrap_or_default().contains("audited")),
        "nothing about audited cases reaches the authority"
    );
    // Selected two days later: the notice goes at the next pass, with them.
    app.ok(&[
        "set-audited",
        "RIV-2026-01",
        "2",
        "RIV-C-2001",
        "RIV-C-2002",
    ]);
    app.pass("2027-03-01");
    let notices = about(
        &smtp,
        "audited cases for monitoring visit 2, completed audits",
    );
    assert_eq!(notices.len(), 1);
    assert_eq!(
        header_addresses(&notices[0], "To"),
        ["coordinator@riverton.example.gov.uk"]
    );
    let body = text(&notices[0]);
    assert!(
        body.contains("RIV-C-2001") && body.contains("RIV-C-2002"),
        "{body}"
    );
    assert!(!body.contains("No cases"), "{body}");

    // Selected only once the visit has started: missed, never sent.
    let late = TestApp::with_smtp(smtp.addr);
    late.import_examples();
    late.pass("2027-02-25");
    late.ok(&["set-audited", "RIV-2026-01", "2", "RIV-C-2001"]);
    late.pass("2027-03-10");
    // Past its limit before it could be planned: no row, shown as missed.
    assert_eq!(
        status(&late, "audited-case-notice", "RIV-2026-01#2"),
        "none"
    );
    let agenda = late.agenda("2027-03-10T12:00:00Z");
    let notice = agenda_item(&agenda, "audited-case-notice", "RIV-2026-01#2");
    assert_eq!(notice["status"], "missed");
    assert_eq!(
        about(
            &smtp,
            "audited cases for monitoring visit 2, completed audits"
        )
        .len(),
        1
    );
}

// 2. 000 §27-28: the chase waits for the lead inspector and SHMI.
#[test]
fn the_plan_chase_waits_for_confirmation_and_replies_go_to_ims() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // NOR's chase is due on 21 December 2026; they are asked on the 16th.
    app.pass("2026-12-16");
    let asked = about(&smtp, "has the written statement of action reached you?");
    assert_eq!(asked.len(), 1);
    let mut to = asked[0].to.clone();
    to.sort();
    assert!(
        to.contains(&"ben.hmi@ofsted.example.gov.uk".to_string()),
        "{to:?}"
    );
    assert!(
        to.contains(&"shmi.north-west@example.org".to_string()),
        "{to:?}"
    );
    assert!(
        !to.iter().any(|t| t.contains("northfield")),
        "not the authority"
    );

    // Its day comes: nothing goes to the DCS; the agenda shows it held.
    app.pass("2026-12-21");
    assert!(about(&smtp, "your written statement of action is due").is_empty());
    let agenda = app.agenda("2026-12-21T10:00:00Z");
    let chase = agenda_item(&agenda, "plan-chase", "NOR-2026-01");
    assert_eq!(chase["status"], "awaiting_confirmation");
    let id = chase["id"].as_i64().unwrap().to_string();

    // Past its day it stays waiting and IMS's digest lists it.
    app.pass("2026-12-22");
    let digest: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| m.to == ["ims@example.org"])
        .filter(|m| text(m).contains("AWAITING CONFIRMATION"))
        .collect();
    assert!(!digest.is_empty(), "the digest lists the held chase");
    assert!(text(&digest[0]).contains("NOR-2026-01"));
    assert_eq!(
        status(&app, "plan-chase", "NOR-2026-01"),
        "awaiting_confirmation"
    );

    // 000 §28: both the lead inspector and the senior HMI confirm. Without a
    // role the command says who is still to; one role is not enough.
    let err = app.fails(&["confirm", &id]);
    assert!(
        err.contains("lead_inspector") && err.contains("shmi") && err.contains("--as"),
        "{err}"
    );
    let err = app.fails(&["confirm", &id, "--as", "dcs"]);
    assert!(err.contains("does not ask `dcs`"), "{err}");
    let out = app.ok(&["confirm", &id, "--as", "lead_inspector"]);
    assert!(out.contains("waits for shmi"), "{out}");
    let err = app.fails(&["confirm", &id, "--as", "lead_inspector"]);
    assert!(err.contains("already confirmed as lead_inspector"), "{err}");
    app.pass("2026-12-22T11:00:00Z");
    assert!(
        about(&smtp, "your written statement of action is due").is_empty(),
        "one confirmation does not let it go"
    );
    assert_eq!(
        status(&app, "plan-chase", "NOR-2026-01"),
        "awaiting_confirmation"
    );
    // Both confirmed: it goes at the next pass, replies to IMS.
    app.ok(&["confirm", &id, "--as", "shmi"]);
    app.pass("2026-12-22T12:00:00Z");
    let chases = about(&smtp, "your written statement of action is due");
    assert_eq!(chases.len(), 1);
    assert_eq!(
        header_addresses(&chases[0], "To"),
        ["dcs@northfield.example.gov.uk"]
    );
    assert_eq!(
        header_addresses(&chases[0], "Reply-To"),
        ["ims@example.org"]
    );
    // Confirming once it has gone is refused.
    let err = app.fails(&["confirm", &id, "--as", "shmi"]);
    assert!(err.contains("awaiting confirmation"), "{err}");
}

#[test]
fn a_received_plan_cancels_the_held_chase_and_its_question() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-12-14");
    app.ok(&["plan-received", "NOR-2026-01", "--on", "2026-12-14"]);
    app.pass("2026-12-30");
    for rule in ["plan-chase", "plan-chase-confirmation"] {
        assert_eq!(status(&app, rule, "NOR-2026-01"), "cancelled", "{rule}");
    }
    // The overdue-plan reminder was beyond the horizon: it simply goes from
    // the agenda.
    let agenda = app.agenda("2026-12-30T12:00:00Z");
    assert!(
        !agenda
            .iter()
            .any(|a| a["rule"] == "plan-deadline" && a["subject"] == "NOR-2026-01"),
        "no overdue-plan reminder"
    );
    assert!(
        about(&smtp, "written statement of action")
            .iter()
            .all(|m| !m
                .parsed()
                .subject()
                .unwrap_or_default()
                .starts_with("Northfield")),
        "nothing about Northfield's plan"
    );
}

// 3. 001 §26, §29, §42: the columns come from config; back by the end of the week.
#[test]
fn the_data_request_asks_for_the_configured_columns_by_the_end_of_the_week() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.own_config(|t| {
        t.replacen(
            "columns = [\n    \"Child ID\",",
            "columns = [\n    \"Child ID\",\n    \"Legal status\",",
            1,
        )
    });
    app.import_examples();
    // RIV's first visit is on Tuesday 8 December 2026: asked on Tuesday 24
    // November, due back by Friday the 27th.
    app.pass("2026-11-24");
    let requests = about(&smtp, "child-level data for monitoring visit 1");
    assert_eq!(requests.len(), 1);
    let subject = requests[0].parsed().subject().unwrap().to_string();
    assert!(subject.contains("Friday 27 November 2026"), "{subject}");
    let body = text(&requests[0]);
    assert!(body.contains("by the end of this week"), "{body}");
    assert!(body.contains("Friday 27 November 2026"), "{body}");
    assert!(!body.contains("before Tuesday 8 December"), "{body}");
    let sheet = crate::helpers::zip_part(
        &requests[0].attachment_ending(".xlsx"),
        "xl/sharedStrings.xml",
    );
    for column in ["Child ID", "Legal status", "Audited since the last visit"] {
        assert!(sheet.contains(column), "{column}");
    }
    for invented in ["Ethnicity", "Disability", "Placement or address type"] {
        assert!(!sheet.contains(invented), "{invented} is not asked for");
    }
    // The lead inspector checks on the Friday that it arrived.
    app.pass("2026-11-27");
    let checks = about(
        &smtp,
        "has the child-level data for monitoring visit 1 arrived?",
    );
    assert_eq!(checks.len(), 1);
    assert_eq!(
        header_addresses(&checks[0], "To"),
        ["dev.hmi@ofsted.example.gov.uk"]
    );
}

// 4. 000 §13, Annex A; 001 §9-10, Annex A: from the regional director, with the window.
#[test]
fn the_planning_invitation_comes_from_the_regional_director_with_the_window_as_dates() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // The inspector who will lead SOU's monitoring visits is not the one who
    // led the inspection.
    let visits = "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled\n\
                  SOU-2026-01,1,2027-04-13,erin.hmi@ofsted.example.gov.uk,,false\n";
    assert!(app.import("visits", "v.csv", visits).status.success());
    // SOU (inadequate) received its report on Monday 2 November 2026.
    app.pass("2026-11-02");
    let invitations = about(&smtp, "action planning visit between");
    assert_eq!(invitations.len(), 1);
    let m = &invitations[0];
    assert_eq!(
        header_addresses(m, "Reply-To"),
        ["rd.south-west@example.org"]
    );
    let cc = header_addresses(m, "Cc");
    for who in [
        "anna.hmi@ofsted.example.gov.uk",
        "shmi.south-west@example.org",
        "national.director@example.org",
        "link.sou@dfe.example.gov.uk",
        // 001 §9: the DfE's inspections and interventions team, a fixed
        // address, and the inspector who will lead the monitoring visits.
        "inspections.interventions@dfe.example.gov.uk",
        "erin.hmi@ofsted.example.gov.uk",
    ] {
        assert!(cc.contains(&who.to_string()), "{who} in {cc:?}");
    }
    let body = text(m);
    // 25 and 35 working days after 2 November 2026.
    assert!(body.contains("Monday 7 December 2026"), "{body}");
    assert!(body.contains("Monday 21 December 2026"), "{body}");
    assert!(body.contains("with a date in that period"), "{body}");
    assert!(body.contains("improvement board"), "{body}");
    assert!(body.contains("Regional Director"), "{body}");

    // Requires improvement: no DfE link even if one is recorded; councillors not invited.
    let ri = SmtpServer::start();
    let app = TestApp::with_smtp(ri.addr);
    app.import_examples();
    let cases = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\n\
                 NOR-2026-01,NOR,requires_improvement,2026-10-12,,ben.hmi@ofsted.example.gov.uk,link.nor@dfe.example.gov.uk\n";
    assert!(app.import("cases", "c.csv", cases).status.success());
    app.pass("2026-10-12");
    let invitations = about(&ri, "improvement planning seminar between");
    assert_eq!(invitations.len(), 1);
    let cc = header_addresses(&invitations[0], "Cc");
    assert!(!cc.iter().any(|a| a.contains("dfe")), "{cc:?}");
    assert!(cc.contains(&"national.director@example.org".to_string()));
    let body = text(&invitations[0]);
    assert!(body.contains("Councillors should not be invited"));
    // 000 §13-14: about three hours; the authority's agreement and dates.
    assert!(body.contains("lasts about three hours"), "{body}");
    assert!(
        body.contains("whether your authority agrees to take part"),
        "{body}"
    );
    assert!(body.contains("the dates"), "{body}");
}

// 5. 000 §21, 001 §14: the final agenda counts from the recorded date.
#[test]
fn the_final_agenda_reminder_counts_from_the_recorded_planning_event() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-12-01");
    assert!(about(&smtp, "circulate the final agenda").is_empty());
    // Agreed for Thursday 17 December 2026: the reminder five working days before.
    let out = app
        .command()
        .args(["set-planning-event", "SOU-2026-01", "2026-12-17"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).is_empty(),
        "inside the window"
    );
    app.pass("2026-12-10");
    let reminders = about(&smtp, "circulate the final agenda");
    assert_eq!(reminders.len(), 1);
    assert_eq!(
        header_addresses(&reminders[0], "To"),
        ["anna.hmi@ofsted.example.gov.uk"]
    );
    assert_eq!(
        header_addresses(&reminders[0], "Cc"),
        ["shmi.south-west@example.org"]
    );
    assert!(text(&reminders[0]).contains("Thursday 17 December 2026"));

    // Outside the 25-35 working-day window: accepted, with a warning.
    let out = app
        .command()
        .args(["set-planning-event", "NOR-2026-01", "2027-03-01"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(warning.contains("outside the usual window"), "{warning}");
    let err = app.fails(&["set-planning-event", "NOPE", "2026-12-17"]);
    assert!(err.contains("no case `NOPE`"), "{err}");
}

#[test]
fn the_cases_file_takes_the_planning_event_as_a_last_column() {
    let app = TestApp::new();
    app.import_examples();
    let cases = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email,planning_event_on\n\
                 SOU-2026-01,SOU,inadequate,2026-11-02,,anna.hmi@ofsted.example.gov.uk,link.sou@dfe.example.gov.uk,2026-12-17\n";
    assert!(app.import("cases", "c8.csv", cases).status.success());
    let agenda = app.agenda("2026-11-23T10:00:00Z");
    let reminder = agenda_item(&agenda, "planning-agenda", "SOU-2026-01");
    assert_eq!(reminder["due_on"], "2026-12-10");
    // The old header still imports, and keeps the recorded date.
    let old = crate::helpers::examples().join("cases.csv");
    app.ok(&["import", "cases", old.to_str().unwrap()]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM cases WHERE planning_event_on = '2026-12-17'"),
        1
    );
}

// 6. 000 §25, 001 §19: the overdue plan is an internal matter.
#[test]
fn the_overdue_plan_is_told_to_the_lead_inspector_shmi_and_ims_not_the_authority() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // SOU's plan was due on Thursday 11 February 2027 (70 working days).
    app.pass("2027-02-11");
    assert!(
        about(&smtp, "Overdue").is_empty(),
        "not on the deadline itself"
    );
    app.pass("2027-02-12");
    let notices = about(&smtp, "Overdue");
    assert_eq!(notices.len(), 1);
    let mut everyone = notices[0].to.clone();
    everyone.sort();
    assert_eq!(
        everyone,
        [
            "anna.hmi@ofsted.example.gov.uk",
            "ims@example.org",
            "shmi.south-west@example.org"
        ]
    );
    assert!(text(&notices[0]).contains("has not been written to"));
}

// 7. 000 §35, §38: the SHMI of the authority's region; the record after the conversation.
#[test]
fn the_dcs_conversation_goes_to_the_authoritys_shmi_and_the_record_counts_from_the_conversation() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // Riverton (London) sends a delegate to the south-west seminar.
    let delegates = "seminar_ref,authority_code,name,email\nG2G-SW-2027-01,RIV,Rae Lee,rae.lee@riverton.example.gov.uk\n";
    assert!(app.import("delegates", "d.csv", delegates).status.success());
    app.pass("2027-07-27");
    let conversations = about(&smtp, "six-month conversation after");
    let riv: Vec<_> = conversations
        .iter()
        .filter(|m| {
            m.parsed()
                .subject()
                .unwrap_or_default()
                .starts_with("Riverton")
        })
        .collect();
    assert_eq!(riv.len(), 1);
    assert!(
        riv[0].to.contains(&"shmi.london@example.org".to_string()),
        "{:?}",
        riv[0].to
    );
    assert!(
        !riv[0]
            .to
            .contains(&"shmi.south-west@example.org".to_string())
    );

    // No record reminder until the conversation is recorded.
    app.pass("2027-08-10");
    assert!(about(&smtp, "record of your conversation").is_empty());
    let agenda = app.agenda("2027-08-10T10:00:00Z");
    assert!(
        agenda
            .iter()
            .any(|a| a["rule"] == "dcs-record-due" && a["status"] == "waiting")
    );
    app.ok(&["record-conversation", "G2G-SW-2027-01", "RIV", "2027-08-11"]);
    app.pass("2027-08-12");
    let records = about(&smtp, "record of your conversation with the DCS is due by");
    assert_eq!(records.len(), 1);
    let subject = records[0].parsed().subject().unwrap().to_string();
    assert!(
        subject.contains("Wednesday 18 August 2027"),
        "seven days after: {subject}"
    );
    assert_eq!(
        header_addresses(&records[0], "To"),
        ["shmi.london@example.org"]
    );
    let err = app.fails(&["record-conversation", "G2G-SW-2027-01", "EAS", "2027-08-11"]);
    assert!(err.contains("sent no delegates"), "{err}");
}

// 8. 001 §41-42, 000 Annex H: the steps that were missing.
#[test]
fn the_monitoring_report_days_go_to_those_who_act_and_the_first_report_is_not_published() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let mut d = chrono::NaiveDate::from_ymd_opt(2026, 12, 9).unwrap();
    while d <= chrono::NaiveDate::from_ymd_opt(2027, 4, 9).unwrap() {
        app.pass(&d.to_string());
        d = d.succ_opt().unwrap();
    }
    let draft1 = about(&smtp, "monitoring visit 1 draft report");
    assert_eq!(draft1.len(), 1);
    assert_eq!(header_addresses(&draft1[0], "To"), ["ims@example.org"]);
    assert!(about(&smtp, "monitoring visit 1 report published").is_empty());
    assert!(about(&smtp, "monitoring visit 1 pre-publication").is_empty());
    let published = about(&smtp, "monitoring visit 2 report published");
    assert_eq!(published.len(), 1);
    let rows = app.outbox();
    let r = rows_where(&rows, "monitoring-report-publication", "RIV-2026-01#2");
    assert_eq!(r[0]["due_on"], "2027-04-07", "day 20 of the visit");
}

#[test]
fn the_support_team_hears_of_a_seminar_three_months_ahead() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // The south-west seminar is on Wednesday 27 January 2027.
    app.pass("2026-10-27");
    let notes = about(&smtp, "Seminar G2G-SW-2027-01");
    assert_eq!(notes.len(), 1);
    assert_eq!(
        header_addresses(&notes[0], "To"),
        ["support.south-west@example.org"]
    );
    assert!(text(&notes[0]).contains("Jo Whitfield"));
}

// 000 Annex H: the support team writes to the director of each invited
// authority for up to five nominations.
#[test]
fn each_invited_authoritys_director_is_asked_for_nominations_unless_it_has_delegates() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // The north-west seminar is on Wednesday 24 February 2027; Northfield
    // has already nominated Aisha Khan.
    let out = app.import(
        "invited",
        "invited.csv",
        "seminar_ref,authority_code\nG2G-NW-2027-01,NOR\nG2G-NW-2027-01,EAS\nG2G-NW-2027-01,RIV\n",
    );
    assert!(out.status.success(), "{out:?}");
    app.pass("2026-11-23");
    assert!(about(&smtp, "nominations for").is_empty());
    app.pass("2026-11-24");
    let letters = about(&smtp, "nominations for Getting to good: children in care");
    assert_eq!(
        everyone_to(&letters),
        [
            "dcs@riverton.example.gov.uk",
            "director.childrens@eastwold.example.gov.uk"
        ]
    );
    let eas = letters
        .iter()
        .find(|m| text(m).contains("Helen Okafor"))
        .unwrap();
    assert_eq!(
        header_addresses(eas, "Cc"),
        ["support.north-west@example.org"]
    );
    assert_eq!(
        header_addresses(eas, "Reply-To"),
        ["support.north-west@example.org"]
    );
    let body = text(eas);
    for words in [
        "Eastwold District Council is invited",
        "24 February 2027",
        "up to five delegates",
        "Council members do not attend",
        "no later than 15 working days before",
    ] {
        assert!(body.contains(words), "{words}: {body}");
    }
    // An authority invited later is written to at the next pass.
    let out = app.import(
        "invited",
        "more.csv",
        "seminar_ref,authority_code\nG2G-NW-2027-01,SOU\n",
    );
    assert!(out.status.success(), "{out:?}");
    app.pass("2026-12-02");
    let all = about(&smtp, "nominations for");
    assert_eq!(all.len(), 3);
    assert_eq!(
        header_addresses(&all[2], "To"),
        ["dcs@southshire.example.gov.uk"]
    );
    // An authority not recorded is refused, with where, and nothing changes.
    let out = app.import(
        "invited",
        "bad.csv",
        "seminar_ref,authority_code\nG2G-NW-2027-01,WES\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("column 2 (authority_code)") && err.contains("WES"),
        "{err}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM invited_authorities"), 4);
}

// 9. 001: visits follow an inadequate judgement; 000 Annex H: five delegates at most.
#[test]
fn visits_for_requires_improvement_and_a_sixth_delegate_are_refused() {
    let app = TestApp::new();
    app.import_examples();
    let visits = "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled\nNOR-2026-01,1,2027-03-09,ben.hmi@ofsted.example.gov.uk,,\n";
    let out = app.import("visits", "v.csv", visits);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("not judged inadequate"),
        "{err}"
    );

    let mut delegates = String::from("seminar_ref,authority_code,name,email\n");
    for i in 0..4 {
        delegates.push_str(&format!(
            "G2G-SW-2027-01,SOU,Person {i},p{i}@southshire.example.gov.uk\n"
        ));
    }
    // With the two already recorded, the fourth new one is the sixth.
    let out = app.import("delegates", "d.csv", &delegates);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("at most 5"), "{err}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM delegates"),
        3,
        "nothing imported"
    );
}

// 000 §30: IMS tell the lead inspector, the SHMI and the National Director
// once the plan has arrived.
#[test]
fn the_plans_arrival_is_told_to_the_lead_inspector_shmi_and_national_director() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // EAS's improvement plan is recorded as received on Friday 6 November 2026.
    app.pass("2026-11-06");
    let told = about(&smtp, "the improvement plan has arrived");
    assert_eq!(told.len(), 1);
    let mut to = header_addresses(&told[0], "To");
    to.sort();
    assert_eq!(
        to,
        [
            "carla.hmi@ofsted.example.gov.uk",
            "national.director@example.org",
            "shmi.east@example.org"
        ]
    );
    assert_eq!(header_addresses(&told[0], "Reply-To"), ["ims@example.org"]);
    assert!(
        told[0].to.iter().all(|t| !t.contains("eastwold")),
        "not the authority"
    );
    assert!(text(&told[0]).contains("Friday 6 November 2026"));
}

// 000 §38, stage 1: each delegate is asked for their evaluation straight after.
#[test]
fn each_delegate_is_asked_for_their_evaluation_the_working_day_after_the_seminar() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // The South West seminar is on Wednesday 27 January 2027.
    app.pass("2027-01-27");
    assert!(about(&smtp, "your evaluation of the seminar").is_empty());
    app.pass("2027-01-28");
    let asked = about(&smtp, "your evaluation of the seminar");
    assert_eq!(
        everyone_to(&asked),
        [
            "jo.whitfield@southshire.example.gov.uk",
            "marcus.bell@southshire.example.gov.uk"
        ]
    );
    assert!(text(&asked[0]).contains("participant evaluation form"));
}

// 001 §23: the first monitoring visit usually falls within four weeks of the
// plan's deadline; with none recorded by the deadline, the inspectors hear.
#[test]
fn with_no_visit_recorded_by_the_plan_deadline_the_inspectors_are_reminded() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // Southshire's plan is due on Thursday 11 February 2027; its first visit
    // (13 April) is recorded, so nothing goes.
    app.pass("2027-02-11");
    assert!(about(&smtp, "no first monitoring visit recorded").is_empty());

    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.ok(&["cancel-visit", "SOU-2026-01", "1"]);
    app.pass("2027-02-11");
    let reminder = about(&smtp, "no first monitoring visit recorded");
    assert_eq!(reminder.len(), 1);
    assert_eq!(
        header_addresses(&reminder[0], "To"),
        ["anna.hmi@ofsted.example.gov.uk"]
    );
    assert_eq!(
        header_addresses(&reminder[0], "Cc"),
        ["shmi.south-west@example.org"]
    );
    let body = text(&reminder[0]);
    assert!(
        body.contains("Thursday 11 February 2027") && body.contains("Thursday 11 March 2027"),
        "{body}"
    );
    // Requires improvement has no monitoring visits: nothing for Northfield.
    assert!(
        reminder.iter().all(|m| !text(m).contains("Northfield")),
        "only inadequate cases"
    );
}
