//! Key dates as iCalendar (RFC 5545), for Outlook and Google to subscribe to:
//! a feed per lead inspector and per authority, each at an address whose
//! token comes from a secret in config (rotate the secret to revoke every
//! address). Pure: agenda lines in, calendar text out.

use chrono::{DateTime, Utc};
use icalendar::{Component, Event, EventLike};
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

use crate::agenda::{AgendaItem, AgendaStatus};
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
/// Where a calendar client subscribes to an owner's feed: under
/// `web.public_url`, else the console's own address; none while feeds are off.
pub fn address(settings: &crate::config::Settings, owner: &Owner) -> Option<String> {
    let secret = settings.web.calendar_secret.as_ref()?;
    let path = path(secret, owner);
    match (&settings.web.public_url, settings.web.address()) {
        (Some(url), _) => Some(url.link(&path)),
        (None, Some(addr)) => Some(format!("http://{addr}{path}")),
        (None, None) => None,
    }
}

/// The owner as people name it: the inspector's address or the authority's code.
pub fn owner_label(owner: &Owner) -> String {
    match owner {
        Owner::Inspector(e) => format!("Inspector {e}"),
        Owner::Authority(code) => format!("Authority {code}"),
    }
}

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

/// Text fit for a UID: letters, digits, `-` and `.`; `_` for the rest.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-.".contains(c) {
                c
            } else {
                '_'
            }
        })
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
    format!(
        "{}.{}.{}@{domain}",
        safe(&item.rule),
        safe(&item.subject.to_string()),
        safe(&who)
    )
}

/// A day as people read it: "Tuesday 8 December 2026".
fn uk(day: chrono::NaiveDate) -> String {
    crate::delivery::compose::templates::ukdate(minijinja::Value::from(day.to_string()))
}

/// One all-day event of a feed, marked cancelled when it is.
fn day_event(
    day: chrono::NaiveDate,
    uid: &str,
    summary: &str,
    description: &str,
    cancelled: bool,
    now: DateTime<Utc>,
) -> Event {
    let mut event = Event::new();
    crate::delivery::annex::invitation::whole_day(&mut event, day)
        .uid(uid)
        .timestamp(now)
        .summary(summary)
        .description(description);
    if cancelled {
        event.status(icalendar::EventStatus::Cancelled);
    }
    event
}

/// A feed: the owner's visit and seminar days, and one all-day event per
/// dated agenda line the owner holds, each titled for people. A cancelled
/// one says so (`STATUS:CANCELLED`) unless the same event stands on another
/// day, as a moved visit's emails do.
pub fn feed(
    owner: &Owner,
    items: &[AgendaItem],
    records: &crate::records::Records,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
) -> String {
    let domain = &settings.mail.message_id_domain;
    let name_of = |code: Option<&str>| -> String {
        code.map(|c| {
            records
                .authorities
                .get(c)
                .map_or_else(|| c.to_string(), |a| a.name.clone())
        })
        .unwrap_or_default()
    };
    let mut calendar = crate::delivery::annex::invitation::calendar();
    calendar.name(&format!("keydates: {}", owner.name()));
    for v in &records.visits {
        let case = records.cases.get(v.case_ref.as_str());
        let authority = name_of(case.map(|c| c.authority_code.as_str()));
        calendar.push(day_event(
            v.starts_on,
            &format!(
                "visit.{}@{domain}",
                safe(&format!("{}_{}", v.case_ref, v.visit_no))
            ),
            &format!("Monitoring visit {} starts: {authority}", v.visit_no),
            &format!(
                "Monitoring visit {} to {authority} (case {}) begins on {}. Lead inspector: {}.",
                v.visit_no,
                v.case_ref,
                uk(v.starts_on),
                v.lead_inspector_email
            ),
            v.cancelled,
            now,
        ));
    }
    for s in records.seminars.values() {
        let mut event = day_event(
            s.held_on,
            &format!("seminar-day.{}@{domain}", safe(s.seminar_ref.as_str())),
            &format!("'Getting to good' seminar: {}", s.title),
            &format!("{} on {}, at {}.", s.title, uk(s.held_on), s.venue),
            s.cancelled,
            now,
        );
        calendar.push(event.location(&s.venue).done());
    }
    let held: Vec<&AgendaItem> = items
        .iter()
        .filter(|i| owner.holds(i) && i.due_on.is_some())
        .collect();
    let standing: std::collections::HashSet<String> = held
        .iter()
        .filter(|i| i.status != AgendaStatus::Cancelled)
        .map(|i| uid(i, domain))
        .collect();
    for item in held {
        let Some(day) = item.due_on else { continue };
        let id = uid(item, domain);
        let cancelled = item.status == AgendaStatus::Cancelled;
        if cancelled && standing.contains(&id) {
            continue;
        }
        let what = settings
            .rules
            .iter()
            .find(|r| r.id == item.rule)
            .map_or(item.rule.as_str(), |r| r.description.as_str());
        let what = if what.is_empty() {
            item.rule.as_str()
        } else {
            what
        };
        let about = match (&item.subject, item.authority.as_deref()) {
            (crate::domain::Subject::Visit { visit_no, .. }, code) => {
                format!("{}, monitoring visit {visit_no}", name_of(code))
            }
            (crate::domain::Subject::Seminar(seminar), None) => records
                .seminars
                .get(seminar.as_str())
                .map_or_else(|| seminar.to_string(), |s| s.title.clone()),
            (_, code) => name_of(code),
        };
        let status: &str = item.status.into();
        calendar.push(day_event(
            day,
            &id,
            &format!("{what}: {about}"),
            &format!(
                "{what}, for {about} ({}), on {}. State: {}.",
                item.subject,
                uk(day),
                status.replace('_', " ")
            ),
            cancelled,
            now,
        ));
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
