//! Calendar entries attached to the emails about a seminar or a visit
//! (RFC 5545). Pure: a record and "now" in, calendar text out.

use chrono::{DateTime, Days, NaiveDate, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

use crate::domain::{EmailAddress, Subject};

/// An invitation (METHOD:REQUEST) to a seminar, for its delegate.
pub fn seminar_invitation(
    seminar: &crate::records::Seminar,
    organiser: &EmailAddress,
    attendee: &EmailAddress,
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let uid = seminar
        .seminar_ref
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let event = Event::new()
        .uid(&format!("seminar.{uid}@{domain}"))
        .timestamp(now)
        .all_day(seminar.held_on)
        .summary(&seminar.title)
        .location(&seminar.venue)
        .add_property("ORGANIZER", format!("mailto:{organiser}"))
        .add_property("ATTENDEE", format!("mailto:{attendee}"))
        .done();
    let mut calendar = Calendar::new();
    calendar.append_property(("METHOD", "REQUEST"));
    calendar.push(event);
    calendar.done().to_string()
}

/// A monitoring visit's first on-site day, as an event.
pub fn visit_event(
    subject: &Subject,
    authority: &str,
    visit_no: u32,
    starts_on: NaiveDate,
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let event = Event::new()
        .uid(&format!(
            "visit.{}@{domain}",
            subject
                .to_string()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ))
        .timestamp(now)
        .all_day(starts_on)
        .ends(
            starts_on
                .checked_add_days(Days::new(1))
                .unwrap_or(starts_on),
        )
        .summary(&format!("{authority}: monitoring visit {visit_no} begins"))
        .done();
    let mut calendar = Calendar::new();
    calendar.push(event);
    calendar.done().to_string()
}
