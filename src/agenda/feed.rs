//! Key dates as iCalendar (RFC 5545), for Outlook and Google to subscribe to:
//! a feed per lead inspector and per authority, each at an address whose
//! token comes from a secret in config (rotate the secret to revoke every
//! address). Pure: agenda lines in, calendar text out.

use chrono::{DateTime, Utc};
use icalendar::{Component, Event};
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
        format!("{}:{}", self.kind(), self.name())
    }

    fn kind(&self) -> &'static str {
        match self {
            Owner::Inspector(_) => "inspector",
            Owner::Authority(_) => "authority",
        }
    }

    fn name(&self) -> String {
        match self {
            Owner::Inspector(e) => e.folded(),
            Owner::Authority(code) => code.clone(),
        }
    }

    /// The owner a feed address names, read from its two path segments.
    pub fn from_address(kind: &str, name: &str) -> Option<Owner> {
        match kind {
            "inspector" => EmailAddress::parse(name).ok().map(Owner::Inspector),
            "authority" => crate::domain::Reference::parse(name)
                .ok()
                .map(|r| Owner::Authority(r.to_string())),
            _ => None,
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

fn key(secret: &SecretString) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes())
}

/// The feed's token: the HMAC-SHA256 of the owner under the secret, in hex.
pub fn token(secret: &SecretString, owner: &Owner) -> String {
    hmac::sign(&key(secret), owner.id().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What an owner's name keeps unencoded in a path: an address's `@`, `.`,
/// `-` and `_` are safe there, and people read them.
const READABLE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_');

/// The feed's path: the owner, then its token. The owner is in the address
/// so that a request is checked with one HMAC before anything is read.
pub fn path(secret: &SecretString, owner: &Owner) -> String {
    let name = owner.name();
    let name = percent_encoding::utf8_percent_encode(&name, READABLE);
    format!(
        "/calendar/{}/{name}/{}.ics",
        owner.kind(),
        token(secret, owner)
    )
}

/// Whether `given` is the owner's token, checked in constant time.
pub fn verify(secret: &SecretString, owner: &Owner, given: &str) -> bool {
    let Some(tag) = unhex(given) else {
        return false;
    };
    hmac::verify(&key(secret), owner.id().as_bytes(), &tag).is_ok()
}

/// A token's bytes: exactly 64 lower-case hex digits, as `token` writes
/// them, or nothing.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
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
    let mut calendar = crate::delivery::annex::invitation::calendar();
    calendar.name(&format!("{title}: {}", owner.name()));
    for item in items.iter().filter(|i| owner.holds(i)) {
        let Some(day) = item.due_on else { continue };
        let status: &str = item.status.into();
        let mut event = Event::new();
        let event = crate::delivery::annex::invitation::whole_day(&mut event, day)
            .uid(&uid(item, domain))
            .timestamp(now)
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
