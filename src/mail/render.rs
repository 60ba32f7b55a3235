//! Email text from minijinja templates the admin can edit without a rebuild.
//!
//! Record values are data in the context, never template source, so a name
//! holding `{{` is printed as it is; HTML templates are auto-escaped.

use std::path::{Path, PathBuf};

use minijinja::{Environment, Value};
use serde_json::json;

use crate::calendar::{Calendar, uk_long_date};
use crate::config::Settings;
use crate::plan::{Recipients, Subject};
use crate::rules::Rule;

/// A template problem, naming the file (or rule) and line.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {reason}")]
pub struct TemplateError {
    pub place: String,
    pub reason: String,
}

impl TemplateError {
    fn from_minijinja(dir: &Path, e: &minijinja::Error) -> TemplateError {
        let name = e.name().unwrap_or("template");
        let place = match name.strip_prefix("subject:") {
            Some(rule) => format!("rules ({rule}).subject"),
            None => dir.join(name).display().to_string(),
        };
        let place = match e.line() {
            Some(line) => format!("{place} line {line}"),
            None => place,
        };
        TemplateError {
            place,
            reason: format!("{} ({})", e.kind(), e.detail().unwrap_or("no detail")),
        }
    }
}

/// The three parts of a rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

pub struct Renderer {
    env: Environment<'static>,
    dir: PathBuf,
}

/// `"2027-01-12"` -> `"Tuesday 12 January 2027"`; anything else is left as it is.
fn ukdate(value: Value) -> String {
    if value.is_undefined() || value.is_none() {
        return String::new();
    }
    let s = value.to_string();
    crate::calendar::parse_date(&s)
        .map(uk_long_date)
        .unwrap_or(s)
}

impl Renderer {
    /// Loads every template in `dir` and each rule's subject, so any syntax
    /// error shows at start or in `check-config`, not on the due day.
    pub fn load(dir: &Path, rules: &[Rule]) -> Result<Renderer, TemplateError> {
        let mut env = Environment::new();
        env.add_filter("ukdate", ukdate);
        let entries = std::fs::read_dir(dir).map_err(|e| TemplateError {
            place: dir.display().to_string(),
            reason: format!("cannot read the templates folder: {e}"),
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !(name.ends_with(".txt") || name.ends_with(".html")) {
                continue;
            }
            let source = std::fs::read_to_string(&path).map_err(|e| TemplateError {
                place: path.display().to_string(),
                reason: format!("cannot be read: {e}"),
            })?;
            env.add_template_owned(name.to_string(), source)
                .map_err(|e| TemplateError::from_minijinja(dir, &e))?;
        }
        for rule in rules {
            env.add_template_owned(format!("subject:{}", rule.id), rule.subject.clone())
                .map_err(|e| TemplateError::from_minijinja(dir, &e))?;
            let body = format!("{}.txt", rule.template);
            if env.get_template(&body).is_err() {
                return Err(TemplateError {
                    place: format!("rules ({}).template", rule.id),
                    reason: format!("{} does not exist", dir.join(body).display()),
                });
            }
        }
        Ok(Renderer {
            env,
            dir: dir.to_path_buf(),
        })
    }

    fn render_named(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| TemplateError::from_minijinja(&self.dir, &e))
    }

