//! Key dates in people's own calendars: the feeds, read back by an
//! independent iCalendar parser, and the invitations attached to emails.

use std::collections::{BTreeMap, BTreeSet};

use crate::daemon::{log_of, start};
use crate::helpers::{SmtpServer, TestApp};

/// The first message whose subject contains `part`.
fn first_with(smtp: &SmtpServer, part: &str) -> crate::helpers::Received {
    smtp.received()
        .into_iter()
        .find(|m| m.parsed().subject().unwrap_or_default().contains(part))
        .unwrap_or_else(|| panic!("no message about {part}"))
}

/// Each event's UID and start date, as the `ical` crate reads the text.
fn events(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for calendar in ical::IcalParser::new(std::io::BufReader::new(text.as_bytes())) {
        let calendar = calendar.expect("valid iCalendar");
        for event in calendar.events {
            let value = |name: &str| {
                event
                    .properties
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.value.clone())
                    .unwrap_or_default()
            };
            out.insert(value("UID"), value("DTSTART"));
        }
    }
    out
}

/// The due dates of the agenda's lines that copy or address `who`.
fn agenda_dates(app: &TestApp, who: &str) -> Vec<String> {
    let mut dates: Vec<String> = app
        .agenda("2026-11-23T08:00:00Z")
        .iter()
        .filter(|i| {
            ["to", "cc"]
                .iter()
                .any(|k| i[*k].as_array().unwrap().iter().any(|a| a == who))
        })
        .filter_map(|i| i["due_on"].as_str().map(|d| d.replace('-', "")))
        .collect();
    dates.sort();
    dates
}

#[test]
fn an_inspectors_feed_holds_exactly_their_agenda_and_keeps_its_uids_when_a_visit_moves() {
    let app = TestApp::new();
    app.import_examples();
    app.pass("2026-11-23");
    let who = "dev.hmi@ofsted.example.gov.uk";
    let feed = app.ok(&["ics", "--inspector", who]);
    let before = events(&feed);
    assert!(!before.is_empty());
    // The visits' own first days, beside the emails' days.
    let days = |visit_days: bool| -> Vec<String> {
        let mut d: Vec<String> = before
            .iter()
            .filter(|(uid, _)| uid.starts_with("visit.") == visit_days)
            .map(|(_, start)| start.clone())
            .collect();
        d.sort();
        d
    };
    assert_eq!(days(true), ["20261208", "20270309"]);
    assert_eq!(
        days(false),
        agenda_dates(&app, who),
        "the agenda's dates, no more, no fewer"
    );

    app.ok(&["move-visit", "RIV-2026-01", "2", "2027-03-16"]);
    let after = events(&app.ok(&["ics", "--inspector", who]));
    let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        keys(&before),
        keys(&after),
        "the same events, moved, not added"
    );
    let moved: Vec<_> = before
        .iter()
        .filter(|(uid, start)| after[*uid] != **start)
        .collect();
    assert!(!moved.is_empty(), "the second visit's dates moved");
    assert!(
        moved.iter().all(|(uid, _)| uid.contains("RIV-2026-01_2")),
        "{moved:?}"
    );

    let err = app.fails(&["ics", "--inspector", "nobody@ofsted.example.gov.uk"]);
    assert!(err.contains("no such"), "{err}");
}

