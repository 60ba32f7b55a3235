//! Every email read as its recipient reads it on the day it goes: the dates
//! it states are still ahead, "today" only on the day itself, and no command
//! to run (people have the console). Real SQLite, a real SMTP server.

use crate::helpers::{Received, SmtpServer, TestApp};

/// The text part and, where there is one, the HTML part.
fn read(m: &Received) -> String {
    let parsed = m.parsed();
    let text = parsed.body_text(0).unwrap_or_default().to_string();
    let html = parsed.body_html(0).unwrap_or_default().to_string();
    format!("{text}\n{html}")
}

fn about<'a>(all: &'a [Received], part: &str) -> Vec<&'a Received> {
    all.iter()
        .filter(|m| m.parsed().subject().is_some_and(|s| s.contains(part)))
        .collect()
}

/// What the example records send when the first pass runs at `day`.
fn sent_at_first_pass(day: &str) -> Vec<Received> {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass(day);
    smtp.received()
}

const CONSOLE: &str = "https://keydates.example.org/";

#[test]
fn the_question_names_the_chases_own_day_and_links_to_the_authoritys_page() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    app.set("KEYDATES__WEB__PUBLIC_URL", CONSOLE);
    app.import_examples();
    // NOR's chase is due on Monday 21 December 2026; the question goes on
    // Wednesday the 16th.
    app.pass("2026-12-16");
    let all = smtp.received();
    let asked = about(&all, "has the written statement of action reached you?");
    assert_eq!(asked.len(), 1);
    let body = read(asked[0]);
    assert!(
        body.contains("falls due on Monday 21 December 2026"),
        "{body}"
    );
    assert!(!body.contains("Wednesday 16 December 2026"), "{body}");
    assert!(
        body.contains("https://keydates.example.org/authorities/NOR"),
        "{body}"
    );
    assert!(!body.contains("keydates confirm"), "{body}");
}

/// `keydates` followed by one of its commands, as a line to type.
fn commands_in(body: &str) -> Vec<String> {
    let commands = [
        "confirm",
        "retry",
        "cancel",
        "set-audited",
        "plan-received",
        "outbox",
        "agenda",
        "move-visit",
        "import",
    ];
    commands
        .iter()
        .filter(|c| body.contains(&format!("keydates {c}")))
        .map(|c| c.to_string())
        .collect()
}

