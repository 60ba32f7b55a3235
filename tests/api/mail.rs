//! The emails as recipients get them: headers, both alternatives, the annex.

use mail_parser::MimeHeaders;

use crate::helpers::{Received, SmtpServer, TestApp, zip_part};

fn attachments(m: &Received) -> Vec<(String, Vec<u8>)> {
    let parsed = m.parsed();
    parsed
        .attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap_or_default().to_string(),
                a.contents().to_vec(),
            )
        })
        .collect()
}

fn message_to(smtp: &SmtpServer, subject_part: &str) -> Received {
    smtp.received()
        .into_iter()
        .find(|m| {
            m.parsed()
                .subject()
                .is_some_and(|s| s.contains(subject_part))
        })
        .unwrap_or_else(|| panic!("no message about {subject_part}"))
}

#[test]
fn the_audited_case_notice_arrives_complete_with_its_annex() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-26");
    let m = message_to(&smtp, "audited cases");
    assert_eq!(m.from, "keydates@example.org", "envelope sender");
    let parsed = m.parsed();
    assert_eq!(
        parsed.from().unwrap().first().unwrap().address().unwrap(),
        "keydates@example.org"
    );
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address().unwrap(),
        "coordinator@riverton.example.gov.uk"
    );
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().address().unwrap(),
        "dev.hmi@ofsted.example.gov.uk"
    );
    assert_eq!(
        parsed
            .reply_to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap(),
        "dev.hmi@ofsted.example.gov.uk",
        "replies go to the inspector"
    );
    let subject = parsed.subject().unwrap();
    assert!(subject.contains("Riverton City Council"), "{subject}");
    // Files are due three working days before the visit on Tuesday 8 December.
    assert!(subject.contains("Thursday 3 December 2026"), "{subject}");
    let text = parsed.body_text(0).unwrap();
    let html = parsed.body_html(0).unwrap();
    for body in [&text, &html] {
        assert!(body.contains("RIV-C-1041"), "{body}");
        assert!(body.contains("Thursday 3 December 2026"), "{body}");
    }
    let files = attachments(&m);
    assert_eq!(files.len(), 2, "the notice and the visit's date");
    assert!(files[0].0.ends_with(".docx"), "{}", files[0].0);
    assert_eq!(files[1].0, "visit.ics");
    let doc = zip_part(&files[0].1, "word/document.xml");
    assert!(doc.contains("Riverton City Council"));
    assert!(doc.contains("RIV-C-1187"));
    assert!(doc.contains("Thursday 3 December 2026"));
}

#[test]
fn the_data_request_carries_the_return_template_and_no_data() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    app.import_examples();
    app.pass("2026-11-24");
    let m = message_to(&smtp, "child-level data");
    let files = attachments(&m);
    assert_eq!(files.len(), 2, "the return template and the visit's date");
    assert!(files[0].0.ends_with(".xlsx"), "{}", files[0].0);
    assert_eq!(files[1].0, "visit.ics");
    let sheet = zip_part(&files[0].1, "xl/worksheets/sheet1.xml");
    let strings = zip_part(&files[0].1, "xl/sharedStrings.xml");
    assert!(
        strings.contains("Audited since the last visit"),
        "{strings}"
    );
    // Only a header row: the template asks, it never carries children's data.
    assert!(sheet.contains("<row r=\"1\""), "{sheet}");
    assert!(!sheet.contains("<row r=\"2\""), "{sheet}");
    let text = m.parsed().body_text(0).unwrap().to_string();
    assert!(text.contains("secure"), "{text}");
}

#[test]
fn record_text_cannot_inject_headers_or_template_code() {
    let smtp = SmtpServer::start();
    let app = TestApp::with_smtp(smtp.addr);
    // A line break in a record is refused at the door, naming its place.
    let with_break = "code,name,region,dcs_name,dcs_email,coordinator_email
EVL,\"Evil\r\nBcc: victim@elsewhere.example\",london,Dr X,dcs@evil.example.gov.uk,
";
    let out = app.import("authorities", "a.csv", with_break);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("column 2 (name)"));
    let authorities = "code,name,region,dcs_name,dcs_email,coordinator_email
EVL,\"Evil {{ 7 * 7 }} Bcc: victim@elsewhere.example <script>x</script>\",london,\"{% raw %}Dr {{ x }}\",dcs@evil.example.gov.uk,
";
    assert!(
        app.import("authorities", "a.csv", authorities)
            .status
            .success()
    );
    let cases = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email