#[test]
fn a_feed_address_opens_without_a_session_and_a_new_secret_revokes_it() {
    let smtp = SmtpServer::start();
    let mut app = TestApp::with_smtp(smtp.addr);
    let addr = app.hold_console();
    app.set(
        "KEYDATES__WEB__CALENDAR_SECRET",
        "9f2c7a41e08b5d36c1f4a7e20b9d5c83",
    );
    app.import_examples();
    let out = app.run(&["ics", "--authority", "RIV"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let url = stderr
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_string();
    let daemon = start(&app, &[], &["run", "--now", "2026-11-23"]);
    assert!(crate::daemon::console_up(&app), "{}", log_of(&app));
    let response = ureq::get(&url).call().unwrap();
    assert_eq!(
        response.header("content-type"),
        Some("text/calendar; charset=utf-8")
    );
    let body = response.into_string().unwrap();
    assert!(events(&body).len() > 3, "{body}");
    assert!(body.contains("RIV"));
    let wrong = url.replace(".ics", "0.ics");
    assert!(matches!(
        ureq::get(&wrong).call(),
        Err(ureq::Error::Status(404, _))
    ));

    // The owner is in the address: one owner's token opens no other's feed.
    assert!(url.contains("/calendar/authority/RIV/"), "{url}");
    let who = "dev.hmi@ofsted.example.gov.uk";
    let out = app.run(&["ics", "--inspector", who]);
    let inspector_url = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    assert!(
        inspector_url.contains("/calendar/inspector/dev.hmi@ofsted.example.gov.uk/"),
        "{inspector_url}"
    );
    let served = ureq::get(&inspector_url)
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert_eq!(
        events(&served),
        events(&String::from_utf8_lossy(&out.stdout)),
        "the address serves what `ics` writes"
    );
    let token = |u: &str| u.rsplit('/').next().unwrap().to_string();
    for forged in [
        url.replace(&token(&url), &token(&inspector_url)),
        url.replace("/authority/RIV/", "/authority/BRD/"),
        format!("http://{addr}/calendar/{}", token(&url)),
        url.replace(
            &token(&url),
            &token(&url).to_uppercase().replace("ICS", "ics"),
        ),
    ] {
        let refused = ureq::get(&forged).call();
        assert!(
            matches!(refused, Err(ureq::Error::Status(404, _))),
            "{forged}: {refused:?}"
        );
    }

    // Without a session, a client's requests are limited: a flood is refused.
    let statuses: Vec<u16> = (0..150)
        .map(
            |_| match ureq::get(&format!("http://{addr}/metrics")).call() {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(code, _)) => code,
                Err(e) => panic!("{e}"),
            },
        )
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        matches!(ureq::get(&url).call(), Err(ureq::Error::Status(429, _))),
        "the feeds share the limit"
    );
    drop(daemon);

    app.set(
        "KEYDATES__WEB__CALENDAR_SECRET",
        "4be81d0c7f3a92e65b0c1d8f4a7e2639",
    );
    let addr2 = app.hold_console();
    let _daemon = start(&app, &[], &["run", "--now", "2026-11-23"]);
    assert!(crate::daemon::console_up(&app), "{}", log_of(&app));
    let old = url.replace(&addr.to_string(), &addr2.to_string());
    assert!(
        matches!(ureq::get(&old).call(), Err(ureq::Error::Status(404, _))),
        "the old address is revoked"
    );
}

#[test]
fn the_seminar_invitation_carries_a_calendar_request_and_visit_emails_the_visit() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2027-01-06");
    let invitation = first_with(&smtp, "Invitation:");
    let text = String::from_utf8_lossy(&invitation.data).to_string();
    assert!(text.contains("seminar.ics"), "attached");
    let body = String::from_utf8_lossy(&invitation.attachment_ending("seminar.ics")).to_string();
    assert!(body.contains("METHOD:REQUEST"), "{body}");
    assert_eq!(events(&body).values().next().unwrap(), "20270127");
    // Outlook can answer it: the delegate is an attendee asked to reply.
    let calendar = ical::IcalParser::new(std::io::BufReader::new(body.as_bytes()))
        .next()
        .unwrap()
        .unwrap();
    let event = &calendar.events[0];
    let property = |name: &str| event.properties.iter().find(|p| p.name == name).unwrap();
    let attendee = property("ATTENDEE");
    let param = |name: &str| {
        attendee
            .params
            .as_ref()
            .and_then(|ps| ps.iter().find(|(n, _)| n == name))
            .map(|(_, v)| v.join(","))
            .unwrap_or_default()
    };
    assert!(
        attendee
            .value
            .as_deref()
            .unwrap_or_default()
            .starts_with("mailto:"),
        "{body}"
    );
    let to = invitation.to.clone();
    assert!(
        to.iter()
            .any(|t| attendee.value.as_deref() == Some(&format!("mailto:{t}"))),
        "{body}"
    );
    assert!(!param("CN").is_empty(), "{body}");
    assert_eq!(param("RSVP"), "TRUE", "{body}");
    assert_eq!(param("PARTSTAT"), "NEEDS-ACTION", "{body}");
    assert!(
        property("ORGANIZER")
            .value
            .as_deref()
            .unwrap_or_default()
            .starts_with("mailto:support."),
        "{body}"
    );

    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    let request = first_with(&smtp, "child-level data for monitoring visit 1");
    let body = String::from_utf8_lossy(&request.attachment_ending("visit.ics")).to_string();
    assert_eq!(events(&body).values().next().unwrap(), "20261208", "{body}");
}

