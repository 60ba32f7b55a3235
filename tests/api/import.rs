//! The CSV import contract: headers, upserts, and every bad row rejected whole.

use crate::helpers::TestApp;

const AUTHORITIES: &str = "code,name,region,dcs_name,dcs_email,coordinator_email
SOU,Southshire,south-west,Priya Raman,dcs@southshire.example.gov.uk,
NOR,Northfield,north-west,Tom Ashworth,dcs@northfield.example.gov.uk,visits@northfield.example.gov.uk
";

const CASES: &str = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email
SOU-1,SOU,inadequate,2026-11-02,,anna@ofsted.example.gov.uk,
";

fn app_with_basics() -> TestApp {
    let app = TestApp::new();
    assert!(
        app.import("authorities", "a.csv", AUTHORITIES)
            .status
            .success()
    );
    assert!(app.import("cases", "c.csv", CASES).status.success());
    app
}

#[test]
fn examples_import_and_report_added_then_updated() {
    let app = TestApp::new();
    let file = crate::helpers::examples().join("authorities.csv");
    let first = app.ok(&["import", "authorities", file.to_str().unwrap()]);
    assert!(first.contains("4 added, 0 updated"), "{first}");
    let again = app.ok(&["import", "authorities", file.to_str().unwrap()]);
    assert!(again.contains("0 added, 4 updated"), "{again}");
    app.import_examples();
    assert_eq!(app.count("SELECT COUNT(*) FROM delegates"), 3);
    assert_eq!(app.count("SELECT COUNT(*) FROM visits"), 3);
}

#[test]
fn an_upsert_changes_the_record_in_place() {
    let app = app_with_basics();
    let moved = CASES.replace("2026-11-02", "2026-11-09");
    let out = app.import("cases", "c2.csv", &moved);
    assert!(out.status.success());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM cases WHERE report_received_on = '2026-11-09'"),
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM cases"), 1);
}

/// Each bad file: what it holds, and what the error must name.
fn rejected(app: &TestApp, kind: &str, content: &str, expect: &[&str]) {
    let tables = ["authorities", "cases", "visits", "seminars", "delegates"];
    let before: Vec<i64> = tables
        .iter()
        .map(|t| app.count(&format!("SELECT COUNT(*) FROM {t}")))
        .collect();
    let name = format!("bad-{kind}.csv");
    let out = app.import(kind, &name, content);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "accepted: {content}");
    assert_eq!(stderr.trim().lines().count(), 1, "one-line error: {stderr}");
    assert!(stderr.contains(&name), "names the file: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "expected `{e}` in: {stderr}");
    }
    let after: Vec<i64> = tables
        .iter()
        .map(|t| app.count(&format!("SELECT COUNT(*) FROM {t}")))
        .collect();
    assert_eq!(before, after, "a rejected file changed nothing");
}

#[test]
fn bad_dates_are_rejected_with_line_and_column() {
    let app = app_with_basics();
    let content = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email
SOU-2,SOU,inadequate,2026-11-03,,anna@ofsted.example.gov.uk,
SOU-3,SOU,inadequate,2026-13-40,,anna@ofsted.example.gov.uk,
";
    rejected(
        &app,
        "cases",
        content,
        &["line 3", "column 4 (report_received_on)", "not a date"],
    );
}

#[test]
fn unknown_authority_and_case_are_rejected() {
    let app = app_with_basics();
    let case = "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email
X-1,XXX,inadequate,2026-11-03,,anna@ofsted.example.gov.uk,
";
    rejected(
        &app,
        "cases",
        case,
        &[
            "line 2",
            "column 2 (authority_code)",
            "unknown authority `XXX`",
        ],
    );
    let visit = "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled
NOPE-1,1,2027-03-01,anna@ofsted.example.gov.uk,,
";
    rejected(
        &app,
        "visits",
        visit,
        &["line 2", "column 1 (case_ref)", "unknown case `NOPE-1`"],
    );
}

