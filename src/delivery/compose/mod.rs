//! Composing one email: rendered text, recipients, and its annexes attached.

pub mod digest;
pub mod render;
pub mod templates;

use chrono::NaiveDate;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};

use crate::calendar::Calendar;
use crate::config::Settings;
use crate::config::rules::{AnnexSpec, Rule};
use crate::delivery::annex::{self, AnnexFacts};
use crate::domain::mime;
use crate::plan::{self, Involved, KeyDates, Recipients};
use render::{Rendered, Renderer};

/// `Auto-Submitted: auto-generated` (RFC 3834): sent by a program, so
/// out-of-office replies stay away from IMS and the inspectors.
#[derive(Debug, Clone, Copy)]
pub struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// Exchange's own word for the same (`X-Auto-Response-Suppress: All`):
/// Outlook and Exchange send no automatic replies to it.
#[derive(Debug, Clone, Copy)]
pub struct SuppressAutoReplies;

impl lettre::message::header::Header for SuppressAutoReplies {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("X-Auto-Response-Suppress")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SuppressAutoReplies)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "All".into())
    }
}

/// A message builder with what every email keydates sends carries: the
/// sender, and the headers that mark it as sent by a program.
pub fn builder(settings: &Settings) -> lettre::message::MessageBuilder {
    builder_from(settings.mail.from.clone())
}

pub fn builder_from(from: lettre::message::Mailbox) -> lettre::message::MessageBuilder {
    Message::builder()
        .from(from)
        .header(AutoSubmitted)
        .header(SuppressAutoReplies)
}

/// Why an email could not be built. Permanent: the same records and
/// config would give the same result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ComposeError(pub String);

impl From<String> for ComposeError {
    fn from(reason: String) -> Self {
        ComposeError(reason)
    }
}

/// A message ready to send, with what `preview` shows about it.
pub struct Composed {
    pub message: Message,
    pub rendered: Rendered,
    pub attachments: Vec<AttachedFile>,
}

/// One attachment as it goes.
#[derive(Debug, Clone)]
pub struct AttachedFile {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Everything composing needs that does not change between messages.
pub struct Composer<'a> {
    pub settings: &'a Settings,
    pub calendar: &'a Calendar,
    pub renderer: &'a Renderer,
}

