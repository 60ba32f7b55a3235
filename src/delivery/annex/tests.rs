use super::*;
use std::io::{Cursor, Read};

use crate::domain::mime::{DOCX as DOCX_TYPE, XLSX as XLSX_TYPE};
use strum::IntoEnumIterator;

const NOT_RECORDED: &str = "not recorded";

fn templates() -> Renderer {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    Renderer::load(&dir, &[]).expect("the shipped templates load")
}

fn generate(kind: AnnexKind, facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    super::generate(kind, facts, &templates(), chrono::Utc::now())
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

const HOSTILE: &str = "A & B <x> {{ y }}\r\nBcc: z@e.com";
const HOSTILE_ESCAPED: &str = "A &amp; B &lt;x&gt; {{ y }} Bcc: z@e.com";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn facts() -> AnnexFacts {
    AnnexFacts {
        authority_code: "E09000001".into(),
        authority_name: "Northshire".into(),
        dcs_name: "Pat Director".into(),
        case_ref: Some("CASE-42".into()),
        judgement: Some(Judgement::RequiresImprovement),
        report_received_on: Some(date(2027, 1, 12)),
        lead_inspector: Some(email("lead.hmi@ofsted.example")),
        visit_no: Some(3),
        visit_starts_on: Some(date(2027, 3, 2)),
        audited_cases: vec!["C-1001".into(), "C-1002".into(), "C-1003".into()],
        files_due_on: Some(date(2027, 2, 25)),
        seminar_ref: Some("G2G/07".into()),
        seminar_title: Some("Managing risk".into()),
        seminar_held_on: Some(date(2027, 5, 14)),
        seminar_venue: Some("Town Hall, Northshire".into()),
        delegates: vec![
            ("Sam One".into(), email("sam@la.example")),
            ("Jo Two".into(), email("jo@la.example")),
        ],
        upload_route: "https://secure.example/upload".into(),
        columns: vec!["Child ID".into(), "Legal status".into()],
        timetable: vec![
            ("10:00".into(), "Welcome".into()),
            ("12:30".into(), "Lunch".into()),
        ],
        conversation_on: None,
        planning_event_on: None,
        office: Some("Ofsted London".into()),
    }
}

fn part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a valid zip");
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap_or_else(|_| panic!("{name} is in the archive"))
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn document_xml(kind: AnnexKind, facts: &AnnexFacts) -> String {
    let annex = generate(kind, facts).unwrap();
    assert_eq!(annex.content_type, DOCX_TYPE);
    let xml = part(&annex.bytes, "word/document.xml");
    assert_well_formed(&xml);
    xml
}

/// Well-formed XML, read through by an XML parser: enough to catch
/// unescaped record text.
fn assert_well_formed(xml: &str) {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
}

/// The strings in row 1 of the first worksheet, shared or inline.
fn first_row(xlsx: &[u8]) -> Vec<String> {
    let sheet = part(xlsx, "xl/worksheets/sheet1.xml");
    let shared = part(xlsx, "xl/sharedStrings.xml");
    let shared: Vec<&str> = shared.split("<si>").skip(1).map(t_text).collect();
    let row = sheet
        .split("<row ")
        .find(|r| r.starts_with("r=\"1\""))
        .expect("row 1")
        .split("</row>")
        .next()
        .unwrap();
    row.split("<c ")
        .skip(1)
        .map(|cell| {
            if cell.contains("t=\"s\"") {
                let index = between(cell, "<v>", "</v>").parse::<usize>().unwrap();
                shared[index].to_string()
            } else {
                t_text(cell).to_string()
            }
        })
        .collect()
}

fn t_text(fragment: &str) -> &str {
    let after_t = &fragment[fragment.find("<t").unwrap()..];
    between(after_t, ">", "</t>")
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = text[start..].find(close).unwrap() + start;
    &text[start..end]
}

#[test]
fn planning_record_for_requires_improvement() {
    let xml = document_xml(AnnexKind::PlanningRecord, &facts());
    assert!(xml.contains("Northshire"));
    assert!(
        xml.contains("> Northshire (E09000001)</w:t>"),
        "value after its label"
    );
    assert!(xml.contains("CASE-42"));
    assert!(xml.contains("Tuesday 12 January 2027"));
    assert!(xml.contains("Record of the improvement planning seminar"));
    assert!(xml.contains("Organisation"));
    // 000 Annex C's four sections, and no others.
    for heading in [
        "1. List of attendees",
        "2. Evidence presented",
        "3. Details of discussion",
        "4. Details of agreed interpretation",
    ] {
        assert!(xml.contains(heading), "{heading}");
    }
    assert!(!xml.contains("5. "), "no fifth section");
    assert!(!xml.contains("How progress will be measured"));
    // The plan goes to the Secretary of State and HMCI; the record is copied
    // to the National Director (000 §24).
    assert!(xml.contains("Secretary of State and His Majesty"));
    assert!(xml.contains("copied to the National Director, Social Care"));
    assert!(!xml.contains("reach Ofsted"));
}

#[test]
fn planning_record_for_inadequate_is_a_visit() {
    let facts = AnnexFacts {
        judgement: Some(Judgement::Inadequate),
        ..facts()
    };
    let xml = document_xml(AnnexKind::PlanningRecord, &facts);
    assert!(xml.contains("Record of the action planning visit"));
    assert!(xml.contains("action plan"));
    // 001 Annex C's three sections; copied to the regional director (001 §18).
    assert!(xml.contains("2. Details of discussion"));
    assert!(xml.contains("3. Details of formal planning"));
    assert!(!xml.contains("4. "));
    assert!(xml.contains("copied to the regional director and the National Director"));
}

#[test]
fn audited_cases_lists_each_case_and_due_date() {
    let xml = document_xml(AnnexKind::AuditedCases, &facts());
    assert!(xml.contains("Northshire"));
    assert!(xml.contains("Tuesday 2 March 2027"));
    assert!(xml.contains("Thursday 25 February 2027"));
    for case in ["C-1001", "C-1002", "C-1003"] {
        assert_eq!(xml.matches(case).count(), 1, "{case} has one row");
    }
    // The completed audits are asked for (001 §27), not the case records.
    assert!(xml.contains("completed audit of each one"));
    assert!(!xml.contains("case records the audit drew on"));
}

#[test]
fn seminar_pack_has_instructions_timetable_and_form() {
    let xml = document_xml(AnnexKind::SeminarPack, &facts());
    assert!(xml.contains("Northshire"));
    assert!(xml.contains("Friday 14 May 2027"));
    assert!(xml.contains("Town Hall, Northshire"));
    assert!(xml.contains("Sam One, Jo Two"));
    assert!(xml.contains("Lunch"), "the configured timetable");
    assert!(xml.contains("Participant evaluation form"));
    assert!(xml.contains("\u{2610} Very useful"));
    assert!(xml.contains("11. Any other comments"));
    // Neither a substitute delegate nor a timetable of keydates' own (Annex H).
    assert!(!xml.contains("instead"));
    assert!(!xml.contains("09:30"));
    let without = AnnexFacts {
        timetable: Vec::new(),
        ..facts()
    };
    let xml = document_xml(AnnexKind::SeminarPack, &without);
    // With none, the pack has no timetable and promises none.
    assert!(!xml.contains("Timetable") && !xml.contains("timetable"));
    assert!(!xml.contains("Lunch"));
}

#[test]
fn dcs_record_is_prefilled() {
    let xml = document_xml(AnnexKind::DcsRecord, &facts());
    assert!(xml.contains("Northshire"));
    assert!(xml.contains("Pat Director"));
    assert!(xml.contains("Managing risk"));
    assert!(xml.contains("Friday 14 May 2027"));
    assert!(xml.contains("Date of conversation"));
    // Annex J's five headings.
    for heading in [
        "Key learning points",
        "Actions taken in response",
        "Amendments to the improvement plan",
        "Evidence of impact",
        "Outstanding issues",
    ] {
        assert!(xml.contains(heading), "{heading}");
    }
    let held = AnnexFacts {
        conversation_on: Some(date(2027, 11, 16)),
        ..facts()
    };
    assert!(document_xml(AnnexKind::DcsRecord, &held).contains("Tuesday 16 November 2027"));
}

#[test]
fn child_level_data_headers_come_first() {
    let annex = generate(AnnexKind::ChildLevelData, &facts()).unwrap();
    assert_eq!(annex.content_type, XLSX_TYPE);
    let headers = first_row(&annex.bytes);
    // The configured columns, then the audited column; nothing invented.
    assert_eq!(
        headers,
        ["Child ID", "Legal status", "Audited since the last visit"]
    );

    let about = part(&annex.bytes, "xl/sharedStrings.xml");
    assert!(about.contains("Northshire"));
    assert!(about.contains("Tuesday 2 March 2027"));
    assert!(about.contains("https://secure.example/upload"));
    assert!(about.contains("never by email"));
    let workbook = part(&annex.bytes, "xl/workbook.xml");
    assert!(workbook.contains("About this return"));
}

#[test]
fn file_names_are_meaningful_and_safe() {
    let mut facts = facts();
    let name = |kind, facts: &AnnexFacts| generate(kind, facts).unwrap().filename;
    assert_eq!(
        name(AnnexKind::PlanningRecord, &facts),
        "planning-record-E09000001.docx"
    );
    assert_eq!(
        name(AnnexKind::ChildLevelData, &facts),
        "child-level-data-E09000001-visit-3.xlsx"
    );
    assert_eq!(
        name(AnnexKind::AuditedCases, &facts),
        "audited-cases-E09000001-visit-3.docx"
    );
    assert_eq!(
        name(AnnexKind::SeminarPack, &facts),
        "seminar-pack-G2G07.docx"
    );
    assert_eq!(
        name(AnnexKind::DcsRecord, &facts),
        "dcs-record-E09000001-G2G07.docx"
    );

    facts.authority_code = "../\"evil\r\n.exe".into();
    facts.seminar_ref = Some("a/b\\c d".into());
    assert_eq!(
        name(AnnexKind::PlanningRecord, &facts),
        "planning-record-evilexe.docx"
    );
    assert_eq!(
        name(AnnexKind::SeminarPack, &facts),
        "seminar-pack-abcd.docx"
    );
}

#[test]
fn missing_facts_do_not_panic() {
    let empty = AnnexFacts::default();
    for kind in AnnexKind::iter() {
        let annex = generate(kind, &empty).unwrap();
        assert!(!annex.bytes.is_empty());
        assert!(annex.filename.starts_with(kind.name()));
    }
    let xml = document_xml(AnnexKind::AuditedCases, &empty);
    assert!(xml.contains(NOT_RECORDED));
}

#[test]
fn hostile_text_is_escaped_literally() {
    let hostile = AnnexFacts {
        authority_name: HOSTILE.into(),
        dcs_name: HOSTILE.into(),
        seminar_title: Some(HOSTILE.into()),
        seminar_venue: Some("\u{1}\u{b}<w:t>".into()),
        delegates: vec![(HOSTILE.into(), email("x@y.org"))],
        audited_cases: vec![HOSTILE.into()],
        upload_route: HOSTILE.into(),
        ..facts()
    };
    for kind in AnnexKind::iter().filter(|k| *k != AnnexKind::ChildLevelData) {
        let xml = document_xml(kind, &hostile);
        assert!(xml.contains(HOSTILE_ESCAPED), "{kind:?}");
        assert!(!xml.contains("<x>"), "{kind:?}");
        assert!(!xml.contains('\u{1}'), "{kind:?}");
    }

    let annex = generate(AnnexKind::ChildLevelData, &hostile).unwrap();
    let strings = part(&annex.bytes, "xl/sharedStrings.xml");
    assert_well_formed(&strings);
    assert!(strings.contains(HOSTILE_ESCAPED));
    assert!(!strings.contains("<x>"));
}

#[test]
fn fit_keeps_spaces_and_flattens_the_rest() {
    assert_eq!(fit("a   b\r\n\tc\u{0}"), "a   b c ");
}

#[test]
fn clean_flattens_control_characters() {
    assert_eq!(clean("  a\r\n\tb\u{0}c  "), "a b c");
    assert_eq!(
        clean(&"x".repeat(MAX_TEXT_CHARS + 10)).len(),
        MAX_TEXT_CHARS
    );
}
