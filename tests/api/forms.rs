//! The console's forms as a support person meets them when something is
//! wrong: the page comes back with the form, the value typed and an error
//! summary; a date that only looks wrong waits for a second confirmation;
//! every refusal is a page with a way back. The real daemon, real SQLite.

use std::net::SocketAddr;

use chrono::{Datelike, Days};

use crate::console::{EDITOR, VIEWER, chase_day, console, csrf, get, post, sign_in};
use crate::helpers::{SmtpServer, TestApp};

/// An inadequate case WES-2 with its first visit 40 days after the chase day.
pub(crate) fn with_a_visit(app: &TestApp) -> chrono::NaiveDate {
    let starts = chase_day() + Days::new(40);
    let cases = format!(
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nWES-2,WES,inadequate,{},,hmi@ofsted.example.gov.uk,\n",
        chase_day() - Days::new(100)
    );
    assert!(app.import("cases", "c2.csv", &cases).status.success());
    let visits = format!(
        "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled\nWES-2,1,{starts},hmi@ofsted.example.gov.uk,,false\n"
    );
    assert!(app.import("visits", "v.csv", &visits).status.success());
    starts
}

fn starts_on(app: &TestApp, day: chrono::NaiveDate) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM visits WHERE case_ref = 'WES-2' AND starts_on = '{day}'"
    ))
}

fn move_to(addr: SocketAddr, editor: &str, token: &str, fields: &[(&str, &str)]) -> ureq::Response {
    let mut form = vec![("csrf", token)];
    form.extend_from_slice(fields);
    post(addr, "/visits/WES-2/1/move", Some(editor), &form)
}

#[test]
fn a_visit_moved_to_31_february_comes_back_in_its_form_with_the_value_kept() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let starts = with_a_visit(&app);
    let editor = sign_in(addr, EDITOR);
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    let token = csrf(&page);
    let r = move_to(
        addr,
        &editor,
        &token,
        &[("day", "31"), ("month", "2"), ("year", "2027")],
    );
    assert_eq!(r.status(), 400);
    assert!(r.content_type().starts_with("text/html"));
    let page = r.into_string().unwrap();
    assert!(page.contains("<title>Error: Westmere Council"), "{page}");
    // The summary at the top links to the field; the message is beside it.
    let summary = page
        .find("class=\"error-summary\"")
        .expect("an error summary");
    assert!(summary < page.find("<h1>").unwrap());
    assert!(
        page.contains(
            "href=\"#move-WES-2-1-day\">The visit&#x27;s new first on-site day must be a real date"
        ),
        "{page}"
    );
    assert!(page.contains("id=\"move-WES-2-1-error\""));
    for (field, value) in [("day", "31"), ("month", "2"), ("year", "2027")] {
        assert!(
            page.contains(&format!("id=\"move-WES-2-1-{field}\" name=\"{field}\" inputmode=\"numeric\" maxlength=\"{}\" class=\"w{}\" autocomplete=\"off\" value=\"{value}\"",
                if field == "year" { 4 } else { 2 }, if field == "year" { 4 } else { 2 })),
            "{field} kept as typed"
        );
    }
    // Nothing changed; a missing part is named too.
    assert_eq!(starts_on(&app, starts), 1);
    let r = move_to(
        addr,
        &editor,
        &token,
        &[("day", "3"), ("month", ""), ("year", "2027")],
    );
    assert_eq!(r.status(), 400);
    assert!(
        r.into_string()
            .unwrap()
            .contains("must include a day, a month and a year")
    );
}

#[test]
fn a_visit_moved_into_the_past_waits_for_a_second_confirmation() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let starts = with_a_visit(&app);
    let editor = sign_in(addr, EDITOR);
    let token = csrf(
        &get(addr, "/authorities/WES", Some(&editor))
            .into_string()
            .unwrap(),
    );
    let past = chrono::Utc::now().date_naive() - Days::new(30);
    let typed = [
        ("day", past.day().to_string()),
        ("month", past.month().to_string()),
        ("year", past.year().to_string()),
    ];
    let fields: Vec<(&str, &str)> = typed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = move_to(addr, &editor, &token, &fields);
    assert_eq!(r.status(), 422);
    let page = r.into_string().unwrap();
    assert!(page.contains("is in the past"), "{page}");
    assert!(page.contains("Nothing has been changed"));
    assert!(page.contains("name=\"sure\" value=\"yes\""));
    assert!(page.contains("Yes, the date is right: Move visit 1 of WES-2</button>"));
    assert_eq!(starts_on(&app, starts), 1, "not applied");
    // Confirmed, it is.
    let mut sure = fields.clone();
    sure.push(("sure", "yes"));
    let r = move_to(addr, &editor, &token, &sure);
    assert_eq!(r.status(), 303);
    assert_eq!(starts_on(&app, past), 1);
    // A date more than a year ahead asks too.
    let far = chrono::Utc::now().date_naive() + Days::new(400);
    let r = move_to(addr, &editor, &token, &[("date", &far.to_string())]);
    assert_eq!(r.status(), 422);
    assert!(r.into_string().unwrap().contains("more than a year ahead"));
    assert_eq!(starts_on(&app, far), 0);
}

