//! Hostile or careless config and records: refused with the place and the
//! reason, before anything is sent.

use std::time::{Duration, Instant};

use crate::helpers::TestApp;

/// An installation whose plan-chase rule also attaches `file:NAME`, with an
/// attachments folder holding `notes.txt`.
fn with_file_annex(name: &str) -> TestApp {
    let mut app = TestApp::new();
    let attachments = app.dir.path().join("attachments");
    std::fs::create_dir_all(&attachments).unwrap();
    std::fs::write(attachments.join("notes.txt"), "Notes for the authority.\n").unwrap();
    let name = name.to_string();
    app.own_config(move |t| {
        t.replacen(
            "template = \"plan-chase\"\n",
            &format!("template = \"plan-chase\"\nannexes = [\"file:{name}\"]\n"),
            1,
        )
    });
    app
}

#[test]
fn a_file_annex_inside_the_attachments_folder_is_attached() {
    let app = with_file_annex("notes.txt");
    app.ok(&["check-config"]);
    app.import_examples();
    let eml = app.preview_eml("plan-chase", "NOR-2026-01");
    let text = std::fs::read_to_string(eml).unwrap();
    assert!(text.contains("notes.txt"), "attached");
}

#[test]
fn file_annexes_outside_the_folder_or_not_regular_files_are_refused() {
    for (name, why) in [
        ("/proc/self/environ", "not an absolute path"),
        ("../keydates.toml", "outside mail.attachments_dir"),
        ("/dev/zero", "not an absolute path"),
        ("missing.docx", "cannot be read"),
    ] {
        let app = with_file_annex(name);
        let started = Instant::now();
        let err = app.fails(&["check-config"]);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: read whole?"
        );
        assert!(
            err.contains("rules[0] (plan-chase).annexes[0]") && err.contains(why),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_link_out_of_the_attachments_folder_and_a_device_are_refused() {
    let app = with_file_annex("secret.txt");
    let attachments = app.dir.path().join("attachments");
    std::os::unix::fs::symlink("/etc/hostname", attachments.join("secret.txt")).unwrap();
    let err = app.fails(&["check-config"]);
    assert!(err.contains("outside mail.attachments_dir"), "{err}");

    let app = with_file_annex("zero");
    let attachments = app.dir.path().join("attachments");
    std::os::unix::fs::symlink("/dev/zero", attachments.join("zero")).unwrap();
    let err = app.fails(&["check-config"]);
    assert!(
        err.contains("outside mail.attachments_dir") || err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn a_file_annex_over_the_size_limit_is_refused() {
    let mut app = with_file_annex("notes.txt");
    app.set("KEYDATES__MAIL__MAX_ATTACHMENT_BYTES", "5");
    let err = app.fails(&["check-config"]);
    assert!(err.contains("more than mail.max_attachment_bytes"), "{err}");
}
