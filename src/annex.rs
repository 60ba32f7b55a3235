//! The documents keydates attaches to its reminders: Word records and forms
//! (docx-rs) and the child-level data return template (rust_xlsxwriter).
//!
//! Every value taken from the records passes through [`clean`] before it is
//! written, so a document always stays valid XML whatever was typed.

use std::io::Cursor;

use chrono::NaiveDate;
use docx_rs::{
    AlignmentType, BreakType, Docx, HeightRule, Paragraph, Run, Shading, Style, StyleType, Table,
    TableCell, TableRow, WidthType,
};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Shown wherever an optional fact is missing from the records.
const NOT_RECORDED: &str = "not recorded";

/// Longest record value written; far beyond any real name or route, and well
/// under the 32,767 characters a spreadsheet cell can hold.
const MAX_TEXT_CHARS: usize = 2_000;

/// Longest piece of a record value used in a file name.
const MAX_FILE_PART_CHARS: usize = 40;

/// The generated documents keydates can attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnexKind {
    PlanningRecord,
    ChildLevelData,
    AuditedCases,
    SeminarPack,
    DcsRecord,
}

impl AnnexKind {
    pub const ALL: [AnnexKind; 5] = [
        AnnexKind::PlanningRecord,
        AnnexKind::ChildLevelData,
        AnnexKind::AuditedCases,
        AnnexKind::SeminarPack,
        AnnexKind::DcsRecord,
    ];

    /// Config name: "planning-record", "child-level-data", "audited-cases", "seminar-pack", "dcs-record".
    pub fn name(self) -> &'static str {
        match self {
            AnnexKind::PlanningRecord => "planning-record",
            AnnexKind::ChildLevelData => "child-level-data",
            AnnexKind::AuditedCases => "audited-cases",
            AnnexKind::SeminarPack => "seminar-pack",
            AnnexKind::DcsRecord => "dcs-record",
        }
    }

    pub fn from_name(s: &str) -> Option<AnnexKind> {
        AnnexKind::ALL.into_iter().find(|kind| kind.name() == s)
    }
}

/// What the records say, flattened. Dates are plain dates; text is as typed in the records.
#[derive(Debug, Clone, Default)]
pub struct AnnexFacts {
    pub authority_code: String,
    pub authority_name: String,
    pub dcs_name: String,
    pub case_ref: Option<String>,
    /// "requires improvement" or "inadequate"
    pub judgement: Option<String>,
    pub report_received_on: Option<NaiveDate>,
    /// An email address.
    pub lead_inspector: Option<String>,
    pub visit_no: Option<u32>,
    pub visit_starts_on: Option<NaiveDate>,
    /// Up to six case references.
    pub audited_cases: Vec<String>,
    /// The date the audited case files are due.
    pub files_due_on: Option<NaiveDate>,
    pub seminar_ref: Option<String>,
    pub seminar_title: Option<String>,
    pub seminar_held_on: Option<NaiveDate>,
    pub seminar_venue: Option<String>,
    /// (name, email) of this authority's delegates.
    pub delegates: Vec<(String, String)>,
    /// How the LA should return child-level data securely (text or URL).
    pub upload_route: String,
}

pub struct Annex {
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnexError {
    #[error("could not build the {kind} document: {reason}")]
    Build { kind: &'static str, reason: String },
}

pub fn generate(kind: AnnexKind, facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    match kind {
        AnnexKind::PlanningRecord => planning_record(facts),
        AnnexKind::ChildLevelData => child_level_data(facts),
        AnnexKind::AuditedCases => audited_cases(facts),
        AnnexKind::SeminarPack => seminar_pack(facts),
        AnnexKind::DcsRecord => dcs_record(facts),
    }
}

// ---------------------------------------------------------------------------
// Planning record (improvement planning seminar / action planning visit)
// ---------------------------------------------------------------------------

/// Which post-inspection event the record is for; the judgement decides.
#[derive(Clone, Copy)]
enum PlanningEvent {
    Seminar,
    Visit,
    Unknown,
}

impl PlanningEvent {
    fn from_judgement(judgement: Option<&str>) -> Self {
        // Records may say "requires_improvement" or "Inadequate".
        let normalised = judgement
            .map(|j| j.trim().to_lowercase().replace(['_', '-'], " "))
            .unwrap_or_default();
        match normalised.as_str() {
            "inadequate" => PlanningEvent::Visit,
            "requires improvement" => PlanningEvent::Seminar,
            _ => PlanningEvent::Unknown,
        }
    }

    fn event(self) -> &'static str {
        match self {
            PlanningEvent::Seminar => "improvement planning seminar",
            PlanningEvent::Visit => "action planning visit",
            PlanningEvent::Unknown => "improvement planning seminar or action planning visit",
        }
    }

    fn plan(self) -> &'static str {
        match self {
            PlanningEvent::Seminar => "improvement plan",
            PlanningEvent::Visit => "action plan",
            PlanningEvent::Unknown => "improvement or action plan",
        }
    }
}