EVL-1,EVL,requires_improvement,2026-11-20,,hmi@ofsted.example.gov.uk,
";
    assert!(app.import("cases", "c.csv", cases).status.success());
    app.pass("2026-11-23");
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(
        !m.to.iter().any(|t| t.contains("victim")),
        "no extra recipient: {:?}",
        m.to
    );
    let parsed = m.parsed();
    assert!(parsed.header("Bcc").is_none());
    let subject = parsed.subject().unwrap();
    assert!(
        subject.contains("{{ 7 * 7 }}") && !subject.contains("49"),
        "{subject}"
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("{% raw %}Dr {{ x }}"), "{text}");
    let html = parsed.body_html(0).unwrap();
    assert!(
        !html.contains("<script") && html.contains("Evil {{ 7 * 7 }}"),
        "{html}"
    );
}

#[test]
fn the_first_run_writes_eml_files_with_their_annexes() {
    let app = TestApp::new();
    app.import_examples();
    app.pass("2026-11-26");
    let emls: Vec<_> = std::fs::read_dir(app.spool())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(!emls.is_empty());
    let with_annex = emls
        .iter()
        .map(|p| Received {
            from: String::new(),
            to: Vec::new(),
            data: std::fs::read(p).unwrap(),
            tls: false,
            login: None,
        })
        .filter(|m| !attachments(m).is_empty())
        .count();
    assert!(with_annex >= 1, "an .eml carries its annex");
}

#[test]
fn preview_shows_the_email_before_it_goes() {
    let app = TestApp::new();
    app.import_examples();
    let out = app.ok(&[
        "preview",
        "--rule",
        "plan-chase",
        "--subject",
        "NOR-2026-01",
    ]);
    assert!(out.contains("To: dcs@northfield.example.gov.uk"), "{out}");
    assert!(
        out.contains("Northfield Metropolitan Borough Council"),
        "{out}"
    );
    assert!(
        !out.contains("[attachment]"),
        "the chase carries no form: {out}"
    );
    let eml = app.preview_eml("plan-chase", "NOR-2026-01");
    assert!(std::fs::read(&eml).unwrap().len() > 1000);
    // 001 has no chase: an inadequate authority's plan is not chased.
    let err = app.fails(&[
        "preview",
        "--rule",
        "plan-chase",
        "--subject",
        "SOU-2026-01",
    ]);
    assert!(err.contains("plans nothing"), "{err}");
    let err = app.fails(&["preview", "--rule", "plan-chase", "--subject", "NOPE"]);
    assert!(err.contains("plans nothing"), "{err}");
}

/// `preview ID --now T` shows the email that goes at T, part for part: its
/// date, its text and HTML, and every attachment's bytes (the documents'
/// dates and the calendar's DTSTAMP included).
#[test]
fn a_preview_is_the_email_that_goes_at_the_same_instant() {
    let app = TestApp::new();
    app.import_examples();
    app.pass("2026-11-20");
    let outbox = app.outbox();
    let row = crate::helpers::rows_where(&outbox, "child-data-request", "RIV-2026-01#1")[0];
    assert_eq!(row["status"], "pending", "{row}");
    let id = row["id"].to_string();
    let at = "2026-11-24T09:00:00Z";
    let preview_path = app.dir.path().join("preview.eml");
    app.ok(&[
        "preview",
        &id,
        "--now",
        at,
        "--eml",
        preview_path.to_str().unwrap(),
    ]);
    app.pass(at);
    let outbox = app.outbox();
    let row = crate::helpers::rows_where(&outbox, "child-data-request", "RIV-2026-01#1")[0];
    assert_eq!(row["status"], "sent", "{row}");
    let message_id = row["message_id"].as_str().unwrap();
    let read = |path: &std::path::Path| Received {
        from: String::new(),
        to: Vec::new(),
        data: std::fs::read(path).unwrap(),
        tls: false,
        login: None,
    };
    let sent = std::fs::read_dir(app.spool())
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .find(|m| m.header("Message-ID").as_deref() == Some(message_id))
        .expect("the sent email in the spool");
    let preview = read(&preview_path);
    for header in [
        "Date",
        "Subject",
        "To",
        "Cc",
        "Reply-To",
        "From",
        "Auto-Submitted",
    ] {
        assert_eq!(preview.header(header), sent.header(header), "{header}");
    }
    let (p, s) = (preview.parsed(), sent.parsed());
    assert_eq!(p.body_text(0), s.body_text(0));
    assert_eq!(p.body_html(0), s.body_html(0));
    let (pa, sa) = (attachments(&preview), attachments(&sent));
    assert_eq!(pa.len(), 2, "a workbook and a calendar");
    assert_eq!(pa, sa);
}