/// Each event's DTSTART and DTEND, and the calendar's PRODID and name, as
/// the `ical` crate reads them.
fn spans(text: &str) -> (Vec<(String, String)>, String, String) {
    let mut out = Vec::new();
    let mut prodid = String::new();
    let mut name = String::new();
    for calendar in ical::IcalParser::new(std::io::BufReader::new(text.as_bytes())) {
        let calendar = calendar.expect("valid iCalendar");
        for p in &calendar.properties {
            match p.name.as_str() {
                "PRODID" => prodid = p.value.clone().unwrap_or_default(),
                "X-WR-CALNAME" => name = p.value.clone().unwrap_or_default(),
                _ => {}
            }
        }
        for event in calendar.events {
            let value = |n: &str| {
                event
                    .properties
                    .iter()
                    .find(|p| p.name == n)
                    .and_then(|p| p.value.clone())
                    .unwrap_or_default()
            };
            out.push((value("DTSTART"), value("DTEND")));
        }
    }
    (out, prodid, name)
}

fn next_day(yyyymmdd: &str) -> String {
    chrono::NaiveDate::parse_from_str(yyyymmdd, "%Y%m%d")
        .unwrap()
        .succ_opt()
        .unwrap()
        .format("%Y%m%d")
        .to_string()
}

#[test]
fn every_calendar_entry_lasts_its_whole_day_and_names_keydates_as_its_maker() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2027-01-06");
    let feed = app.ok(&["ics", "--authority", "RIV"]);
    let (events, prodid, name) = spans(&feed);
    assert!(!events.is_empty());
    assert!(prodid.contains("keydates"), "{prodid}");
    assert!(
        name.contains("RIV"),
        "the feed is named for its owner: {name}"
    );
    let invitation = first_with(&smtp, "Invitation:");
    let seminar = String::from_utf8_lossy(&invitation.attachment_ending("seminar.ics")).to_string();
    let (seminar_events, seminar_prodid, _) = spans(&seminar);
    assert!(seminar_prodid.contains("keydates"), "{seminar_prodid}");
    // RFC 5545: an all-day event's DTEND is the day after it.
    for (start, end) in events.iter().chain(&seminar_events) {
        assert_eq!(*end, next_day(start), "{start}..{end}");
    }
}

/// What a subscriber sees: events titled for people, dates in UK style, a
/// cancelled visit marked cancelled, a moved one in one place only.
#[test]
fn feed_events_read_for_people_and_say_when_they_are_cancelled() {
    let app = TestApp::new();
    app.import_examples();
    app.pass("2026-11-23");
    let feed = app.ok(&["ics", "--authority", "RIV"]);
    let unfolded = feed.replace("\r\n ", "");
    assert!(
        unfolded.contains("SUMMARY:Monitoring visit 2 starts: Riverton City Council"),
        "{unfolded}"
    );
    assert!(unfolded.contains("Tuesday 9 March 2027"), "{unfolded}");
    assert!(
        unfolded.contains(
            "SUMMARY:Ask for child-level data ahead of a monitoring visit: Riverton City Council\\, monitoring visit 1"
        ),
        "{unfolded}"
    );
    assert!(!unfolded.contains("STATUS:CANCELLED"));

    // The first visit moves: its emails' events stand once, on the new days.
    app.ok(&["move-visit", "RIV-2026-01", "1", "2026-12-15"]);
    app.pass("2026-11-23T10:00:00Z");
    let moved = app.ok(&["ics", "--authority", "RIV"]);
    let mut uids: Vec<_> = events(&moved).into_keys().collect();
    let all = uids.len();
    uids.dedup();
    assert_eq!(uids.len(), all);
    assert_eq!(
        moved.matches("BEGIN:VEVENT").count(),
        all,
        "no UID twice: {moved}"
    );
    // Cancelled, the visit day says so.
    app.ok(&["cancel-visit", "RIV-2026-01", "2"]);
    let cancelled = app.ok(&["ics", "--authority", "RIV"]).replace("\r\n ", "");
    let visit_two = cancelled
        .split("BEGIN:VEVENT")
        .find(|e| e.contains("SUMMARY:Monitoring visit 2 starts"))
        .unwrap();
    assert!(visit_two.contains("STATUS:CANCELLED"), "{visit_two}");

    // An authority's feed holds its seminar's day.
    let sou = app.ok(&["ics", "--authority", "SOU"]).replace("\r\n ", "");
    assert!(
        sou.contains("SUMMARY:'Getting to good' seminar: Getting to good: help and protection"),
        "{sou}"
    );
}