fn planning_record(facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    let kind = AnnexKind::PlanningRecord;
    let event = PlanningEvent::from_judgement(facts.judgement.as_deref());
    let (what, plan) = (event.event(), event.plan());

    let doc = Doc::new()
        .title(&format!("Record of the {what}"))
        .field("Local authority", &authority(facts))
        .field(
            "Director of children's services",
            &or_not_recorded(&facts.dcs_name),
        )
        .field("Ofsted case reference", &opt_text(&facts.case_ref))
        .field("Inspection judgement", &opt_text(&facts.judgement))
        .field(
            "Inspection report received on",
            &opt_date(facts.report_received_on),
        )
        .field("Lead inspector", &opt_text(&facts.lead_inspector))
        .field("Date of the event", "")
        .para(&format!(
            "The senior HMI keeps this record during the {what}. The lead inspector \
             and the senior HMI agree and sign it, and a copy goes to the director \
             of children's services."
        ))
        .heading("1. Who attended")
        .table(
            &["Name", "Role", "Organisation"],
            vec![vec![String::new(); 3]; 8],
        )
        .heading("2. Priorities from the inspection report")
        .guidance(
            "Summarise the recommendations and priority areas the lead inspector set out, \
             with the inspection evidence behind each one.",
        )
        .answer_box()
        .heading("3. Discussion")
        .guidance(
            "Note the main points as they are discussed. Record clearly any point on which \
             the authority still disagrees with the inspection findings or recommendations.",
        )
        .answer_box()
        .heading("4. Actions agreed")
        .guidance(&format!(
            "Record what was agreed about how the {plan} will tackle each recommendation, \
             and who will lead. Where the agreed approach differs from a recommendation, \
             record the difference and the reason for it. How the recommendations are met \
             is for the authority to decide."
        ))
        .answer_box()
        .heading("5. How progress will be measured")
        .guidance(
            "The measures, both figures and checks on the quality of practice, that will \
             show whether the plan is making a difference for children.",
        )
        .answer_box()
        .heading("6. Next steps")
        .guidance(&format!(
            "Include the timetable for the written {plan}: it must reach Ofsted within \
             70 working days of the authority receiving the inspection report."
        ))
        .answer_box()
        .heading("Agreement")
        .signature("Lead inspector (HMI)")
        .signature("Senior HMI")
        .field("Date of this record", "");

    let filename = file_name(kind.name(), &[&facts.authority_code], "docx");
    doc.finish(kind, filename)
}

// ---------------------------------------------------------------------------
// Child-level data return template
// ---------------------------------------------------------------------------

/// The last column of the return: whether the LA audited the case since the last visit.
const AUDITED_COLUMN: &str = "Audited since the last visit";

/// The fields the lead inspector asks for, one column each, in order.
const CHILD_LEVEL_FIELDS: [&str; 17] = [
    "Child ID",
    "Gender",
    "Date of birth",
    "Age (years)",
    "Ethnicity",
    "Disability",
    "Legal status",
    "Date of referral",
    "Date of latest assessment",
    "Current allocated worker",
    "Current team",
    "Date of last visit",
    "Plan type",
    "Date plan started",
    "Date of last plan review",
    "Placement or address type",
    AUDITED_COLUMN,
];

