//! Settings: refused with the key named, overridable from the environment.

use crate::helpers::TestApp;

fn broken(edit: impl FnOnce(String) -> String) -> String {
    let mut app = TestApp::new();
    app.own_config(edit);
    app.fails(&["check-config"])
}

#[test]
fn the_shipped_config_checks_out() {
    let app = TestApp::new();
    let out = app.ok(&["check-config"]);
    assert!(out.contains("config: ok"), "{out}");
    assert!(out.contains("rules: 25 enabled"), "{out}");
    assert!(
        out.contains("plan-chase") && out.contains("50 working days"),
        "{out}"
    );
    assert!(out.contains("transport: file"), "{out}");
}

#[test]
fn an_unknown_key_is_named() {
    let err = broken(|t| t.replace("send_hour = 9", "send_hour = 9\nsend_hours = 10"));
    assert!(err.contains("send_hours"), "{err}");
}

#[test]
fn a_bad_email_is_named() {
    let err = broken(|t| t.replace("ims = \"ims@example.org\"", "ims = \"ims-at-example\""));
    assert!(
        err.contains("ims-at-example") && err.contains("not an email"),
        "{err}"
    );
}

#[test]
fn a_bad_offset_is_named() {
    let err = broken(|t| {
        t.replace(
            "offset = \"50 working days\"",
            "offset = \"50 wrking days\"",
        )
    });
    assert!(
        err.contains("50 wrking days") && err.contains("not an offset"),
        "{err}"
    );
}

#[test]
fn an_unknown_region_is_named() {
    let err = broken(|t| t.replace("[regions.east]", "[regions.wessex]"));
    assert!(err.contains("regions.wessex"), "{err}");
    assert!(err.contains("regions.east: missing"), "{err}");
}

#[test]
fn an_anchor_that_does_not_fit_the_subject_is_named() {
    let err = broken(|t| t.replacen("anchor = \"report_received_on\"", "anchor = \"held_on\"", 1));
    assert!(
        err.contains("rules[0] (plan-chase)") && err.contains("held_on"),
        "{err}"
    );
}