#[test]
fn every_refusal_is_a_page_in_the_layout_with_a_way_back() {
    let smtp = SmtpServer::start();
    let (_app, addr, _daemon) = console(&smtp);
    let editor = sign_in(addr, EDITOR);
    let viewer = sign_in(addr, VIEWER);
    let token = csrf(
        &get(addr, "/authorities/WES", Some(&viewer))
            .into_string()
            .unwrap(),
    );
    let refusals = [
        (
            get(addr, "/outbox/999999", Some(&editor)),
            404,
            "No such email.",
        ),
        (get(addr, "/nowhere", Some(&editor)), 404, "Page not found"),
        (
            get(addr, "/authorities/NOPE", Some(&editor)),
            404,
            "No such authority.",
        ),
        (
            post(
                addr,
                "/cases/WES-1/plan-received",
                Some(&viewer),
                &[("csrf", &token), ("date", "2026-12-01")],
            ),
            403,
            "Viewers cannot change anything.",
        ),
        (
            post(addr, "/cases/WES-1/plan-received", Some(&editor), &[]),
            403,
            "The form is out of date: reload the page.",
        ),
    ];
    for (r, status, words) in refusals {
        assert_eq!(r.status(), status, "{words}");
        assert!(r.content_type().starts_with("text/html"), "{words}");
        let page = r.into_string().unwrap();
        assert!(page.contains(words), "{words}: {page}");
        assert!(page.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"));
        assert_eq!(page.matches("<h1>").count(), 1);
        assert!(page.contains("<a href=\"/\">Go to Today</a>"), "{page}");
    }
    // A calendar client still gets a plain answer.
    let r = get(addr, "/calendar/inspector/nobody/feed.ics", None);
    assert_eq!(r.status(), 404);
    assert!(r.content_type().starts_with("text/plain"));
}

#[test]
fn a_case_closed_in_the_console_is_asked_about_first_and_plans_nothing_more() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let editor = sign_in(addr, EDITOR);
    let token = csrf(
        &get(addr, "/authorities/WES", Some(&editor))
            .into_string()
            .unwrap(),
    );
    let planned = || {
        app.count("SELECT COUNT(*) FROM outbox WHERE subject = 'WES-1' AND status IN ('pending', 'awaiting_confirmation')")
    };
    assert!(crate::daemon::eventually(
        std::time::Duration::from_secs(20),
        || planned() > 0
    ));
    // First a page that asks, and says what closing does.
    let r = post(
        addr,
        "/cases/WES-1/close",
        Some(&editor),
        &[("csrf", &token)],
    );
    assert_eq!(r.status(), 200);
    let page = r.into_string().unwrap();
    assert!(page.contains("<h1>Close case WES-1?</h1>"), "{page}");
    assert!(page.contains("Every email still to come for it is cancelled"));
    assert!(page.contains("Yes, close case WES-1") && page.contains("No, go back"));
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE closed = 1"), 0);
    // Confirmed: a confirmation page, and nothing more goes.
    let r = post(
        addr,
        "/cases/WES-1/close",
        Some(&editor),
        &[("csrf", &token), ("sure", "yes")],
    );
    assert_eq!(r.status(), 200);
    assert!(
        r.into_string()
            .unwrap()
            .contains("<h1>Case WES-1 closed</h1>")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE closed = 1"), 1);
    assert!(crate::daemon::eventually(
        std::time::Duration::from_secs(20),
        || planned() == 0
    ));
    // Closed cases are shown as closed.
    let list = get(addr, "/authorities", Some(&editor))
        .into_string()
        .unwrap();
    assert!(list.contains("WES-1 (closed)"), "{list}");
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(page.contains("Closed: nothing more is planned for it."));
    assert!(!page.contains("Record the plan for WES-1"));
}

#[test]
fn a_change_says_what_it_did_once_and_a_cancellation_asks_first() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let starts = with_a_visit(&app);
    let editor = sign_in(addr, EDITOR);
    let token = csrf(
        &get(addr, "/authorities/WES", Some(&editor))
            .into_string()
            .unwrap(),
    );
    // Cancelling asks first and changes nothing until confirmed.
    let r = post(
        addr,
        "/visits/WES-2/1/cancel",
        Some(&editor),
        &[("csrf", &token)],
    );
    assert_eq!(r.status(), 200);
    assert!(
        r.into_string()
            .unwrap()
            .contains("<h1>Cancel visit 1 of WES-2?</h1>")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM visits WHERE cancelled = 1"),
        0
    );
    let r = post(
        addr,
        "/visits/WES-2/1/cancel",
        Some(&editor),
        &[("csrf", &token), ("sure", "yes")],
    );
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM visits WHERE cancelled = 1"),
        1
    );
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(
        page.contains("Visit 1 of WES-2 is cancelled. Its emails still to come will not go."),
        "{page}"
    );
    // Moving it reinstates it, and the banner says so, once.
    let moved = starts + Days::new(7);
    let r = move_to(addr, &editor, &token, &[("date", &moved.to_string())]);
    assert_eq!(r.status(), 303);
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    let said = format!(
        "Visit 1 of WES-2 now starts on {} and is no longer cancelled.",
        keydates::calendar::uk_long_date(moved)
    );
    assert!(page.contains(&said), "{page}");
    let again = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(!again.contains(&said));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM visits WHERE cancelled = 1"),
        0
    );
}