fn child_level_data(facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    let kind = AnnexKind::ChildLevelData;
    let bytes = child_level_workbook(facts).map_err(build_error(kind))?;
    Ok(Annex {
        filename: visit_file_name(kind, facts, "xlsx"),
        content_type: XLSX_TYPE,
        bytes,
    })
}

fn child_level_workbook(facts: &AnnexFacts) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    write_data_sheet(workbook.add_worksheet())?;
    write_about_sheet(workbook.add_worksheet(), facts)?;
    workbook.save_to_buffer()
}

/// First sheet: nothing but the header row, for the LA to fill in.
fn write_data_sheet(sheet: &mut Worksheet) -> Result<(), XlsxError> {
    sheet.set_name("Child-level data")?;
    let header = Format::new().set_bold().set_text_wrap();
    for (col, field) in (0u16..).zip(CHILD_LEVEL_FIELDS) {
        sheet.write_string_with_format(0, col, field, &header)?;
        sheet.set_column_width(col, 18)?;
    }
    Ok(())
}

/// Second sheet: which visit the return is for and how to send it back.
fn write_about_sheet(sheet: &mut Worksheet, facts: &AnnexFacts) -> Result<(), XlsxError> {
    sheet.set_name("About this return")?;
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 90)?;
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();

    let route = match clean(&facts.upload_route) {
        r if r.is_empty() => "not recorded: ask the lead inspector for the secure route".into(),
        r => r,
    };
    let rows = [
        ("Local authority", authority(facts)),
        ("Monitoring visit", opt_number(facts.visit_no)),
        ("Visit starts on", opt_date(facts.visit_starts_on)),
        ("Lead inspector", opt_text(&facts.lead_inspector)),
        ("Secure return route", route),
        (
            "What to enter",
            "One row per child on the 'Child-level data' sheet, using the latest \
             data held. Enter dates as DD/MM/YYYY."
                .into(),
        ),
        (
            AUDITED_COLUMN,
            "Enter Yes for each child whose case the authority has audited since \
             the last monitoring visit, and No for the others."
                .into(),
        ),
        (
            "How to send it back",
            "The completed workbook holds personal data about children. Return it \
             only by the secure route above, and never by email."
                .into(),
        ),
    ];

    sheet.write_string_with_format(0, 0, "Child-level data return", &bold)?;
    for (row, (label, value)) in (2u32..).zip(rows) {
        sheet.write_string_with_format(row, 0, label, &bold)?;
        sheet.write_string_with_format(row, 1, &value, &wrap)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Audited-case notice
// ---------------------------------------------------------------------------

fn audited_cases(facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    let kind = AnnexKind::AuditedCases;
    let visit = opt_number(facts.visit_no);
    let due = opt_date(facts.files_due_on);
    let by = facts
        .files_due_on
        .map(|date| format!("no later than {}, ", uk_date(date)))
        .unwrap_or_default();
    let deadline = format!(
        "They must arrive {by}at least three working days before the visit starts, \
         so that inspectors can read them while preparing."
    );

    let rows: Vec<Vec<String>> = if facts.audited_cases.is_empty() {
        vec![vec![
            "-".into(),
            "No cases recorded yet".into(),
            String::new(),
        ]]
    } else {
        (1..)
            .zip(&facts.audited_cases)
            .map(|(n, case)| vec![n.to_string(), clean(case), String::new()])
            .collect()
    };

    let doc = Doc::new()
        .title("Audited cases for the monitoring visit")
        .field("Local authority", &authority(facts))
        .field("Monitoring visit", &visit)
        .field("Visit starts on", &opt_date(facts.visit_starts_on))
        .field("Lead inspector", &opt_text(&facts.lead_inspector))
        .field("Audited files due by", &due)
        .heading("What we need")
        .para(
            "The lead inspector has chosen the cases below from the child-level data \
             the authority returned. For each one, please send the authority's own most \
             recent audit of the case, with the case records the audit drew on.",
        )
        .para(&deadline)
        .table(&["No.", "Case reference", "Audit sent (tick)"], rows)
        .heading("How to send them")
        .para(
            "Case files hold personal information about children and families. Send \
             them only by the secure route below, never by email.",
        )
        .field("Secure route", &or_not_recorded(&facts.upload_route));

    doc.finish(kind, visit_file_name(kind, facts, "docx"))
}

// ---------------------------------------------------------------------------
// 'Getting to good' seminar pack
// ---------------------------------------------------------------------------

/// Outline of the day: (time, session).
const TIMETABLE: [(&str, &str); 10] = [
    ("09:30", "Arrival, registration and refreshments"),
    ("10:00", "Welcome, introductions and aims of the day"),
    (
        "10:15",
        "Session 1: what inspection evidence and research tell us about the theme",
    ),
    ("11:15", "Break"),
    (
        "11:30",
        "Session 2: how one authority made the journey to good",
    ),
    ("12:30", "Lunch"),
    (
        "13:15",
        "Session 3: group work on your own authority's priorities",
    ),
    ("14:30", "Break"),
    ("14:45", "Session 4: feedback, commitments and next steps"),
    ("15:30", "Evaluation forms and close"),
];

/// How a question on the evaluation form is answered.
enum Answer {
    Line,
    Box,
    Scale(&'static [&'static str]),
}