#[test]
fn a_template_error_names_the_file_and_line() {
    let app = with_own_templates(|dir| {
        std::fs::write(
            dir.join("plan-chase.txt"),
            "Dear {{ authority.dcs_name }},\n\nThis line is fine.\n{% if case %}unclosed\n",
        )
        .unwrap();
    });
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("plan-chase.txt") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn environment_overrides_any_key() {
    let mut app = TestApp::new();
    app.set("KEYDATES__MAIL__TRANSPORT", "smtp");
    app.set("KEYDATES__MAIL__SMTP__PORT", "2525");
    app.set("KEYDATES__MAIL__SMTP__HOST", "relay.example.org");
    let out = app.ok(&["check-config"]);
    assert!(out.contains("smtp relay.example.org:2525"), "{out}");
    app.set("KEYDATES__MAIL__SMTP__PORT", "not-a-port");
    let err = app.fails(&["check-config"]);
    assert!(err.contains("port"), "{err}");
}

#[test]
fn passwords_are_never_printed() {
    let mut app = TestApp::new();
    app.set("KEYDATES__MAIL__TRANSPORT", "smtp");
    app.set("KEYDATES__MAIL__SMTP__USERNAME", "keydates");
    app.set("KEYDATES__MAIL__SMTP__PASSWORD", "hunter2-secret");
    let out = app.run(&["check-config"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("hunter2-secret"), "{all}");
    assert!(all.contains("user=keydates"), "{all}");
}

#[test]
fn a_database_password_is_never_printed_and_an_unreachable_server_is_named() {
    let mut app = TestApp::new();
    let port = crate::helpers::free_addr().port();
    let url = format!("postgres://keydates:hunter2-secret@127.0.0.1:{port}/keydates");
    app.set("KEYDATES__DATABASE__URL", &url);
    let out = app.ok(&["check-config"]);
    assert!(
        out.contains(&format!(
            "database: postgres://keydates:***@127.0.0.1:{port}/keydates"
        )),
        "{out}"
    );
    // Nothing listens there: the error says where it tried, not the password.
    app.set("KEYDATES__DATABASE__BUSY_TIMEOUT_SECS", "1");
    let err = app.fails(&["outbox"]);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2-secret"), "{err}");
    assert!(
        !err.contains("disk"),
        "a network error is not a disk error: {err}"
    );
}

#[test]
fn a_missing_config_file_says_how_to_point_at_one() {
    let mut app = TestApp::new();
    app.config = app.dir.path().join("nope.toml");
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("nope.toml") && err.contains("--config"),
        "{err}"
    );
}

/// An installation whose templates are a copy the test may edit.
fn with_own_templates(edit: impl FnOnce(&std::path::Path)) -> TestApp {
    let mut app = TestApp::new();
    let templates = app.dir.path().join("templates");
    crate::helpers::copy_dir(&crate::helpers::examples().join("../templates"), &templates);
    edit(&templates);
    app.own_config(|t| t);
    app.set("KEYDATES__TEMPLATES__DIR", &templates.display().to_string());
    app
}

#[test]
fn a_broken_document_template_is_named_with_its_line() {
    let app = with_own_templates(|dir| {
        std::fs::write(
            dir.join("documents/audited-cases.md"),
            "# Audited cases\n\n{% for c in audited_cases %}\n| {{ c }} |\n",
        )
        .unwrap();
    });
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("documents/audited-cases.md") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn a_missing_document_template_is_named() {
    let app = with_own_templates(|dir| {
        std::fs::remove_file(dir.join("documents/dcs-record.md")).unwrap();
    });
    let err = app.fails(&["check-config"]);
    assert!(err.contains("documents/dcs-record.md"), "{err}");
}

#[test]
fn a_document_is_reworded_by_editing_its_template() {
    let app = with_own_templates(|dir| {
        let path = dir.join("documents/planning-record.md");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("Details of discussion", "Points raised"),
        )
        .unwrap();
    });
    app.ok(&["check-config"]);
    app.import_examples();
    app.ok(&["set-planning-event", "SOU-2026-01", "2026-12-10"]);
    let eml = app.preview_eml("planning-record", "SOU-2026-01");
    let xml = crate::helpers::attachment_xml(&eml, "planning-record", "word/document.xml");
    assert!(xml.contains("Points raised"), "the reworded heading");
    assert!(!xml.contains("Details of discussion"));
}

#[test]
fn check_config_refuses_what_would_fail_later_naming_the_key() {
    for (from, to, expect) in [
        (
            "poll = \"0 * * * * *\"",
            "poll = \"0 0 0 31 2 *\"",
            vec!["schedule.poll", "never fires"],
        ),
        (
            "transport = \"file\"",
            "transport = \"smpt\"",
            vec!["smpt", "file", "smtp"],
        ),
        (
            "add = []",
            "add = [\"2026-12-32\"]",
            vec!["calendar.add", "2026-12-32"],
        ),
    ] {
        let err = broken(|t| {
            assert!(t.contains(from), "{from}");
            t.replacen(from, to, 1)
        });
        for e in expect {
            assert!(err.contains(e), "{to}: {err}");
        }
    }
    for (key, value, expect) in [
        ("KEYDATES__LOG__LEVEL", "loud", vec!["log.level", "loud"]),
        // Each value is parsed into its type where it is read, and refused
        // there: no time zone quietly becomes London, no holiday is dropped.
        (
            "KEYDATES__SCHEDULE__TIME_ZONE",
            "Europe/Lndon",
            vec!["schedule.time_zone", "Europe/Lndon", "not a time zone"],
        ),
        (
            "KEYDATES__WEB__LISTEN",
            "localhost",
            vec!["web.listen", "localhost", "HOST:PORT"],
        ),
        (
            "KEYDATES__DATABASE__URL",
            "",
            vec!["database.url", "is empty"],
        ),
        (
            "KEYDATES__DATABASE__URL",
            "mysql://db.example/keydates",
            vec!["database.url", "mysql://"],
        ),
        (
            "KEYDATES__DATABASE__URL",
            "postgres://db.example",
            vec!["database.url", "names no database"],
        ),
    ] {
        let mut app = TestApp::new();
        app.set(key, value);
        let err = app.fails(&["check-config"]);
        for e in expect {
            assert!(err.contains(e), "{key}={value}: {err}");
        }
        assert!(!app.db_path().exists(), "nothing created");
    }
}

#[test]
fn a_misspelt_template_variable_is_an_error_naming_the_rule() {
    let err = broken(|t| {
        t.replacen(
            "subject = \"{{ authority.name }}: your",
            "subject = \"{{ authority.nmae }}: your",
            1,
        )
    });
    assert!(
        err.contains("plan-chase") && err.contains("undefined"),
        "{err}"
    );
    let app = with_own_templates(|dir| {
        let path = dir.join("documents/dcs-record.md");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("{{ dcs_name", "{{ dsc_name")).unwrap();
    });
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("dcs-record") && err.contains("undefined"),
        "{err}"
    );
}

#[test]
fn a_calendar_secret_must_be_a_generated_value_and_ics_makes_one() {
    let mut app = TestApp::new();
    for weak in [
        " ".repeat(40),
        "short-but-random-7Qx".into(),
        "a".repeat(48),
    ] {
        app.set("KEYDATES__WEB__CALENDAR_SECRET", &weak);
        let err = app.fails(&["check-config"]);
        assert!(
            err.contains("web.calendar_secret") && err.contains("keydates ics --new-secret"),
            "{weak:?}: {err}"
        );
    }
    let secret = app.ok(&["ics", "--new-secret"]);
    let secret = secret.trim();
    assert_eq!(secret.len(), 64, "{secret}");
    assert_ne!(
        secret,
        app.ok(&["ics", "--new-secret"]).trim(),
        "new each time"
    );
    app.set("KEYDATES__WEB__CALENDAR_SECRET", secret);
    app.ok(&["check-config"]);
}

#[test]
fn a_rule_that_copies_the_dfe_team_needs_its_address() {
    let mut app = TestApp::new();
    app.own_config(|t| {
        t.replacen(
            "dfe_team = \"inspections.interventions@dfe.example.gov.uk\"\n",
            "",
            1,
        )
    });
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("planning-invitation") && err.contains("[contacts] dfe_team"),
        "{err}"
    );
}