#[test]
fn no_email_and_no_digest_tells_its_reader_to_run_a_command() {
    for console in [None, Some(CONSOLE)] {
        let smtp = SmtpServer::start();
        let mut app = TestApp::with_smtp(smtp.addr);
        if let Some(url) = console {
            app.set("KEYDATES__WEB__PUBLIC_URL", url);
        }
        app.import_examples();
        // Passes a few days apart from the first email to after the held
        // chase's day, so that the digest lists it awaiting confirmation.
        let mut day = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let last = chrono::NaiveDate::from_ymd_opt(2027, 1, 18).unwrap();
        while day <= last {
            app.pass(&day.to_string());
            day = day.checked_add_days(chrono::Days::new(3)).unwrap();
        }
        // RIV's second visit has no audited cases: on its notice's day the
        // lead inspector is asked to record them.
        app.pass("2027-02-25");
        let all = smtp.received();
        assert!(all.len() > 15, "{} emails", all.len());
        let digests: Vec<_> = all
            .iter()
            .filter(|m| read(m).contains("AWAITING CONFIRMATION"))
            .collect();
        assert!(!digests.is_empty(), "a digest lists the held chase");
        if console.is_some() {
            assert!(
                read(digests[0]).contains("https://keydates.example.org/outbox/"),
                "{}",
                read(digests[0])
            );
        }
        for m in &all {
            let body = read(m);
            let found = commands_in(&body);
            assert!(
                found.is_empty(),
                "{:?} tells its reader to run {found:?}:\n{body}",
                m.parsed().subject()
            );
        }
        // The selection reminder says what to record, and where.
        let all = smtp.received();
        let reminders = about(&all, "select the audited cases for monitoring visit 2");
        assert!(
            reminders
                .iter()
                .any(|m| read(m).contains("on the authority's page in the keydates console")),
            "{:?}",
            reminders
                .iter()
                .map(|m| m.parsed().subject().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_late_data_request_asks_for_the_data_by_a_day_still_ahead() {
    // RIV's first visit is on Tuesday 8 December 2026: the request was due on
    // Tuesday 24 November, for the data by Friday the 27th. Nothing ran until
    // Monday the 30th.
    let all = sent_at_first_pass("2026-11-30");
    let requests = about(&all, "child-level data for monitoring visit 1, due by");
    assert_eq!(requests.len(), 1);
    let subject = requests[0].parsed().subject().unwrap().to_string();
    let body = read(requests[0]);
    assert!(!subject.contains("27 November"), "{subject}");
    assert!(!body.contains("27 November"), "{body}");
    assert!(subject.contains("Friday 4 December 2026"), "{subject}");
    assert!(body.contains("Friday 4 December 2026"), "{body}");
}

#[test]
fn a_late_monitoring_report_reminder_does_not_call_another_day_today() {
    // Day 11 of RIV's first visit (8 December 2026) is Tuesday 22 December;
    // the reminder goes two days late.
    let all = sent_at_first_pass("2026-12-24");
    let draft: Vec<_> = all
        .iter()
        .filter(|m| read(m).contains("day 11 of the monitoring visit 1"))
        .collect();
    assert_eq!(draft.len(), 1);
    let body = read(draft[0]);
    assert!(!body.contains("Today is day 11"), "{body}");
    assert!(!body.contains("midday today"), "{body}");
    assert!(
        body.contains("Tuesday 22 December 2026 was day 11"),
        "{body}"
    );

    // On the day itself it says today.
    let all = sent_at_first_pass("2026-12-22");
    assert!(
        all.iter()
            .any(|m| read(m).contains("Today is day 11 of the monitoring visit 1")),
        "on its day"
    );
}

#[test]
fn a_request_and_its_check_agree_on_the_end_of_the_week_and_0_working_days_is_a_working_day() {
    let app = TestApp::new();
    let date = |anchor: &str, offset: &str| app.ok(&["date", anchor, offset]).trim().to_string();
    // A visit on Monday 12 April 2027: two weeks before is Easter Monday, so
    // the request goes on Thursday 25 March (Good Friday follows), and that
    // is the end of its week.
    assert_eq!(date("2027-04-12", "-2 weeks"), "2027-03-25");
    assert_eq!(
        date("2027-04-12", "-2 weeks then end of week"),
        "2027-03-25"
    );
    // A Saturday anchor: the request goes on the Friday, and is back that day.
    assert_eq!(date("2026-12-12", "-2 weeks"), "2026-11-27");
    assert_eq!(
        date("2026-12-12", "-2 weeks then end of week"),
        "2026-11-27"
    );
    // Saturday 26 December 2026: Sunday, then the Boxing Day holiday on the
    // Monday; the first working day is Tuesday the 29th.
    assert_eq!(date("2026-12-26", "0 working days"), "2026-12-29");
}

#[test]
fn a_delegate_from_another_region_reads_one_sending_office_in_both_parts() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // An East delegate at the South West seminar of 27 January 2027.
    let delegates = "seminar_ref,authority_code,name,email\n\
        G2G-SW-2027-01,EAS,Priya Shah,priya.shah@eastwold.example.gov.uk\n";
    assert!(app.import("delegates", "d.csv", delegates).status.success());
    app.pass("2027-01-06");
    let all = smtp.received();
    let invitation = all
        .iter()
        .find(|m| {
            m.to.contains(&"priya.shah@eastwold.example.gov.uk".to_string())
        })
        .expect("the East delegate is invited");
    let parsed = invitation.parsed();
    let text = parsed.body_text(0).unwrap().to_string();
    let html = parsed.body_html(0).unwrap().to_string();
    for part in [&text, &html] {
        assert!(part.contains("Ofsted South West"), "{part}");
        assert!(!part.contains("Ofsted East"), "{part}");
    }
}

#[test]
fn the_data_return_reads_whole_in_a_spreadsheet_with_its_header_frozen_and_yes_or_no_checked() {
    let all = sent_at_first_pass("2026-11-24");
    let request = about(&all, "child-level data for monitoring visit 1, due by");
    assert_eq!(request.len(), 1);
    let xlsx = request[0].attachment_ending(".xlsx");
    let part = |name: &str| crate::helpers::zip_part(&xlsx, name);
    let data = part("xl/worksheets/sheet1.xml");
    assert!(
        data.contains("state=\"frozen\""),
        "header row frozen: {data}"
    );
    assert!(
        data.contains("type=\"list\"") && data.contains("\"Yes,No\""),
        "Yes/No on the audited column: {data}"
    );
    // The explanations sheet gives its text column room to be read.
    let about_sheet = part("xl/worksheets/sheet2.xml");
    let widest = about_sheet
        .split("width=\"")
        .skip(1)
        .filter_map(|w| w.split('"').next()?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert!(widest >= 80.0, "{about_sheet}");
    let core = part("docProps/core.xml");
    assert!(core.contains("<dc:title>Child-level data"), "{core}");
    assert!(
        core.contains("<dc:creator>Ofsted London</dc:creator>"),
        "the sending office: {core}"
    );
}

/// 000 §24-28, 001 §18-19: the chase is requires improvement's alone and
/// carries no form; after the planning event the senior HMI is reminded to
/// send its record, with the form attached, naming who it goes to.
#[test]
fn the_chase_attaches_nothing_and_the_senior_hmi_is_reminded_to_send_the_record() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    // Southshire (inadequate) has no chase and no question about one.
    let agenda = app.agenda("2026-11-23T08:00:00Z");
    for rule in ["plan-chase", "plan-chase-confirmation"] {
        assert!(
            !agenda
                .iter()
                .any(|a| a["rule"] == rule && a["subject"] == "SOU-2026-01"),
            "{rule}"
        );
    }
    // Southshire's action planning visit is held on Thursday 10 December:
    // two working days on, the senior HMI is reminded, with the form.
    app.ok(&["set-planning-event", "SOU-2026-01", "2026-12-10"]);
    app.pass("2026-12-14");
    let all = smtp.received();
    let reminder = about(&all, "send the record of the action planning visit");
    assert_eq!(reminder.len(), 1);
    assert_eq!(reminder[0].to[0], "shmi.south-west@example.org");
    let body = read(reminder[0]);
    for who in [
        "dcs@southshire.example.gov.uk",
        "national.director@example.org",
        "rd.south-west@example.org",
    ] {
        assert!(body.contains(who), "{who}: {body}");
    }
    assert!(body.contains("Thursday 10 December 2026"), "{body}");
    let form = reminder[0].attachment_ending("planning-record-SOU.docx");
    assert!(form.starts_with(b"PK"), "a Word document");
    // For requires improvement the regional director is not copied (000 §24).
    app.ok(&["set-planning-event", "NOR-2026-01", "2026-12-10"]);
    app.pass("2026-12-14T11:00:00Z");
    let all = smtp.received();
    let reminder = about(&all, "send the record of the improvement planning seminar");
    assert_eq!(reminder.len(), 1);
    assert!(!read(reminder[0]).contains("rd.north-west"));
    // Northfield's chase, both roles confirmed, goes with nothing attached.
    app.pass("2026-12-21");
    let id = crate::helpers::agenda_item(
        &app.agenda("2026-12-21T10:00:00Z"),
        "plan-chase",
        "NOR-2026-01",
    )["id"]
        .to_string();
    for role in ["lead_inspector", "shmi"] {
        app.ok(&["confirm", &id, "--as", role]);
    }
    app.pass("2026-12-21T11:00:00Z");
    let all = smtp.received();
    let chase = about(&all, "your written statement of action is due");
    assert_eq!(chase.len(), 1);
    assert_eq!(chase[0].parsed().attachments().count(), 0);
    assert!(
        !read(chase[0]).contains("record of the"),
        "{}",
        read(chase[0])
    );
}

/// A late request's return date follows `child_level_data.late_return`,
/// counted from the day it goes, and never reaches the visit.
#[test]
fn a_late_data_request_gives_the_return_date_config_sets_before_the_visit() {
    let late = |day: &str| {
        let smtp = SmtpServer::start();
        let mut app = TestApp::with_smtp(smtp.addr);
        app.set(
            "KEYDATES__CHILD_LEVEL_DATA__LATE_RETURN",
            "1 week then end of week",
        );
        app.import_examples();
        app.pass(day);
        let all = smtp.received();
        let request = about(&all, "child-level data for monitoring visit");
        let request: Vec<_> = request
            .into_iter()
            .filter(|m| m.parsed().subject().unwrap_or_default().contains("due by"))
            .collect();
        assert_eq!(request.len(), 1, "{day}");
        request[0].parsed().subject().unwrap().to_string()
    };
    // RIV's second visit is on Tuesday 9 March 2027; its request was due on
    // Tuesday 23 February and goes a day late: back by the end of the next week.
    assert!(late("2027-02-24").contains("due by Friday 5 March 2027"));
    // The first visit's (8 December) goes on Monday 30 November: the end of
    // the next week is after the visit begins, so the eve of the visit.
    assert!(late("2026-11-30").contains("due by Monday 7 December 2026"));

    let mut app = TestApp::new();
    app.set("KEYDATES__CHILD_LEVEL_DATA__LATE_RETURN", "-1 week");
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("child_level_data.late_return") && err.contains("points back"),
        "{err}"
    );
}

/// 001 §27: a notice that would go on or after the day the audits are due
/// asks the authority for the impossible; the lead inspector is told instead.
#[test]
fn an_audited_case_notice_too_late_to_meet_goes_to_the_lead_inspector_instead() {
    // RIV's first visit is on Tuesday 8 December 2026; the audits are due on
    // Thursday the 3rd. A day before, the notice still goes to the authority.
    let all = sent_at_first_pass("2026-12-02");
    let notice = about(&all, "audited cases for monitoring visit 1");
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].to[0], "coordinator@riverton.example.gov.uk");
    assert!(read(notice[0]).contains("Thursday 3 December 2026"));

    // On the day itself it could not be met.
    let all = sent_at_first_pass("2026-12-03");
    assert!(about(&all, "audited cases for monitoring visit 1, completed").is_empty());
    let instead = about(&all, "too late to ask for the audited cases");
    assert_eq!(instead.len(), 1);
    assert!(
        !instead[0].to.iter().any(|t| t.contains("riverton")),
        "not the authority: {:?}",
        instead[0].to
    );
    assert_eq!(
        crate::handbooks::header_addresses(instead[0], "To"),
        ["dev.hmi@ofsted.example.gov.uk"]
    );
    let body = read(instead[0]);
    assert!(
        body.contains("RIV-C-1041") && body.contains("decide"),
        "{body}"
    );
    assert!(instead[0].parsed().attachments().count() == 0);
}