/// The evaluation form after its first, pre-filled question.
const EVALUATION_QUESTIONS: [(&str, Answer); 10] = [
    (
        "Which organisation do you work for (and which local authority, if that is different)?",
        Answer::Line,
    ),
    ("What is your role or job title?", Answer::Line),
    (
        "How much did the event help you understand what sets apart organisations \
         that improve from those that do not?",
        Answer::Scale(USEFULNESS),
    ),
    (
        "How much did it help you see the priorities for improving your own \
         organisation, or those you work with?",
        Answer::Scale(USEFULNESS),
    ),
    (
        "Overall, how useful will the event be in helping your organisation, or \
         those you work with, to improve?",
        Answer::Scale(USEFULNESS),
    ),
    (
        "What will you do as a result of coming to this event?",
        Answer::Box,
    ),
    (
        "How well was the event presented and led?",
        Answer::Scale(QUALITY),
    ),
    (
        "Thinking about your organisation's needs, how challenging was the event?",
        Answer::Scale(CHALLENGE),
    ),
    (
        "How well was the event organised and run?",
        Answer::Scale(QUALITY),
    ),
    (
        "Is there anything else you would like to tell us about the event?",
        Answer::Box,
    ),
];

const USEFULNESS: &[&str] = &["Very useful", "Quite useful", "Not useful"];
const QUALITY: &[&str] = &["Excellent", "Good", "Fair", "Poor"];
const CHALLENGE: &[&str] = &[
    "Too challenging",
    "About right",
    "Not challenging enough",
    "Not challenging at all",
];

fn seminar_pack(facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    let kind = AnnexKind::SeminarPack;
    let title = opt_text(&facts.seminar_title);
    let held_on = opt_date(facts.seminar_held_on);
    let venue = opt_text(&facts.seminar_venue);

    let doc = Doc::new()
        .title(&format!("'Getting to good' seminar: {title}"))
        .para(&format!(
            "For the delegates from {}: {}.",
            or_not_recorded(&facts.authority_name),
            delegate_names(facts)
        ))
        .heading("Joining instructions")
        .field("Seminar", &title)
        .field("Reference", &opt_text(&facts.seminar_ref))
        .field("Date", &held_on)
        .field("Venue", &venue)
        .para(
            "Please arrive in time to register before the welcome session. The day is \
             for senior managers who lead the authority's improvement work; elected \
             members do not attend.",
        )
        .para(
            "It helps to bring your authority's current improvement plan, as the group \
             work returns to it.",
        )
        .para(
            "If you can no longer come, tell the seminar organiser as soon as you can. \
             The authority may name a colleague of similar seniority to come instead.",
        )
        .heading("Outline timetable")
        .table(
            &["Time", "Session"],
            TIMETABLE
                .iter()
                .map(|(time, session)| vec![time.to_string(), session.to_string()])
                .collect(),
        )
        .guidance("Times are a guide; the final programme is handed out on the day.");

    let doc = evaluation_form(doc.page_break(), &title, &held_on, &venue);
    let filename = match &facts.seminar_ref {
        Some(seminar) => file_name(kind.name(), &[seminar], "docx"),
        None => file_name(kind.name(), &[&facts.authority_code], "docx"),
    };
    doc.finish(kind, filename)
}