#[test]
fn malformed_email_is_rejected() {
    let app = TestApp::new();
    let content = AUTHORITIES.replace("dcs@northfield.example.gov.uk", "dcs-at-northfield");
    rejected(
        &app,
        "authorities",
        &content,
        &["line 3", "column 5 (dcs_email)", "not an email address"],
    );
}

#[test]
fn a_seventh_audited_case_is_rejected() {
    let app = app_with_basics();
    let content = "case_ref,visit_no,starts_on,lead_inspector_email,audited_cases,cancelled
SOU-1,1,2027-03-01,anna@ofsted.example.gov.uk,A1;A2;A3;A4;A5;A6;A7,false
";
    rejected(
        &app,
        "visits",
        content,
        &["line 2", "column 5 (audited_cases)", "at most 6"],
    );
}

#[test]
fn unknown_region_is_rejected() {
    let app = TestApp::new();
    let content = AUTHORITIES.replace("north-west", "midlands");
    rejected(
        &app,
        "authorities",
        &content,
        &["line 3", "column 3 (region)", "not a region"],
    );
    let seminar = "seminar_ref,title,region,held_on,venue,confirmed
S1,Getting to good,wessex,2027-01-27,Bristol,true
";
    rejected(
        &app,
        "seminars",
        seminar,
        &["line 2", "column 3 (region)", "wessex"],
    );
}

#[test]
fn a_duplicate_key_in_the_file_is_rejected() {
    let app = TestApp::new();
    let content = format!(
        "{AUTHORITIES}SOU,Southshire again,south-west,P R,dcs@southshire.example.gov.uk,\n"
    );
    rejected(
        &app,
        "authorities",
        &content,
        &["line 4", "`SOU` appears twice", "first on line 2"],
    );
}

#[test]
fn wrong_headers_and_extra_columns_are_rejected() {
    let app = TestApp::new();
    let renamed = AUTHORITIES.replace("dcs_email", "email");
    rejected(
        &app,
        "authorities",
        &renamed,
        &["line 1", "column 5", "expected `dcs_email`"],
    );
    let extra = AUTHORITIES
        .replacen("coordinator_email", "coordinator_email,notes", 1)
        .replace(".gov.uk,\n", ".gov.uk,,x\n");
    rejected(
        &app,
        "authorities",
        &extra,
        &["line 1", "column 7", "extra column"],
    );
    let short_row = format!("{AUTHORITIES}EAS,Eastwold,east\n");
    rejected(
        &app,
        "authorities",
        &short_row,
        &["line 4", "has 3 fields, expected 6"],
    );
    rejected(&app, "authorities", "", &["line 1", "empty"]);
}