const SEMINARS_WITH_TIMETABLE: &str = "seminar_ref,title,region,held_on,venue,confirmed,timetable\n\
    G2G-SW-2027-01,Getting to good: help and protection,south-west,2027-01-27,\"Ofsted regional office, Bristol\",true,10:00 Welcome; 10:30 What the inspections found; 12:45 Close\n";

/// The text of a Word attachment's body, whatever its name ends with.
fn docx_text(m: &Received, suffix: &str) -> String {
    let bytes = m.attachment_ending(suffix);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut xml = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("word/document.xml").unwrap(), &mut xml)
        .unwrap();
    xml
}

/// 000 Annex H: each seminar carries its own timetable; with none at all,
/// the support team is told ahead and the invitation promises none.
#[test]
fn a_seminar_carries_its_own_timetable_and_with_none_the_support_team_is_told() {
    // No timetable anywhere: the support team hears on Tuesday 29 December,
    // a week of working days before the invitations go on 6 January.
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-12-29");
    let all = smtp.received();
    let told = about(&all, "no timetable recorded");
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].to[0], "support.south-west@example.org");
    assert!(read(told[0]).contains("a week from now"));
    app.pass("2027-01-06");
    let all = smtp.received();
    let invitations = about(&all, "Invitation:");
    assert_eq!(invitations.len(), 2);
    assert!(
        !read(invitations[0]).contains("timetable"),
        "{}",
        read(invitations[0])
    );
    let pack = docx_text(invitations[0], ".docx");
    assert!(!pack.contains("Timetable") && !pack.contains("timetable"));

    // The seminar's own timetable, from the seminars file: no reminder, and
    // the invitation and its pack carry it.
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let out = app.import("seminars", "s.csv", SEMINARS_WITH_TIMETABLE);
    assert!(out.status.success(), "{out:?}");
    app.pass("2026-12-29");
    assert!(about(&smtp.received(), "no timetable recorded").is_empty());
    app.pass("2027-01-06");
    let all = smtp.received();
    let invitations = about(&all, "Invitation:");
    assert_eq!(invitations.len(), 2);
    assert!(read(invitations[0]).contains("with the seminar's"));
    let pack = docx_text(invitations[0], ".docx");
    assert!(pack.contains("What the inspections found") && pack.contains("12:45"));
    // Importing the file again without the column keeps it.
    app.import_examples();
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM seminars WHERE seminar_ref = 'G2G-SW-2027-01' AND timetable LIKE '10:00 Welcome;%'"
        ),
        1
    );
}