/// The participant evaluation form, filled in by each delegate at the close.
fn evaluation_form(doc: Doc, title: &str, held_on: &str, venue: &str) -> Doc {
    let doc = doc
        .heading("Participant evaluation form")
        .guidance(
            "Please complete this form before you leave. Tick one box where a scale is given.",
        )
        .question(1, "Which event did you attend?")
        .para(&format!("{title}, {held_on}, {venue}"));
    let doc = (2..)
        .zip(EVALUATION_QUESTIONS)
        .fold(doc, |doc, (number, (question, answer))| {
            let doc = doc.question(number, question);
            match answer {
                Answer::Line => doc.answer_line(),
                Answer::Box => doc.answer_box(),
                Answer::Scale(options) => doc.scale(options),
            }
        });
    doc.para(
        "Later on we may ask some participants what difference the event has made. \
         If you are happy to be asked, please give your email address:",
    )
    .answer_line()
    .para("Thank you for completing this form.")
}

fn delegate_names(facts: &AnnexFacts) -> String {
    let names: Vec<String> = facts
        .delegates
        .iter()
        .map(|(name, _email)| clean(name))
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        "names not recorded".into()
    } else {
        names.join(", ")
    }
}

// ---------------------------------------------------------------------------
// Record of the DCS and senior HMI conversation after a seminar
// ---------------------------------------------------------------------------

fn dcs_record(facts: &AnnexFacts) -> Result<Annex, AnnexError> {
    let kind = AnnexKind::DcsRecord;

    let doc = Doc::new()
        .title(
            "Record of discussion between the director of children's services and the senior HMI",
        )
        .para("The impact of a 'getting to good' seminar")
        .field("Local authority", &authority(facts))
        .field(
            "Director of children's services",
            &or_not_recorded(&facts.dcs_name),
        )
        .field("Seminar", &opt_text(&facts.seminar_title))
        .field("Seminar reference", &opt_text(&facts.seminar_ref))
        .field("Date of seminar", &opt_date(facts.seminar_held_on))
        .field("Delegates who attended", &delegate_names(facts))
        .field("Date of conversation", "")
        .para(
            "Some six months after the seminar, the senior HMI talks with the director \
             about what difference it has made. The senior HMI completes this record and \
             sends a copy to the director within seven days of the conversation.",
        )
        .heading("1. What the authority learned from the seminar")
        .answer_box()
        .heading("2. What the authority has done as a result")
        .answer_box()
        .heading("3. Changes made to the improvement plan")
        .answer_box()
        .heading("4. Evidence of impact on practice and for children and families")
        .answer_box()
        .heading("5. Progress against the improvement plan since the seminar")
        .answer_box()
        .heading("6. Issues still to resolve")
        .answer_box()
        .heading("Agreement")
        .signature("Senior HMI")
        .signature(&format!(
            "Director of children's services ({})",
            or_not_recorded(&facts.dcs_name)
        ));

    let seminar = facts.seminar_ref.as_deref().unwrap_or_default();
    let filename = file_name(kind.name(), &[&facts.authority_code, seminar], "docx");
    doc.finish(kind, filename)
}

// ---------------------------------------------------------------------------
// Word document building blocks
// ---------------------------------------------------------------------------

/// Usable width of an A4 page with docx-rs's default margins, in twentieths of a point.
const TEXT_WIDTH: usize = 9_000;

/// Minimum height of a box left for a written answer, in twentieths of a point.
const ANSWER_BOX_HEIGHT: f32 = 1_800.0;

/// A Word document under construction. Every text argument is run through
/// [`clean`], so callers may pass record values directly.
struct Doc(Docx);