#[test]
fn the_status_page_shows_health_counts_per_state_daemons_and_feed_addresses() {
    let smtp = SmtpServer::start();
    let secret = "9f2c7a41e08b5d36c1f4a7e20b9d5c83";
    let (app, addr, _daemon) =
        crate::console::console_with(&smtp, None, &[("KEYDATES__WEB__CALENDAR_SECRET", secret)]);
    let viewer = sign_in(addr, VIEWER);
    assert!(crate::daemon::eventually(
        std::time::Duration::from_secs(20),
        || app.count("SELECT COUNT(*) FROM outbox") > 0
    ));
    let page = get(addr, "/status", Some(&viewer)).into_string().unwrap();
    for words in [
        "<h1>Status</h1>",
        "Last pass",
        "(this machine)",
        "Emails by state",
        "awaiting confirmation",
        "pending",
        "sending",
        "sent",
        "failed",
        "missed",
        "cancelled",
        "Inspector hmi@ofsted.example.gov.uk",
        "Authority WES",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    // The feed address on the page is the one a calendar client is served.
    let page = page.replace("&#x2f;", "/");
    let at = page
        .find(&format!("http://{addr}/calendar/authority/WES/"))
        .unwrap_or_else(|| panic!("WES's feed: {page}"));
    let address = &page[at..page[at..].find('<').unwrap() + at];
    let r = crate::console::agent().get(address).call().unwrap();
    assert!(r.into_string().unwrap().contains("BEGIN:VCALENDAR"));
    // Today shows the same counts, each a link to those emails.
    let today = get(addr, "/", Some(&viewer)).into_string().unwrap();
    let held = app.count("SELECT COUNT(*) FROM outbox WHERE status = 'awaiting_confirmation'");
    assert!(
        today.contains(&format!("<a href=\"/agenda?status=awaiting_confirmation\"><span class=\"count\">{held}</span> awaiting confirmation</a>")),
        "{today}"
    );
}

/// A line waiting for a date names no command: it links to the form on the
/// authority's page that records the date.
#[test]
fn a_line_waiting_for_a_date_links_to_the_form_that_records_it() {
    let smtp = SmtpServer::start();
    let (_app, addr, _daemon) = console(&smtp);
    let editor = sign_in(addr, EDITOR);
    for path in ["/", "/agenda", "/authorities/WES"] {
        let page = get(addr, path, Some(&editor))
            .into_string()
            .unwrap()
            .replace("&#x2f;", "/");
        assert!(
            page.contains("waiting for the planning event&#x27;s date <a href=\"/authorities/WES#event-WES-1-day\">Record the planning event for WES-1</a>"),
            "{path}: {page}"
        );
        assert!(!page.contains("keydates set-planning-event"), "{path}");
    }
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(page.contains("id=\"event-WES-1-day\""));
}

/// A multipart form as a browser sends a file input.
fn upload(
    addr: SocketAddr,
    cookie: &str,
    fields: &[(&str, &str)],
    file: (&str, &str),
) -> ureq::Response {
    let boundary = "keydates-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: text/csv\r\n\r\n{}\r\n--{boundary}--\r\n",
        file.0, file.1
    ));
    match crate::console::agent()
        .post(&format!("http://{addr}/import"))
        .set("Cookie", cookie)
        .set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send_string(&body)
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    }
}

