//! The daily digest to IMS: every failed and missed email not yet reported.

use anyhow::Context;
use chrono::NaiveDate;
use lettre::Message;
use serde::Serialize;

use super::render::Renderer;
use crate::config::Settings;
use crate::delivery::relay_fault::RelayFault;

/// One failed or missed email, as the digest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct DigestItem {
    pub id: i64,
    pub failed: bool,
    pub rule: String,
    pub subject: String,
    pub authority: Option<String>,
    pub due_on: NaiveDate,
    pub reason: String,
    /// Whom it reached, and whom the relay refused (with its reply).
    pub delivered_to: Vec<String>,
    pub refused: Vec<crate::delivery::transport::Refusal>,
}

/// What one day's digest reports.
pub struct Report<'a> {
    /// Failed and missed emails, and sent ones some recipients refused.
    pub items: &'a [DigestItem],
    /// Held emails past their day.
    pub awaiting: &'a [DigestItem],
    /// Emails that keep failing to go.
    pub retrying: &'a [DigestItem],
    pub damaged: &'a [crate::records::Damaged],
    /// A relay fault that has ended since the last digest.
    pub relay_fault: Option<&'a RelayFault>,
    pub today: NaiveDate,
}

/// Builds the digest from `digest.txt` (and `digest.html` if present).
pub fn message(
    settings: &Settings,
    renderer: &Renderer,
    report: &Report,
) -> anyhow::Result<Message> {
    let Report {
        items,
        awaiting,
        retrying,
        damaged,
        relay_fault,
        today,
    } = *report;
    let (refused, items): (Vec<&DigestItem>, Vec<&DigestItem>) = items
        .iter()
        .partition(|i| !i.failed && !i.refused.is_empty() && !i.delivered_to.is_empty());
    let (failed, missed): (Vec<&DigestItem>, Vec<&DigestItem>) =
        items.into_iter().partition(|i| i.failed);
    let ctx = minijinja::Value::from_serialize(serde_json::json!({
        "date": today, "failed": failed, "missed": missed, "relay_fault": relay_fault,
        "awaiting": awaiting, "refused": refused, "retrying": retrying, "damaged": damaged,
        "console": settings.web.public_url.as_ref().map(|u| u.link("")),
    }));
    let text = renderer
        .render_extra("digest.txt", &ctx)?
        .context("the template digest.txt is missing from the templates folder")?;
    let html = renderer.render_extra("digest.html", &ctx)?;
    let builder = super::builder(settings)
        .to(settings.contacts.ims.mailbox())
        .subject(format!(
            "keydates: {} failed, {} missed{}{}{}{} ({today})",
            failed.len(),
            missed.len(),
            if refused.is_empty() {
                String::new()
            } else {
                format!(", {} refused by a recipient", refused.len())
            },
            if retrying.is_empty() {
                String::new()
            } else {
                format!(", {} still retrying", retrying.len())
            },
            if awaiting.is_empty() {
                String::new()
            } else {
                format!(", {} awaiting confirmation", awaiting.len())
            },
            if relay_fault.is_some() {
                ", mail relay was down"
            } else {
                ""
            }
        ))
        .message_id(Some(crate::domain::message_id(
            &format!("digest.{today}"),
            &settings.mail.message_id_domain,
        )));
    let message = match html {
        Some(html) => builder.multipart(lettre::message::MultiPart::alternative_plain_html(
            text, html,
        )),
        None => builder.body(text),
    };
    message.context("while building the digest")
}
