//! The documents keydates attaches to its emails. Each kind's wording is a
//! template in `templates/documents/` (Markdown rendered by the same engine
//! as the emails, so admins reword a document as they reword an email);
//! [`markup`] reads the result, and [`word`] or [`xlsx`] builds the file.
//!
//! Record values reach a document only as template data, Markdown-escaped,
//! and every text written passes through [`clean`], so a document always
//! stays valid XML whatever was typed.

pub mod invitation;
pub mod markup;
mod word;
mod xlsx;

use chrono::NaiveDate;
use serde::Serialize;

use crate::delivery::compose::templates::{Renderer, document_template};
pub use crate::domain::AnnexKind;
use crate::domain::mime;
use crate::domain::{EmailAddress, Judgement};

/// Longest record value written; far beyond any real name or route, and well
/// under the 32,767 characters a spreadsheet cell can hold.
const MAX_TEXT_CHARS: usize = 2_000;

/// Longest piece of a record value used in a file name.
const MAX_FILE_PART_CHARS: usize = 40;

/// What the records say about one email's subject: the documents' data.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnnexFacts {
    pub authority_code: String,
    pub authority_name: String,
    pub dcs_name: String,
    pub case_ref: Option<String>,
    pub judgement: Option<Judgement>,
    pub report_received_on: Option<NaiveDate>,
    pub lead_inspector: Option<EmailAddress>,
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
    pub delegates: Vec<(String, EmailAddress)>,
    /// How the LA should return data securely (text or URL).
    pub upload_route: String,
    /// The child-level data return's columns, from config.
    pub columns: Vec<String>,
    /// The seminar's timetable, (time, session), from config.
    pub timetable: Vec<(String, String)>,
    /// The planning event's agreed date, once recorded.
    pub planning_event_on: Option<NaiveDate>,
    /// When the six-month conversation with the DCS took place, once recorded.
    pub conversation_on: Option<NaiveDate>,
    /// The office that sends it ("Ofsted London"), the documents' author.
    pub office: Option<String>,
}

pub struct Annex {
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnexError {
    #[error("{0}")]
    Template(#[from] crate::delivery::compose::templates::TemplateError),
    #[error("could not build the {kind} document: {reason}")]
    Build { kind: &'static str, reason: String },
}

/// The documents' author when no office is known.
const AUTHOR: &str = "Ofsted";

/// Renders the kind's template for these facts and builds the file.
pub fn generate(
    kind: AnnexKind,
    facts: &AnnexFacts,
    templates: &Renderer,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Annex, AnnexError> {
    let ctx = minijinja::Value::from_serialize(context(facts));
    let markdown = templates.render_named(&document_template(kind), &ctx)?;
    let blocks = markup::parse(&markdown);
    let author = facts.office.as_deref().unwrap_or(AUTHOR);
    let build_error = |reason: String| AnnexError::Build {
        kind: kind.name(),
        reason,
    };
    let (content_type, extension, bytes) = match kind {
        AnnexKind::ChildLevelData => (
            mime::XLSX,
            "xlsx",
            xlsx::build(&blocks, now, author).map_err(|e| build_error(e.to_string()))?,
        ),
        _ => (
            mime::DOCX,
            "docx",
            word::build(&blocks, now, author).map_err(|e| build_error(e.to_string()))?,
        ),
    };
    Ok(Annex {
        filename: file_name(kind, facts, extension),
        content_type,
        bytes,
    })
}

/// The facts as the templates see them, with the labels they all use.
fn context(facts: &AnnexFacts) -> serde_json::Value {
    let mut ctx = serde_json::to_value(facts).expect("facts serialize");
    let code = clean(&facts.authority_code);
    let name = clean(&facts.authority_name);
    let label = match (name.is_empty(), code.is_empty()) {
        (true, _) => String::new(),
        (false, true) => name,
        (false, false) => format!("{name} ({code})"),
    };
    ctx["authority"] = serde_json::Value::String(label);
    ctx["judgement_text"] = facts.judgement.map(|j| j.text()).into();
    ctx["timetable"] = facts
        .timetable
        .iter()
        .map(|(time, session)| serde_json::json!({ "time": time, "session": session }))
        .collect();
    ctx["audited_column"] = crate::config::AUDITED_COLUMN.into();
    ctx["delegates"] = facts
        .delegates
        .iter()
        .map(|(name, email)| serde_json::json!({ "name": name, "email": email }))
        .collect();
    ctx
}

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

/// Record text made fit for a paragraph: as [`clean`], but spaces stay as
/// they are (tick boxes and signature lines are laid out with them); each
/// run of other whitespace or control characters becomes one space.
fn fit(text: &str) -> String {
    let unfit = |c: char| {
        (c.is_whitespace() && c != ' ') || c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    let mut out = String::with_capacity(text.len());
    let mut in_unfit = false;
    for c in text.chars().take(MAX_TEXT_CHARS) {
        if unfit(c) {
            if !in_unfit {
                out.push(' ');
            }
            in_unfit = true;
        } else {
            out.push(c);
            in_unfit = false;
        }
    }
    out
}

/// `kind-CODE[-visit-N | -SEMINAR].ext`, keeping only ASCII letters, digits,
/// '-' and '_' from each part so the name is safe in a mail header and on any disk.
fn file_name(kind: AnnexKind, facts: &AnnexFacts, extension: &str) -> String {
    let visit = facts
        .visit_no
        .map(|n| format!("visit-{n}"))
        .unwrap_or_default();
    let seminar = facts.seminar_ref.clone().unwrap_or_default();
    let parts: Vec<&str> = match kind {
        AnnexKind::ChildLevelData | AnnexKind::AuditedCases => {
            vec![&facts.authority_code, &visit]
        }
        AnnexKind::SeminarPack if !seminar.is_empty() => vec![&seminar],
        AnnexKind::DcsRecord => vec![&facts.authority_code, &seminar],
        _ => vec![&facts.authority_code],
    };
    let mut name = kind.name().to_string();
    for part in parts.iter().map(|p| file_part(p)).filter(|p| !p.is_empty()) {
        name.push('-');
        name.push_str(&part);
    }
    format!("{name}.{extension}")
}

fn file_part(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(MAX_FILE_PART_CHARS)
        .collect()
}

#[cfg(test)]
mod tests;