/// Where one email comes from.
pub struct Draft<'a> {
    pub rule: &'a Rule,
    pub involved: &'a Involved<'a>,
    pub anchor_on: NaiveDate,
    pub due_on: NaiveDate,
    /// What the planner derived for this email.
    pub dates: KeyDates,
    pub recipients: &'a Recipients,
    pub message_id: &'a str,
    /// The instant it is composed for: its Date, the documents' dates and
    /// the calendar's DTSTAMP. The same instant gives the same email.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Composer<'_> {
    /// Builds the message. Every error here is permanent: retrying the same
    /// records and config would give the same result.
    pub fn compose(&self, draft: &Draft) -> Result<Composed, ComposeError> {
        self.check_allowed(draft.recipients)?;
        let annexes = self.annexes(draft)?;
        let names: Vec<String> = annexes.iter().map(|a| a.0.clone()).collect();
        let ctx = render::context(self.settings, draft, &names);
        let mut rendered = self
            .renderer
            .render(draft.rule, &ctx)
            .map_err(|e| e.to_string())?;
        let (to, cc) = match &self.settings.mail.redirect_all_to {
            Some(redirect) => {
                note_redirect(&mut rendered, draft.recipients);
                (vec![redirect.clone()], Vec::new())
            }
            None => (draft.recipients.to.clone(), draft.recipients.cc.clone()),
        };
        let mut builder = builder(self.settings)
            .date(std::time::SystemTime::from(draft.now))
            .subject(rendered.subject.clone())
            .message_id(Some(draft.message_id.to_string()));
        for a in &to {
            builder = builder.to(a.mailbox());
        }
        for a in &cc {
            builder = builder.cc(a.mailbox());
        }
        for a in &draft.recipients.reply_to {
            builder = builder.reply_to(a.mailbox());
        }
        let body = match &rendered.html {
            Some(html) => MultiPart::alternative_plain_html(rendered.text.clone(), html.clone()),
            None => MultiPart::mixed().singlepart(SinglePart::plain(rendered.text.clone())),
        };
        let mut mixed = MultiPart::mixed().multipart(body);
        let mut attachments = Vec::new();
        for (name, content_type, bytes) in annexes {
            let ct = ContentType::parse(&content_type)
                .map_err(|e| format!("annex {name}: bad content type {content_type}: {e}"))?;
            attachments.push(AttachedFile {
                name: name.clone(),
                content_type,
                bytes: bytes.clone(),
            });
            mixed = mixed.singlepart(Attachment::new(name).body(bytes, ct));
        }
        let message = builder
            .multipart(mixed)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        Ok(Composed {
            message,
            rendered,
            attachments,
        })
    }

    fn check_allowed(&self, recipients: &Recipients) -> Result<(), ComposeError> {
        let allowed = &self.settings.mail.allowed_domains;
        if allowed.is_empty() {
            return Ok(());
        }
        for address in recipients.all().chain(&recipients.reply_to) {
            let domain = address.domain();
            if !allowed.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
                return Err(ComposeError(format!(
                    "{address} is outside mail.allowed_domains ({}); not sent",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn annexes(&self, draft: &Draft) -> Result<Vec<(String, String, Vec<u8>)>, ComposeError> {
        let mut out = Vec::new();
        for spec in &draft.rule.annexes {
            match spec {
                AnnexSpec::Generated(kind) => {
                    let facts = facts(self.settings, draft.involved, &draft.dates);
                    let a = annex::generate(*kind, &facts, self.renderer, draft.now)
                        .map_err(|e| e.to_string())?;
                    out.push((a.filename, a.content_type.to_string(), a.bytes));
                }
                AnnexSpec::Calendar => {
                    if let Some(ics) = self.calendar_file(draft) {
                        out.push(ics);
                    }
                }
                AnnexSpec::File(path) => {
                    // Checked again at each send: the folder may have changed.
                    let full = self
                        .settings
                        .attachment(path)
                        .map_err(|e| format!("{e}; not sent without it"))?;
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(
                        &mut std::io::Read::take(
                            std::fs::File::open(&full).map_err(|e| e.to_string())?,
                            self.settings.mail.max_attachment_bytes,
                        ),
                        &mut bytes,
                    )
                    .map_err(|e| format!("annex {} cannot be read: {e}", full.display()))?;
                    let name = full
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_else(|| "annex".into());
                    out.push((name, content_type_for(&full).to_string(), bytes));
                }
            }
        }
        Ok(out)
    }
}

impl Composer<'_> {
    /// The seminar as an invitation to its delegate, or the visit's first
    /// on-site day; nothing for other subjects.
    fn calendar_file(&self, draft: &Draft) -> Option<(String, String, Vec<u8>)> {
        let domain = &self.settings.mail.message_id_domain;
        let now = draft.now;
        let s = draft.involved;
        if let (Some(seminar), Some(delegate)) = (s.seminar, s.delegate) {
            let organiser = s
                .region()
                .and_then(|r| self.settings.region(r))
                .map(|c| c.support_team.clone())?;
            let ics = annex::invitation::seminar_invitation(
                seminar,
                &organiser,
                (&delegate.name, &delegate.email),
                domain,
                now,
            );
            let method = if seminar.cancelled {
                "CANCEL"
            } else {
                "REQUEST"
            };
            return Some((
                "seminar.ics".into(),
                format!("text/calendar; method={method}; charset=utf-8"),
                ics.into_bytes(),
            ));
        }
        let visit = s.visit?;
        let ics = annex::invitation::visit_event(
            &visit.subject(),
            s.authority.map_or("", |a| a.name.as_str()),
            visit.visit_no,
            visit.starts_on,
            domain,
            now,
        );
        Some((
            "visit.ics".into(),
            "text/calendar; charset=utf-8".into(),
            ics.into_bytes(),
        ))
    }
}

/// For trials: say at the top of the email who it was really for.
fn note_redirect(rendered: &mut Rendered, recipients: &Recipients) {
    let to = plan::joined(&recipients.to);
    let cc = plan::joined(&recipients.cc);
    let note = format!(
        "[Trial copy] This email would have gone to: {to}{}",
        if cc.is_empty() {
            String::new()
        } else {
            format!("; copied to: {cc}")
        }
    );
    rendered.text = format!("{note}\n\n{}", rendered.text);
    if let Some(html) = &mut rendered.html {
        let escaped = note
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        *html = format!("<p><strong>{escaped}</strong></p>\n{html}");
    }
    rendered.subject = format!("[Trial] {}", rendered.subject);
}

/// The content type of an admin-supplied annex, by its extension.
pub fn content_type_for(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "docx" => mime::DOCX,
        "xlsx" => mime::XLSX,
        "doc" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "odt" => "application/vnd.oasis.opendocument.text",
        "pdf" => "application/pdf",
        "txt" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "rtf" => "application/rtf",
        _ => "application/octet-stream",
    }
}

/// The seminar's own timetable, else the one config gives every seminar.
pub fn timetable(settings: &Settings, s: &Involved) -> Vec<(String, String)> {
    match s.seminar {
        Some(seminar) if !seminar.timetable.is_empty() => seminar
            .timetable
            .sessions()
            .map(|(t, s)| (t, s.to_string()))
            .collect(),
        _ => settings
            .seminars
            .timetable
            .iter()
            .filter_map(|line| line.split_once('|'))
            .map(|(t, s)| (t.trim().to_string(), s.trim().to_string()))
            .collect(),
    }
}

/// The records flattened for the document generators.
pub fn facts(settings: &Settings, s: &Involved, dates: &KeyDates) -> AnnexFacts {
    AnnexFacts {
        authority_code: s.authority.map(|a| a.code.to_string()).unwrap_or_default(),
        authority_name: s.authority.map(|a| a.name.clone()).unwrap_or_default(),
        dcs_name: s.authority.map(|a| a.dcs_name.clone()).unwrap_or_default(),
        case_ref: s.case.map(|c| c.case_ref.to_string()),
        judgement: s.case.map(|c| c.judgement),
        report_received_on: s.case.map(|c| c.report_received_on),
        lead_inspector: s
            .visit
            .map(|v| v.lead_inspector_email.clone())
            .or(s.case.map(|c| c.lead_inspector_email.clone())),
        visit_no: s.visit.map(|v| v.visit_no),
        visit_starts_on: s.visit.map(|v| v.starts_on),
        audited_cases: s.visit.map(|v| v.audited_cases.clone()).unwrap_or_default(),
        files_due_on: dates.files_due_on,
        seminar_ref: s.seminar.map(|x| x.seminar_ref.to_string()),
        seminar_title: s.seminar.map(|x| x.title.clone()),
        seminar_held_on: s.seminar.map(|x| x.held_on),
        seminar_venue: s.seminar.map(|x| x.venue.clone()),
        delegates: s
            .delegates
            .iter()
            .map(|d| (d.name.clone(), d.email.clone()))
            .collect(),
        upload_route: settings.mail.upload_route.clone(),
        columns: settings.child_level_data.columns.clone(),
        timetable: timetable(settings, s),
        conversation_on: s.conversation_on,
        planning_event_on: s.case.and_then(|c| c.planning_event_on),
        office: s.region().map(|r| format!("Ofsted {}", r.name())),
    }
}

/// Renders every enabled rule once against fictional records of each kind,
/// so a template that parses but fails on use shows now, not on its day.
pub fn check_rules(composer: &Composer) -> anyhow::Result<()> {
    let sample = crate::records::sample::records();
    let message_id = crate::domain::message_id("check", "keydates.invalid");
    let with_too_late = composer
        .settings
        .enabled_rules()
        .flat_map(|r| std::iter::once(r.clone()).chain(r.too_late_rule()));
    for rule in with_too_late {
        let rule = &rule;
        let everyone = plan::involved(&sample, rule.on);
        let Some(involved) = everyone.first() else {
            continue;
        };
        let recipients = involved.recipients(rule, composer.settings);
        let day = sample
            .cases
            .values()
            .next()
            .map_or(NaiveDate::MIN, |c| c.report_received_on);
        composer
            .compose(&Draft {
                rule,
                involved,
                anchor_on: day,
                due_on: day,
                dates: involved.key_dates(
                    composer.calendar,
                    &composer.settings.child_level_data.late_return,
                    rule,
                    day,
                    day,
                    day,
                ),
                recipients: &recipients,
                message_id: &message_id,
                now: chrono::DateTime::UNIX_EPOCH,
            })
            .map_err(|e| {
                let part = if rule.is_too_late { ".too_late" } else { "" };
                anyhow::anyhow!("rules ({}){part}: {e}", rule.id)
            })?;
    }
    Ok(())
}