/// The value of the hidden field `name` in a page, as a browser reads it.
fn hidden(page: &str, name: &str) -> String {
    let start = format!("name=\"{name}\" value=\"");
    let at = page.find(&start).unwrap() + start.len();
    let raw = &page[at..at + page[at..].find('"').unwrap()];
    raw.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn a_file_imported_in_the_console_is_checked_shown_then_imported_on_confirmation() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    let editor = sign_in(addr, EDITOR);
    let page = get(addr, "/import", Some(&editor)).into_string().unwrap();
    assert!(page.contains("enctype=\"multipart/form-data\""));
    let token = csrf(&page);
    // A case for an authority nobody has recorded: its line, column and why.
    let bad = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nNEW-1,NOPE,inadequate,2026-11-02,,hmi@ofsted.example.gov.uk,\n";
    let r = upload(
        addr,
        &editor,
        &[("csrf", &token), ("kind", "cases")],
        ("cases.csv", bad),
    );
    assert_eq!(r.status(), 400);
    let page = r.into_string().unwrap();
    assert!(
        page.contains("cases.csv: line 2, column 2 (authority_code): unknown authority `NOPE`"),
        "{page}"
    );
    assert!(page.contains("Nothing has been imported."));
    assert!(
        page.contains("value=\"cases\" checked"),
        "the kind chosen is kept"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM cases WHERE case_ref = 'NEW-1'"),
        0
    );
    // A good file: first what it will do, and nothing done.
    let authorities = "code,name,region,dcs_name,dcs_email,coordinator_email\nWES,Westmere Council,london,Robin Hale,robin.hale@westmere.example.gov.uk,\nABC,Abbeyford Council,london,Sam Ode,dcs@abbeyford.example.gov.uk,\n";
    let r = upload(
        addr,
        &editor,
        &[("csrf", &token), ("kind", "authorities")],
        ("la.csv", authorities),
    );
    assert_eq!(r.status(), 200);
    let page = r.into_string().unwrap();
    assert!(
        page.contains("la.csv holds authorities: 1 to add and 1 to change"),
        "{page}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM authorities"), 1);
    // Confirmed: imported, and said so.
    let r = post(
        addr,
        "/import/confirm",
        Some(&editor),
        &[
            ("csrf", &token),
            ("kind", &hidden(&page, "kind")),
            ("name", &hidden(&page, "name")),
            ("content", &hidden(&page, "content")),
        ],
    );
    assert_eq!(r.status(), 200);
    let done = r.into_string().unwrap();
    assert!(done.contains("<h1>Records imported</h1>"), "{done}");
    assert!(
        done.contains("la.csv: 1 authorities added and 1 changed"),
        "{done}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM authorities"), 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM authorities WHERE code = 'WES' AND dcs_email = 'robin.hale@westmere.example.gov.uk'"),
        1
    );
    // A viewer can look but not import.
    let viewer = sign_in(addr, VIEWER);
    let r = upload(
        addr,
        &viewer,
        &[("csrf", &token), ("kind", "authorities")],
        ("la.csv", authorities),
    );
    assert_eq!(r.status(), 403);
}

#[test]
fn a_directors_address_changed_on_the_authoritys_page_reaches_its_planned_emails() {
    let smtp = SmtpServer::start();
    let (app, addr, _daemon) = console(&smtp);
    assert!(crate::daemon::eventually(
        std::time::Duration::from_secs(20),
        || crate::console::chase_id(&app) > 0
    ));
    let editor = sign_in(addr, EDITOR);
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(
        page.contains("Dana Reed, dcs@westmere.example.gov.uk"),
        "current values shown"
    );
    let token = csrf(&page);
    let details = |dcs_email: &str| {
        post(
            addr,
            "/authorities/WES/details",
            Some(&editor),
            &[
                ("csrf", token.as_str()),
                ("name", "Westmere Council"),
                ("dcs_name", "Robin Hale"),
                ("dcs_email", dcs_email),
                ("coordinator_email", ""),
            ],
        )
    };
    // A bad address comes back in its field, with everything typed kept.
    let r = details("robin.hale@");
    assert_eq!(r.status(), 400);
    let page = r.into_string().unwrap();
    assert!(
        page.contains("href=\"#details-dcs_email\">The director&#x27;s email address"),
        "{page}"
    );
    assert!(page.contains("value=\"Robin Hale\"") && page.contains("value=\"robin.hale@\""));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM authorities WHERE dcs_name = 'Robin Hale'"),
        0
    );
    // A good one is saved, and the held chase goes to it.
    assert_eq!(details("robin.hale@westmere.example.gov.uk").status(), 303);
    let chase = || {
        app.outbox()
            .into_iter()
            .find(|r| r["rule"] == "plan-chase")
            .unwrap()
    };
    assert!(
        crate::daemon::eventually(std::time::Duration::from_secs(20), || {
            chase()["recipients"]["to"]
                .to_string()
                .contains("robin.hale@westmere.example.gov.uk")
        }),
        "{}",
        chase()
    );
    assert!(
        !chase()["recipients"]["to"]
            .to_string()
            .contains("dcs@westmere")
    );
    let page = get(addr, "/authorities/WES", Some(&editor))
        .into_string()
        .unwrap();
    assert!(page.contains("The details of WES are saved."));
    assert!(page.contains("Robin Hale, robin.hale@westmere.example.gov.uk"));
}
