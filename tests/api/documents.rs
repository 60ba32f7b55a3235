//! The Word documents as Word would take them: every kind, from the real
//! binary's emails, checked by an independent OOXML validator
//! (`openxml-audit`, from PyPI) and read for what a reader sees.

use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Command;

use mail_parser::MimeHeaders;

use crate::helpers::TestApp;

/// Each Word document the examples' emails carry, by file name.
fn documents(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    app.ok(&["set-planning-event", "SOU-2026-01", "2026-12-10"]);
    let mut found = Vec::new();
    for (rule, subject) in [
        ("planning-record", "SOU-2026-01"),
        ("audited-case-notice", "RIV-2026-01#1"),
        ("seminar-invitation", "G2G-SW-2027-01"),
        ("dcs-conversation", "G2G-SW-2027-01"),
    ] {
        let eml = std::fs::read(app.preview_eml(rule, subject)).unwrap();
        let message = mail_parser::MessageParser::default().parse(&eml).unwrap();
        for a in message.attachments() {
            let name = a.attachment_name().unwrap_or_default().to_string();
            if name.ends_with(".docx") {
                found.push((name, a.contents().to_vec()));
            }
        }
    }
    assert_eq!(found.len(), 4, "one document per kind");
    found
}

fn part(docx: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(docx)).expect("a zip archive");
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} is in the package"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// `openxml-audit`'s findings for one file, as "part path: description".
fn audit(path: &Path) -> Vec<String> {
    let out = Command::new("openxml-audit")
        .args([
            "--policy",
            "strict",
            "-f",
            "microsoft365",
            "-o",
            "json",
            "-m",
            "0",
        ])
        .arg(path)
        .output()
        .expect("openxml-audit is installed (pip install openxml-audit; .ci/run does)");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let file = &report[0];
    assert!(file["error_count"].is_u64(), "{report}");
    file["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}: {}", e["part_uri"], e["path"], e["description"]))
        .collect()
}