impl Doc {
    fn new() -> Self {
        let heading = |id: &str, name: &str, size: usize, level: usize| {
            Style::new(id, StyleType::Paragraph)
                .name(name)
                .size(size)
                .bold()
                .outline_lvl(level)
        };
        Doc(Docx::new()
            .default_size(22)
            .add_style(heading("Title", "Title", 36, 0))
            .add_style(heading("Heading1", "heading 1", 28, 1))
            .add_style(heading("Heading2", "heading 2", 24, 2)))
    }

    fn paragraph(self, paragraph: Paragraph) -> Self {
        Doc(self.0.add_paragraph(paragraph))
    }

    fn title(self, text: &str) -> Self {
        self.paragraph(Paragraph::new().style("Title").add_run(text_run(text)))
    }

    fn heading(self, text: &str) -> Self {
        self.paragraph(Paragraph::new().style("Heading1").add_run(text_run(text)))
    }

    fn para(self, text: &str) -> Self {
        self.paragraph(Paragraph::new().add_run(text_run(text)))
    }

    /// Instructions to whoever fills the form in, set apart in italics.
    fn guidance(self, text: &str) -> Self {
        self.paragraph(Paragraph::new().add_run(text_run(text).italic()))
    }

    /// "Label: value", or "Label:" and a line to write on when the value is blank.
    fn field(self, label: &str, value: &str) -> Self {
        let value = clean(value);
        let value = if value.is_empty() {
            "______________________________".to_string()
        } else {
            value
        };
        self.paragraph(
            Paragraph::new()
                .add_run(text_run(&format!("{label}:")).bold())
                // The value is clean already; the leading space must survive.
                .add_run(Run::new().add_text(format!(" {value}"))),
        )
    }

    fn question(self, number: usize, text: &str) -> Self {
        self.paragraph(
            Paragraph::new()
                .style("Heading2")
                .add_run(text_run(&format!("{number}. {text}"))),
        )
    }

    /// Tick boxes, one per option, on a single line.
    fn scale(self, options: &[&str]) -> Self {
        let line = options
            .iter()
            .map(|option| format!("\u{2610} {option}"))
            .collect::<Vec<_>>()
            .join("     ");
        self.para(&line)
    }

    fn answer_line(self) -> Self {
        self.para(&"_".repeat(60))
    }

    /// An empty bordered box to write an answer in.
    fn answer_box(self) -> Self {
        let cell = TableCell::new()
            .width(TEXT_WIDTH, WidthType::Dxa)
            .add_paragraph(Paragraph::new());
        let row = TableRow::new(vec![cell])
            .row_height(ANSWER_BOX_HEIGHT)
            .height_rule(HeightRule::AtLeast);
        Doc(self
            .0
            .add_table(Table::new(vec![row]).set_grid(vec![TEXT_WIDTH])))
        .para("")
    }

    /// A bordered table with a shaded header row.
    fn table(self, header: &[&str], rows: Vec<Vec<String>>) -> Self {
        let width = TEXT_WIDTH / header.len().max(1);
        let header_row = TableRow::new(header.iter().map(|h| table_cell(h, width, true)).collect());
        let body = rows.into_iter().map(|cells| {
            TableRow::new(cells.iter().map(|c| table_cell(c, width, false)).collect())
                .row_height(400.0)
                .height_rule(HeightRule::AtLeast)
        });
        let table = Table::new(std::iter::once(header_row).chain(body).collect())
            .set_grid(vec![width; header.len()]);
        Doc(self.0.add_table(table)).para("")
    }

    /// Name, signature and date lines for one signatory.
    fn signature(self, who: &str) -> Self {
        self.paragraph(Paragraph::new().add_run(text_run(who).bold()))
            .para("Name: ________________________________")
            .para("Signature: ____________________________   Date: ________________")
    }

    fn page_break(self) -> Self {
        self.paragraph(Paragraph::new().add_run(Run::new().add_break(BreakType::Page)))
    }