    pub fn render(&self, rule: &Rule, ctx: &Value) -> Result<Rendered, TemplateError> {
        let subject = one_line(&self.render_named(&format!("subject:{}", rule.id), ctx)?);
        let text = self.render_named(&format!("{}.txt", rule.template), ctx)?;
        let html_name = format!("{}.html", rule.template);
        let html = match self.env.get_template(&html_name) {
            Ok(_) => Some(self.render_named(&html_name, ctx)?),
            Err(_) => None,
        };
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Renders a template that is not a rule's (the digest).
    pub fn render_extra(&self, name: &str, ctx: &Value) -> Result<Option<String>, TemplateError> {
        if self.env.get_template(name).is_err() {
            return Ok(None);
        }
        self.render_named(name, ctx).map(Some)
    }
}

/// Header text on one line: a line break in a record must not start a header.
pub fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything a template may use about one action.
#[allow(clippy::too_many_arguments)]
pub fn context(
    settings: &Settings,
    calendar: &Calendar,
    rule: &Rule,
    subject: &Subject,
    anchor_on: &str,
    due_on: &str,
    recipients: &Recipients,
    annexes: &[String],
) -> Value {
    let region = subject.region();
    let contacts = region.and_then(|r| settings.region(r));
    let authority = subject.authority.map(|a| {
        json!({
            "code": a.code, "name": a.name, "region": a.region.id(),
            "region_name": a.region.name(), "dcs_name": a.dcs_name,
            "dcs_email": a.dcs_email.as_str(),
            "coordinator_email": a.coordinator_email.as_ref().unwrap_or(&a.dcs_email).as_str(),
        })
    });
    let case = subject.case.map(|c| {
        json!({
            "case_ref": c.case_ref, "judgement": c.judgement.id(),
            "judgement_text": c.judgement.text(),
            "report_received_on": c.report_received_on.to_string(),
            "plan_received_on": c.plan_received_on.map(|d| d.to_string()),
            "plan_due_on": plan_due_on(calendar, c.report_received_on),
            "lead_inspector_email": c.lead_inspector_email.as_str(),
            "dfe_link_email": c.dfe_link_email.as_ref().map(|e| e.as_str()),
        })
    });
    let visit = subject.visit.map(|v| {
        json!({
            "visit_no": v.visit_no, "starts_on": v.starts_on.to_string(),
            "lead_inspector_email": v.lead_inspector_email.as_str(),
            "audited_cases": v.audited_cases,
            "files_due_on": files_due_on(calendar, v.starts_on),
        })
    });
    let seminar = subject.seminar.map(|s| {
        json!({
            "seminar_ref": s.seminar_ref, "title": s.title, "region": s.region.id(),
            "region_name": s.region.name(), "held_on": s.held_on.to_string(), "venue": s.venue,
        })
    });
    let delegate = subject.delegate.map(|d| {
        json!({ "name": d.name, "email": d.email.as_str(), "authority_code": d.authority_code })
    });
    let delegates: Vec<_> = subject
        .delegates
        .iter()
        .map(|d| json!({ "name": d.name, "email": d.email.as_str(), "authority_code": d.authority_code }))
        .collect();
    Value::from_serialize(json!({
        "rule": { "id": rule.id, "description": rule.description },
        "due_on": due_on,
        "anchor_on": anchor_on,
        "authority": authority,
        "case": case,
        "visit": visit,
        "seminar": seminar,
        "delegate": delegate,
        "delegates": delegates,
        "contacts": {
            "shmi": contacts.map(|c| c.shmi.as_str()),
            "regional_director": contacts.map(|c| c.regional_director.as_str()),
            "support_team": contacts.map(|c| c.support_team.as_str()),
            "ims": settings.contacts.ims.as_str(),
            "national_director": settings.contacts.national_director.as_str(),
        },
        "reply_to": recipients.reply_to.first(),
        "upload_route": settings.mail.upload_route,
        "annexes": annexes,
    }))
}

/// The improvement plan / statement of action deadline: 70 working days (RI 25; INA 19).
pub fn plan_due_on(calendar: &Calendar, report: chrono::NaiveDate) -> Option<String> {
    calendar.add_working_days(report, 70).map(|d| d.to_string())
}

/// Audited case files are due three working days before a visit (INA 27).
pub fn files_due_on(calendar: &Calendar, starts_on: chrono::NaiveDate) -> Option<String> {
    calendar
        .add_working_days(starts_on, -3)
        .map(|d| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_folded_onto_one_line() {
        assert_eq!(
            one_line("Southshire\r\nBcc: x@y.org"),
            "Southshire Bcc: x@y.org"
        );
        assert_eq!(one_line("  a\t b  "), "a b");
    }

    #[test]
    fn ukdate_reads_iso_dates_and_leaves_other_text() {
        assert_eq!(ukdate(Value::from("2027-01-12")), "Tuesday 12 January 2027");
        assert_eq!(ukdate(Value::from("soon")), "soon");
        assert_eq!(ukdate(Value::from(())), "");
    }
}
