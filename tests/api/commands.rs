//! The calendar as the command line shows it.

use crate::helpers::TestApp;

#[test]
fn date_applies_offsets_including_negative_ones() {
    let app = TestApp::new();
    assert_eq!(
        app.ok(&["date", "2026-11-02", "50 working days"]).trim(),
        "2027-01-14"
    );
    assert_eq!(
        app.ok(&["date", "2027-01-11", "-8 working days"]).trim(),
        "2026-12-29"
    );
    assert_eq!(
        app.ok(&["date", "2027-01-11", "-2 weeks"]).trim(),
        "2026-12-24"
    );
    assert_eq!(
        app.ok(&["date", "2027-08-31", "6 months"]).trim(),
        "2028-02-29"
    );
    let err = app.fails(&["date", "2027-01-11", "-8 workdays"]);
    assert!(err.contains("not an offset"), "{err}");
    let err = app.fails(&["date", "11/01/2027", "3 days"]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn holidays_lists_the_dates_in_force_as_json() {
    let app = TestApp::new();
    let list: Vec<String> =
        serde_json::from_str(&app.ok(&["holidays", "--year", "2022", "--format", "json"])).unwrap();
    assert_eq!(list.len(), 10);
    assert!(list.contains(&"2022-06-03".to_string()) && list.contains(&"2022-09-19".to_string()));
    let list: Vec<String> =
        serde_json::from_str(&app.ok(&["holidays", "--year", "2028", "--format", "json"])).unwrap();
    assert_eq!(list.first().map(String::as_str), Some("2028-01-03"));
}

#[test]
fn admins_add_holidays_in_config() {
    let mut app = TestApp::new();
    app.own_config(|t| t.replace("add = []", "add = [\"2027-01-13\"]"));
    let list: Vec<String> =
        serde_json::from_str(&app.ok(&["holidays", "--year", "2027", "--format", "json"])).unwrap();
    assert!(list.contains(&"2027-01-13".to_string()));
    // The new holiday pushes 50 working days on by one.
    assert_eq!(
        app.ok(&["date", "2026-11-02", "50 working days"]).trim(),
        "2027-01-15"
    );
}

#[test]
fn a_command_that_only_reads_creates_no_database_at_a_mistyped_path() {
    let mut app = TestApp::new();
    let typo = app.dir.path().join("keydate.db");
    app.set("KEYDATES__DATABASE__URL", typo.to_str().unwrap());
    for args in [
        &["status"][..],
        &["agenda"],
        &["outbox"],
        &["retry", "1"],
        &["plan-received", "SOU-2026-01"],
    ] {
        let err = app.fails(args);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
        assert!(err.contains("database.url"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // Importing is how an installation begins: it creates the database.
    app.import_examples();
    assert!(typo.exists());
    let out = app.run(&["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["backend"], "sqlite");
}