    fn finish(self, kind: AnnexKind, filename: String) -> Result<Annex, AnnexError> {
        // Otherwise docx-rs dates every document 1 January 1970.
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut bytes = Cursor::new(Vec::new());
        self.0
            .created_at(&now)
            .updated_at(&now)
            .build()
            .pack(&mut bytes)
            .map_err(build_error(kind))?;
        Ok(Annex {
            filename,
            content_type: DOCX_TYPE,
            bytes: bytes.into_inner(),
        })
    }
}

fn text_run(text: &str) -> Run {
    Run::new().add_text(clean(text))
}

fn table_cell(text: &str, width: usize, header: bool) -> TableCell {
    let run = if header {
        text_run(text).bold()
    } else {
        text_run(text)
    };
    let cell = TableCell::new()
        .width(width, WidthType::Dxa)
        .add_paragraph(Paragraph::new().align(AlignmentType::Left).add_run(run));
    if header {
        cell.shading(Shading::new().fill("D9D9D9"))
    } else {
        cell
    }
}

// ---------------------------------------------------------------------------
// Text, dates and file names
// ---------------------------------------------------------------------------

/// Record text made fit for one line of a document. XML 1.0 cannot carry
/// most control characters, and a stray line break in a name would split a
/// heading, so every run of whitespace or control characters becomes one
/// space. The XML escaping itself is left to the document writers.
fn clean(text: &str) -> String {
    let unfit =
        |c: char| c.is_whitespace() || c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}');
    text.split(unfit)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect()
}

fn or_not_recorded(text: &str) -> String {
    match clean(text) {
        t if t.is_empty() => NOT_RECORDED.into(),
        t => t,
    }
}

fn opt_text(text: &Option<String>) -> String {
    or_not_recorded(text.as_deref().unwrap_or_default())
}

fn opt_number(n: Option<u32>) -> String {
    n.map_or_else(|| NOT_RECORDED.into(), |n| n.to_string())
}

fn opt_date(date: Option<NaiveDate>) -> String {
    date.map_or_else(|| NOT_RECORDED.into(), uk_date)
}

/// The UK long form, e.g. "Tuesday 12 January 2027".
fn uk_date(date: NaiveDate) -> String {
    date.format("%A %-d %B %Y").to_string()
}

/// "Name (CODE)", or just the name when there is no code.
fn authority(facts: &AnnexFacts) -> String {
    let name = or_not_recorded(&facts.authority_name);
    match clean(&facts.authority_code) {
        code if code.is_empty() => name,
        code => format!("{name} ({code})"),
    }
}

/// `prefix-part-part.ext`, keeping only ASCII letters, digits, '-' and '_'
/// from each part so the name is safe in a mail header and on any disk.
fn file_name(prefix: &str, parts: &[&str], extension: &str) -> String {
    let mut name = prefix.to_string();
    for part in parts.iter().map(|p| file_part(p)).filter(|p| !p.is_empty()) {
        name.push('-');
        name.push_str(&part);
    }
    format!("{name}.{extension}")
}

/// `kind-CODE-visit-N.ext`, or `kind-CODE.ext` when the visit number is missing.
fn visit_file_name(kind: AnnexKind, facts: &AnnexFacts, extension: &str) -> String {
    match facts.visit_no {
        Some(n) => file_name(
            kind.name(),
            &[&facts.authority_code, "visit", &n.to_string()],
            extension,
        ),
        None => file_name(kind.name(), &[&facts.authority_code], extension),
    }
}

fn file_part(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(MAX_FILE_PART_CHARS)
        .collect()
}

