//! The template engine (minijinja) for everything an admin may reword
//! without a rebuild: email subjects and bodies, the digest, and the
//! documents attached to emails.
//!
//! Record values are data in the context, never template source, so a name
//! holding `{{` is printed as it is. HTML templates are HTML-escaped and
//! document templates (Markdown) Markdown-escaped.

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, Value};

use crate::calendar::uk_long_date;
use crate::config::rules::Rule;
use crate::domain::AnnexKind;

/// The template file of a document kind, relative to the templates folder.
pub fn document_template(kind: AnnexKind) -> String {
    format!("documents/{}.md", kind.name())
}

fn add_file(
    env: &mut Environment<'static>,
    dir: &Path,
    name: String,
    path: &Path,
) -> Result<(), TemplateError> {
    let source = std::fs::read_to_string(path).map_err(|e| TemplateError {
        place: path.display().to_string(),
        reason: format!("cannot be read: {e}"),
    })?;
    env.add_template_owned(name, source)
        .map_err(|e| TemplateError::from_minijinja(dir, &e))
}

/// Backslash-escapes Markdown's punctuation (CommonMark allows it before any
/// ASCII punctuation) and flattens line breaks, so a record value stays text.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut control = false;
    for c in text.chars() {
        // A run of control characters (a line break typed as \r\n) is one space.
        if c.is_control() {
            if !control {
                out.push(' ');
            }
            control = true;
            continue;
        }
        control = false;
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn format_value(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() == AutoEscape::Custom("markdown") && !value.is_safe() {
        if value.is_none() || value.is_undefined() {
            return Ok(());
        }
        write!(out, "{}", markdown_escape(&value.to_string()))
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write"))
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

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
pub fn ukdate(value: Value) -> String {
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
        // A misspelt variable is an error, found by check-config (which
        // renders every template against fictional records), not a blank.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else if name.ends_with(".md") {
                AutoEscape::Custom("markdown")
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(format_value);
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
            add_file(&mut env, dir, name.to_string(), &path)?;
        }
        // Documents: `documents/NAME.md`, one per annex kind.
        for kind in <AnnexKind as strum::IntoEnumIterator>::iter() {
            let name = document_template(kind);
            let path = dir.join(&name);
            if !path.is_file() {
                return Err(TemplateError {
                    place: path.display().to_string(),
                    reason: format!("the {kind} document template is missing"),
                });
            }
            add_file(&mut env, dir, name, &path)?;
        }
        for rule in rules {
            let late = rule.too_late_rule();
            for (rule, place) in std::iter::once((rule, "template"))
                .chain(late.as_ref().map(|r| (r, "too_late.template")))
            {
                env.add_template_owned(rule.subject_template(), rule.subject.clone())
                    .map_err(|e| TemplateError::from_minijinja(dir, &e))?;
                let body = format!("{}.txt", rule.template);
                if env.get_template(&body).is_err() {
                    return Err(TemplateError {
                        place: format!("rules ({}).{place}", rule.id),
                        reason: format!("{} does not exist", dir.join(body).display()),
                    });
                }
            }
        }
        Ok(Renderer {
            env,
            dir: dir.to_path_buf(),
        })
    }

    pub fn render_named(&self, name: &str, ctx: &Value) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| TemplateError::from_minijinja(&self.dir, &e))
    }

    pub fn render(&self, rule: &Rule, ctx: &Value) -> Result<Rendered, TemplateError> {
        let subject = subject_line(&self.render_named(&rule.subject_template(), ctx)?);
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

/// The longest subject line keydates writes, well inside RFC 5322's 998
/// characters a line even after encoding.
pub const MAX_SUBJECT_CHARS: usize = 250;

/// A subject on one line, cut at [`MAX_SUBJECT_CHARS`] with an ellipsis.
pub fn subject_line(s: &str) -> String {
    let line = one_line(s);
    if line.chars().count() <= MAX_SUBJECT_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_SUBJECT_CHARS - 1).collect();
    cut.push('\u{2026}');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ukdate_reads_iso_dates_and_leaves_other_text() {
        assert_eq!(ukdate(Value::from("2027-01-12")), "Tuesday 12 January 2027");
        assert_eq!(ukdate(Value::from("soon")), "soon");
        assert_eq!(ukdate(Value::from(())), "");
    }

    #[test]
    fn long_subjects_are_cut_with_an_ellipsis() {
        let long = "x".repeat(10_000);
        let line = subject_line(&long);
        assert_eq!(line.chars().count(), MAX_SUBJECT_CHARS);
        assert!(line.ends_with('\u{2026}'));
        assert_eq!(subject_line("short"), "short");
    }

    #[test]
    fn markdown_escaping_keeps_record_text_as_text() {
        assert_eq!(markdown_escape("**A** | B\nC"), "\\*\\*A\\*\\* \\| B C");
    }
}
