//! Key dates as iCalendar (RFC 5545), for Outlook and Google to subscribe to:
//! a feed per lead inspector and per authority, each at an address whose
//! token comes from a secret in config (rotate the secret to revoke every
//! address). Pure: agenda lines in, calendar text out.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike};
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

use crate::agenda::AgendaItem;
use crate::domain::EmailAddress;

/// Whose key dates a feed holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Inspector(EmailAddress),
    Authority(String),
}

impl Owner {
    fn id(&self) -> String {
        match self {
            Owner::Inspector(e) => format!("inspector:{}", e.folded()),
            Owner::Authority(code) => format!("authority:{code}"),
        }
    }

    /// Whether an agenda line is this owner's: an inspector's when they are
    /// sent or copied the email, an authority's when it is about it.
    pub fn holds(&self, item: &AgendaItem) -> bool {
        match self {
            Owner::Inspector(e) => item
                .to
                .iter()
                .chain(&item.cc)
                .any(|a| a.folded() == e.folded()),
            Owner::Authority(code) => item.authority.as_deref() == Some(code.as_str()),
        }
    }
}

/// The feed's token: 32 hex characters of an HMAC of the owner under the secret.
pub fn token(secret: &SecretString, owner: &Owner) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
    hmac::sign(&key, owner.id().as_bytes())
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An event's identity across changes of date: the rule and what it is
/// about, never the date, so a moved visit moves its events.
fn uid(item: &AgendaItem, domain: &str) -> String {
    let who = item
        .delegate
        .as_ref()
        .map(|d| d.folded())
        .or(item.authority.clone())
        .unwrap_or_default();
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "{}.{}.{}@{domain}",
        safe(&item.rule),
        safe(&item.subject.to_string()),
        safe(&who)
    )
}

/// A feed: one all-day event per dated agenda line the owner holds.
pub fn feed(
    title: &str,
    owner: &Owner,
    items: &[AgendaItem],
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let mut calendar = Calendar::new();
    calendar.name(title);
    for item in items.iter().filter(|i| owner.holds(i)) {
        let Some(day) = item.due_on else { continue };
        let status: &str = item.status.into();
        let event = Event::new()
            .uid(&uid(item, domain))
            .timestamp(now)
            .all_day(day)
            .summary(&format!(
                "{}: {} ({})",
                item.authority.as_deref().unwrap_or("-"),
                item.rule,
                item.subject
            ))
            .description(&format!(
                "Due {day}: {} for {}. State: {}.",
                item.rule,
                item.subject,
                status.replace('_', " ")
            ))
            .done();
        calendar.push(event);
    }
    calendar.done().to_string()
}

/// Every owner a feed can be for: each lead inspector and each authority in
/// the records.
pub fn owners(records: &crate::records::Records) -> Vec<Owner> {
    let mut inspectors: Vec<EmailAddress> = records
        .cases
        .values()
        .map(|c| c.lead_inspector_email.clone())
        .chain(
            records
                .visits
                .iter()
                .map(|v| v.lead_inspector_email.clone()),
        )
        .collect();
    inspectors.sort_by_key(|e| e.folded());
    inspectors.dedup_by_key(|e| e.folded());
    inspectors
        .into_iter()
        .map(Owner::Inspector)
        .chain(
            records
                .authorities
                .keys()
                .map(|code| Owner::Authority(code.to_string())),
        )
        .collect()
}

/// The owner whose feed address carries `token`, if any.
pub fn owner_for(
    records: &crate::records::Records,
    secret: &SecretString,
    given: &str,
) -> Option<Owner> {
    // Compared without stopping at the first difference, so the time taken
    // tells nothing about how close a guess came.
    let same = |a: &[u8], b: &[u8]| {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    };
    owners(records)
        .into_iter()
        .find(|o| same(token(secret, o).as_bytes(), given.as_bytes()))
}