#[test]
fn every_word_document_passes_an_independent_validator_with_no_error() {
    let app = TestApp::new();
    app.import_examples();
    for (name, bytes) in documents(&app) {
        let path = app.dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let errors = audit(&path);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

/// An attribute's number in the first element that has it, after `from`.
fn number_after(xml: &str, from: &str, attribute: &str) -> Option<u32> {
    let at = xml.find(from)?;
    let rest = &xml[at..];
    let value = rest.find(attribute)? + attribute.len();
    rest[value..].split('"').next()?.parse().ok()
}

#[test]
fn documents_keep_to_the_page_and_say_who_wrote_them() {
    let app = TestApp::new();
    app.import_examples();
    for (name, bytes) in documents(&app) {
        let body = part(&bytes, "word/document.xml");
        // A4 portrait, and no table wider than the space between the margins.
        let page = number_after(&body, "<w:pgSz", "w:w=\"").unwrap();
        let left = number_after(&body, "<w:pgMar", "w:left=\"").unwrap();
        let right = number_after(&body, "<w:pgMar", "w:right=\"").unwrap();
        let text_width = page - left - right;
        assert_eq!(page, 11_906, "{name}: A4");
        for table in body.split("<w:tbl>").skip(1) {
            let grid = &table[..table.find("</w:tblGrid>").unwrap()];
            let width: u32 = grid
                .split("<w:gridCol w:w=\"")
                .skip(1)
                .map(|g| g.split('"').next().unwrap().parse::<u32>().unwrap())
                .sum();
            assert!(
                width <= text_width,
                "{name}: a table {width} wide in {text_width}"
            );
            let declared = number_after(table, "<w:tblW", "w:w=\"").unwrap();
            assert!(declared <= text_width, "{name}");
        }
        // Header rows repeat on a new page.
        if body.contains("w:fill=\"D9D9D9\"") {
            assert!(body.contains("<w:tblHeader/>"), "{name}");
        }
        // Title and author: the sending office.
        let core = part(&bytes, "docProps/core.xml");
        assert!(
            core.contains("<dc:title>") && !core.contains("<dc:title></dc:title>"),
            "{name}: {core}"
        );
        assert!(core.contains("<dc:creator>Ofsted "), "{name}: {core}");
        // British English, one font family (the emails' Arial), and headings
        // kept with what follows.
        let styles = part(&bytes, "word/styles.xml");
        assert!(styles.contains("w:val=\"en-GB\""), "{name}");
        assert!(styles.contains("w:ascii=\"Arial\""), "{name}");
        for id in ["Title", "Heading1", "Heading2"] {
            let style = styles
                .split("<w:style ")
                .find(|s| s.contains(&format!("w:styleId=\"{id}\"")))
                .unwrap_or_else(|| panic!("{name}: style {id}"));
            assert!(style.contains("<w:keepNext/>"), "{name}: {id}");
        }
        assert!(
            part(&bytes, "[Content_Types].xml").contains("/word/theme/theme1.xml"),
            "{name}: a theme part"
        );
    }
}

#[test]
fn tick_boxes_and_signature_lines_keep_their_spaces() {
    let app = TestApp::new();
    app.import_examples();
    let all = documents(&app);
    let pack = &all
        .iter()
        .find(|(n, _)| n.starts_with("seminar-pack"))
        .unwrap()
        .1;
    let body = part(pack, "word/document.xml");
    assert!(
        body.contains("<w:t xml:space=\"preserve\">\u{2610} Very useful     \u{2610} Quite useful"),
        "the boxes keep their spacing"
    );
    let record = &all
        .iter()
        .find(|(n, _)| n.starts_with("planning-record"))
        .unwrap()
        .1;
    let body = part(record, "word/document.xml");
    assert!(
        body.contains("____   </w:t>"),
        "the gap between a signature line and the next label"
    );
}

/// LibreOffice, headless, converting `file` with `filter` into `out`; each
/// call with its own profile, so that tests run side by side.
fn libreoffice(dir: &Path, file: &Path, filter: &str) -> Vec<std::path::PathBuf> {
    let out = dir.join("converted");
    let profile = dir.join("libreoffice-profile");
    let status = Command::new("soffice")
        .arg(format!("-env:UserInstallation=file://{}", profile.display()))
        .args(["--headless", "--convert-to", filter, "--outdir"])
        .arg(&out)
        .arg(file)
        .output()
        .expect("LibreOffice is installed (apt-get install libreoffice-writer-nogui libreoffice-calc-nogui; .ci/run does)");
    assert!(status.status.success(), "{status:?}");
    let mut made: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    made.sort();
    made
}

#[test]
fn libreoffice_opens_every_document_and_reads_it_whole() {
    let app = TestApp::new();
    app.import_examples();
    for (name, bytes) in documents(&app) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let made = libreoffice(dir.path(), &path, "txt:Text (encoded):UTF8");
        let text = std::fs::read_to_string(&made[0]).unwrap();
        let title = part(&bytes, "docProps/core.xml");
        let title = title
            .split("<dc:title>")
            .nth(1)
            .and_then(|t| t.split("</dc:title>").next())
            .unwrap()
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        assert!(text.contains(&title), "{name}: {title} in {text}");
    }
    // The data return: both sheets, the header row as configured.
    let eml = std::fs::read(app.preview_eml("child-data-request", "RIV-2026-01#1")).unwrap();
    let message = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let xlsx = message
        .attachments()
        .find(|a| a.attachment_name().is_some_and(|n| n.ends_with(".xlsx")))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("return.xlsx");
    std::fs::write(&path, xlsx.contents()).unwrap();
    let sheets = libreoffice(
        dir.path(),
        &path,
        "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
    );
    assert_eq!(sheets.len(), 2, "{sheets:?}");
    let data = std::fs::read_to_string(&sheets[1]).unwrap();
    assert!(
        data.starts_with("Child ID,Audited since the last visit"),
        "{data}"
    );
    let about = std::fs::read_to_string(&sheets[0]).unwrap();
    assert!(about.contains("Riverton City Council (RIV)"), "{about}");
}