#[test]
fn a_bad_row_after_good_ones_leaves_nothing_behind() {
    let app = TestApp::new();
    let content = format!("{AUTHORITIES}EAS,Eastwold,east,Helen,not-an-email,\n");
    rejected(&app, "authorities", &content, &["line 4"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM authorities"), 0);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let app = TestApp::new();
    let err = app.fails(&["import", "cases", "/nonexistent/cases.csv"]);
    assert!(
        err.contains("/nonexistent/cases.csv") && err.contains("cannot be read"),
        "{err}"
    );
}

#[test]
fn record_edits_name_what_is_missing() {
    let app = app_with_basics();
    let err = app.fails(&["plan-received", "NOPE", "--on", "2026-12-01"]);
    assert!(err.contains("no case `NOPE`"), "{err}");
    let err = app.fails(&["move-visit", "SOU-1", "9", "2027-01-01"]);
    assert!(err.contains("no visit `SOU-1#9`"), "{err}");
    let err = app.fails(&["plan-received", "SOU-1", "--on", "2026-10-01"]);
    assert!(err.contains("before the report"), "{err}");
    app.ok(&["plan-received", "SOU-1", "--on", "2026-12-01"]);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM cases WHERE plan_received_on = '2026-12-01'"),
        1
    );
}

#[test]
fn oversized_fields_and_control_characters_are_rejected_with_their_place() {
    let app = app_with_basics();
    let huge = "x".repeat(10_000);
    rejected(
        &app,
        "authorities",
        &format!(
            "code,name,region,dcs_name,dcs_email,coordinator_email\nBIG,{huge},london,A,a@b.org,\n"
        ),
        &["line 2", "column 2 (name)", "at most 300"],
    );
    for (bad, what) in [
        ("Evil\u{202E}txt", "U+202E"),
        ("Nul\u{0}here", "U+0000"),
        ("Esc\u{1b}[31m", "U+001B"),
        // Invisible characters that make two names look the same, or break a line.
        ("Zero\u{200B}width", "U+200B"),
        ("Line\u{2028}break", "U+2028"),
        ("Para\u{2029}graph", "U+2029"),
        ("Byte\u{FEFF}order", "U+FEFF"),
    ] {
        rejected(
            &app,
            "authorities",
            &format!(
                "code,name,region,dcs_name,dcs_email,coordinator_email\nBAD,{bad},london,A,a@b.org,\n"
            ),
            &["line 2", "column 2 (name)", what],
        );
    }
    rejected(
        &app,
        "cases",
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nSOU#2,SOU,inadequate,2026-11-02,,anna@ofsted.example.gov.uk,\n",
        &["line 2", "column 1 (case_ref)", "`#`"],
    );
    // A reference stands in the console's addresses: it cannot carry a path.
    rejected(
        &app,
        "cases",
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nC2/../../../outbox/15/confirm?,SOU,inadequate,2026-11-02,,anna@ofsted.example.gov.uk,\n",
        &["line 2", "column 1 (case_ref)", "`/`"],
    );
    rejected(
        &app,
        "cases",
        "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nC2..x,SOU,inadequate,2026-11-02,,anna@ofsted.example.gov.uk,\n",
        &["line 2", "column 1 (case_ref)", "`..`"],
    );
}

#[test]
fn dates_outside_2000_to_2100_are_rejected() {
    let app = app_with_basics();
    for year in ["1900", "9999"] {
        rejected(
            &app,
            "cases",
            &format!(
                "case_ref,authority_code,judgement,report_received_on,plan_received_on,lead_inspector_email,dfe_link_email\nSOU-9,SOU,inadequate,{year}-01-05,,anna@ofsted.example.gov.uk,\n"
            ),
            &[
                "line 2",
                "column 4 (report_received_on)",
                "outside the years 2000 to 2100",
            ],
        );
    }
    let err = app.fails(&["move-visit", "SOU-1", "1", "9999-01-01"]);
    assert!(err.contains("outside the years"), "{err}");
}

#[test]
fn delegates_whose_addresses_differ_only_in_case_are_one_person() {
    let app = TestApp::new();
    app.import_examples();
    let seminars = "seminar_ref,title,region,held_on,venue,confirmed\nG2G-X,Theme,london,2027-03-10,Hall,true\n";
    assert!(app.import("seminars", "s.csv", seminars).status.success());
    rejected(
        &app,
        "delegates",
        "seminar_ref,authority_code,name,email\nG2G-X,SOU,Sam One,sam@la.example.org\nG2G-X,SOU,Sam One,SAM@LA.EXAMPLE.ORG\n",
        &["line 3", "appears twice"],
    );
    assert!(
        app.import(
            "delegates",
            "d1.csv",
            "seminar_ref,authority_code,name,email\nG2G-X,SOU,Sam One,sam@la.example.org\n"
        )
        .status
        .success()
    );
    let out = app.import(
        "delegates",
        "d2.csv",
        "seminar_ref,authority_code,name,email\nG2G-X,SOU,Sam One,Sam@LA.example.org\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 added, 1 updated"));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM delegates WHERE seminar_ref = 'G2G-X'"),
        1
    );
}