fn build_error<E: std::fmt::Display>(kind: AnnexKind) -> impl Fn(E) -> AnnexError {
    move |e| AnnexError::Build {
        kind: kind.name(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
            judgement: Some("requires improvement".into()),
            report_received_on: Some(date(2027, 1, 12)),
            lead_inspector: Some("lead.hmi@ofsted.example".into()),
            visit_no: Some(3),
            visit_starts_on: Some(date(2027, 3, 2)),
            audited_cases: vec!["C-1001".into(), "C-1002".into(), "C-1003".into()],
            files_due_on: Some(date(2027, 2, 25)),
            seminar_ref: Some("G2G/07".into()),
            seminar_title: Some("Managing risk".into()),
            seminar_held_on: Some(date(2027, 5, 14)),
            seminar_venue: Some("Town Hall, Northshire".into()),
            delegates: vec![
                ("Sam One".into(), "sam@la.example".into()),
                ("Jo Two".into(), "jo@la.example".into()),
            ],
            upload_route: "https://secure.example/upload".into(),
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

    /// A light well-formedness check: tags nest and close, and every '&'
    /// starts an entity. Enough to catch unescaped record text.
    fn assert_well_formed(xml: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find('<') {
            assert_entities(&rest[..start]);
            let end = rest[start..].find('>').expect("tag is closed") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            let name = tag
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap();
            assert!(
                !name.is_empty() && !name.contains(['<', '&']),
                "bad tag <{tag}>"
            );
            if tag.starts_with('/') {
                assert_eq!(stack.pop(), Some(name), "mismatched </{name}>");
            } else if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        assert_entities(rest);
        assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    }

    fn assert_entities(text: &str) {
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#"]
                    .iter()
                    .any(|e| entity.starts_with(e)),
                "raw '&' in {text:?}"
            );
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
    fn names_round_trip() {
        for kind in AnnexKind::ALL {
            assert_eq!(AnnexKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(AnnexKind::from_name("nope"), None);
    }

    #[test]
    fn uk_dates_are_long_form() {
        assert_eq!(uk_date(date(2027, 1, 12)), "Tuesday 12 January 2027");
        assert_eq!(uk_date(date(2027, 3, 2)), "Tuesday 2 March 2027");
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
    }

    #[test]
    fn planning_record_for_inadequate_is_a_visit() {
        let facts = AnnexFacts {
            judgement: Some("inadequate".into()),
            ..facts()
        };
        let xml = document_xml(AnnexKind::PlanningRecord, &facts);
        assert!(xml.contains("Record of the action planning visit"));
        assert!(xml.contains("action plan"));
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
    }

    #[test]
    fn seminar_pack_has_instructions_timetable_and_form() {
        let xml = document_xml(AnnexKind::SeminarPack, &facts());
        assert!(xml.contains("Northshire"));
        assert!(xml.contains("Friday 14 May 2027"));
        assert!(xml.contains("Town Hall, Northshire"));
        assert!(xml.contains("Sam One, Jo Two"));
        assert!(xml.contains("Lunch"));
        assert!(xml.contains("Participant evaluation form"));
        assert!(xml.contains("\u{2610} Very useful"));
        assert!(xml.contains("11. Is there anything else"));
    }

    #[test]
    fn dcs_record_is_prefilled() {
        let xml = document_xml(AnnexKind::DcsRecord, &facts());
        assert!(xml.contains("Northshire"));
        assert!(xml.contains("Pat Director"));
        assert!(xml.contains("Managing risk"));
        assert!(xml.contains("Friday 14 May 2027"));
        assert!(xml.contains("Date of conversation"));
    }

    #[test]
    fn child_level_data_headers_come_first() {
        let annex = generate(AnnexKind::ChildLevelData, &facts()).unwrap();
        assert_eq!(annex.content_type, XLSX_TYPE);
        let headers = first_row(&annex.bytes);
        assert_eq!(headers, CHILD_LEVEL_FIELDS);
        assert_eq!(headers[0], "Child ID");
        assert_eq!(headers.last().unwrap(), "Audited since the last visit");

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
        for kind in AnnexKind::ALL {
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
            delegates: vec![(HOSTILE.into(), "x@y".into())],
            audited_cases: vec![HOSTILE.into()],
            upload_route: HOSTILE.into(),
            ..facts()
        };
        for kind in AnnexKind::ALL
            .into_iter()
            .filter(|k| *k != AnnexKind::ChildLevelData)
        {
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
    fn clean_flattens_control_characters() {
        assert_eq!(clean("  a\r\n\tb\u{0}c  "), "a b c");
        assert_eq!(
            clean(&"x".repeat(MAX_TEXT_CHARS + 10)).len(),
            MAX_TEXT_CHARS
        );
    }
}