/// 000 Annex H: the invitation is due no later than 15 working days before
/// the seminar; it goes at the first chance once the seminar is confirmed
/// and has its timetable, not on that last day.
#[test]
fn an_invitation_goes_the_first_working_day_its_seminar_is_confirmed_with_a_timetable() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    let both = format!(
        "{SEMINARS_WITH_TIMETABLE}G2G-NW-2027-01,Getting to good: children in care,north-west,2027-02-24,\"Ofsted regional office, Manchester\",false,10:00 Welcome; 12:30 Close\n"
    );
    let out = app.import("seminars", "s.csv", &both);
    assert!(out.status.success(), "{out:?}");
    // Saturday 7 November: no email goes; Monday 9 November is the first
    // working day the confirmed seminar is seen, eleven weeks before it.
    app.pass("2026-11-07");
    assert!(about(&smtp.received(), "Invitation:").is_empty());
    app.pass("2026-11-09");
    let all = smtp.received();
    let invited = about(&all, "Invitation: Getting to good: help and protection");
    assert_eq!(invited.len(), 2, "one for each delegate");
    let body = read(invited[0]);
    assert!(body.contains("27 January 2027"), "{body}");
    assert!(docx_text(invited[0], ".docx").contains("What the inspections found"));
    assert!(
        about(&all, "children in care").is_empty(),
        "not confirmed yet"
    );

    // Confirmed on Wednesday 2 December: its delegate is invited that day.
    app.ok(&["confirm-seminar", "G2G-NW-2027-01"]);
    app.pass("2026-12-02T11:00:00Z");
    let all = smtp.received();
    assert_eq!(
        about(&all, "Invitation: Getting to good: children in care").len(),
        1
    );
    // And never again.
    app.pass("2027-01-06");
    app.pass("2027-02-03");
    assert_eq!(about(&smtp.received(), "Invitation:").len(), 3);
}

/// Without a timetable an early confirmation does not send the invitation:
/// it waits for the last day allowed, the support team told ahead.
#[test]
fn an_invitation_without_a_timetable_waits_for_its_last_day() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-09");
    app.pass("2027-01-05");
    assert!(about(&smtp.received(), "Invitation:").is_empty());
    app.pass("2027-01-06");
    assert_eq!(about(&smtp.received(), "Invitation:").len(), 2);
}

#[test]
fn a_bad_timetable_is_refused_with_its_line_and_column_and_changes_nothing() {
    let app = TestApp::new();
    app.import_examples();
    for (bad, why) in [
        ("25:00 Welcome", "does not start with a time"),
        ("10:00", "names no session"),
        ("11:00 Lunch; 10:00 Welcome", "time order"),
    ] {
        let file = SEMINARS_WITH_TIMETABLE.replace(
            "10:00 Welcome; 10:30 What the inspections found; 12:45 Close",
            bad,
        );
        let out = app.import("seminars", "s.csv", &file);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            err.contains("line 2") && err.contains("column 7 (timetable)") && err.contains(why),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM seminars WHERE timetable IS NOT NULL"),
        0
    );
}