/// A property of the calendar, else of its first event, as the `ical`
/// crate reads it.
fn property(ics: &str, name: &str) -> String {
    let calendar = ical::IcalParser::new(std::io::BufReader::new(ics.as_bytes()))
        .next()
        .unwrap()
        .unwrap();
    let on_calendar = calendar.properties.iter().find(|p| p.name == name);
    on_calendar
        .or_else(|| {
            calendar.events[0]
                .properties
                .iter()
                .find(|p| p.name == name)
        })
        .and_then(|p| p.value.clone())
        .unwrap_or_default()
}

/// RFC 5546: a moved seminar's new invitation has the same UID and a higher
/// SEQUENCE, so calendars replace the old entry instead of adding one.
#[test]
fn a_moved_seminars_invitation_replaces_the_old_one() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2027-01-06");
    let first = first_with(&smtp, "Invitation:");
    let before = String::from_utf8_lossy(&first.attachment_ending("seminar.ics")).to_string();
    assert_eq!(property(&before, "SEQUENCE"), "0");

    // A week later: re-imported with its new day, re-importing the same day
    // changes nothing.
    let moved = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/seminars.csv"),
    )
    .unwrap()
    .replace(",2027-01-27,", ",2027-02-03,");
    for _ in 0..2 {
        assert!(app.import("seminars", "s.csv", &moved).status.success());
    }
    app.pass("2027-01-13");
    let again: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| {
            let subject = m.parsed().subject().unwrap_or_default().to_string();
            subject.starts_with("Invitation:") && subject.contains("3 February 2027")
        })
        .collect();
    assert_eq!(again.len(), 2, "each delegate invited again");
    let after = String::from_utf8_lossy(&again[0].attachment_ending("seminar.ics")).to_string();
    assert_eq!(property(&after, "UID"), property(&before, "UID"));
    assert_eq!(property(&after, "SEQUENCE"), "1");
    assert_eq!(property(&after, "DTSTART"), "20270203");
}

/// RFC 5546 §3.2.5: a cancelled seminar's delegates are told, with a
/// cancellation of the same UID and a higher SEQUENCE.
#[test]
fn a_cancelled_seminar_sends_its_delegates_a_cancellation_of_the_same_event() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2027-01-06");
    let invitation = first_with(&smtp, "Invitation:");
    let request = String::from_utf8_lossy(&invitation.attachment_ending("seminar.ics")).to_string();
    app.ok(&["cancel-seminar", "G2G-SW-2027-01", "--on", "2027-01-07"]);
    app.pass("2027-01-07");
    let cancelled: Vec<_> = smtp
        .received()
        .into_iter()
        .filter(|m| {
            m.parsed()
                .subject()
                .unwrap_or_default()
                .starts_with("Cancelled:")
        })
        .collect();
    assert_eq!(cancelled.len(), 2, "each delegate");
    assert!(cancelled.iter().any(|m| {
        m.to.contains(&"jo.whitfield@southshire.example.gov.uk".to_string())
    }));
    let text = String::from_utf8_lossy(&cancelled[0].data).to_string();
    assert!(text.contains("method=CANCEL"), "the part says what it is");
    let cancel =
        String::from_utf8_lossy(&cancelled[0].attachment_ending("seminar.ics")).to_string();
    assert_eq!(property(&cancel, "METHOD"), "CANCEL");
    assert_eq!(property(&cancel, "STATUS"), "CANCELLED");
    assert_eq!(property(&cancel, "UID"), property(&request, "UID"));
    assert_eq!(property(&cancel, "SEQUENCE"), "1");
    assert!(cancelled[0].text().contains("has been cancelled"));
    // Once only.
    app.pass("2027-01-07T12:00:00Z");
    assert_eq!(
        smtp.received()
            .iter()
            .filter(|m| m
                .parsed()
                .subject()
                .unwrap_or_default()
                .starts_with("Cancelled:"))
            .count(),
        2
    );
}
