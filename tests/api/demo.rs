//! The first run: `demo` leaves emails with their documents, whatever the date.

use mail_parser::MimeHeaders;

use crate::helpers::TestApp;

#[test]
fn demo_writes_emails_of_several_rules_with_their_documents() {
    let app = TestApp::new();
    let out = app.ok(&["demo"]);
    assert!(out.contains(app.spool().to_str().unwrap()), "{out}");
    let mut rules = std::collections::BTreeSet::new();
    let mut documents = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(app.spool()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        rules.insert(message.subject().unwrap_or_default().to_string());
        for a in message.attachments() {
            let name = a.attachment_name().unwrap_or_default();
            documents.insert(name.rsplit('.').next().unwrap_or_default().to_string());
        }
    }
    assert!(rules.len() >= 3, "{rules:?}");
    assert!(
        documents.contains("docx") && documents.contains("xlsx"),
        "{documents:?}"
    );
    let sent: Vec<_> = app
        .outbox()
        .into_iter()
        .filter(|r| r["status"] == "sent")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(sent.len() >= 3, "{sent:?}");
}

#[test]
fn demo_refuses_a_database_with_real_records_or_a_mail_server() {
    let app = TestApp::new();
    app.import_examples();
    let before = app.outbox().len();
    let err = app.fails(&["demo"]);
    assert!(err.contains("real records"), "{err}");
    assert_eq!(app.outbox().len(), before);

    let mut smtp = TestApp::new();
    smtp.set("KEYDATES__MAIL__TRANSPORT", "smtp");
    let err = smtp.fails(&["demo"]);
    assert!(err.contains("mail.transport"), "{err}");
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let app = TestApp::new();
    app.import_examples();
    let mut child = app
        .command()
        .args(["agenda"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
