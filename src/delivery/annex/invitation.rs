//! Calendar entries attached to the emails about a seminar or a visit
//! (RFC 5545). Pure: a record and "now" in, calendar text out.

use chrono::{DateTime, Days, NaiveDate, Utc};
use icalendar::{Calendar, Component, Event, EventLike, Property};

use crate::domain::{EmailAddress, Subject};

/// A calendar that names keydates as its maker (`PRODID`, RFC 5545 §3.7.3).
pub fn calendar() -> Calendar {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//keydates//key dates//EN"))
        .append_property(("CALSCALE", "GREGORIAN"));
    calendar
}

/// An event that lasts the whole of `day`: its `DTEND` is the next day, as
/// RFC 5545 makes the end of an all-day event exclusive.
pub fn whole_day(event: &mut Event, day: NaiveDate) -> &mut Event {
    event
        .all_day(day)
        .ends(day.checked_add_days(Days::new(1)).unwrap_or(day))
}

/// An invitation (METHOD:REQUEST) to a seminar, for its delegate, that
/// Outlook and others can answer: the organiser named, the delegate asked
/// to reply (RFC 5546 §3.2.2). For a cancelled seminar, its cancellation
/// (METHOD:CANCEL, §3.2.5): the same UID, a higher SEQUENCE.
pub fn seminar_invitation(
    seminar: &crate::records::Seminar,
    organiser: &EmailAddress,
    (name, attendee): (&str, &EmailAddress),
    domain: &str,
    now: DateTime<Utc>,
) -> String {
    let attendee = Property::new("ATTENDEE", format!("mailto:{attendee}"))
        .add_parameter("CN", &quoted(name))
        .add_parameter("ROLE", "REQ-PARTICIPANT")
        .add_parameter("PARTSTAT", "NEEDS-ACTION")
        .add_parameter("RSVP", "TRUE")
        .done();
    let organiser = Property::new("ORGANIZER", format!("mailto:{organiser}"))
        .add_parameter("CN", "Ofsted regional support team")
        .done();
    let uid = seminar
        .seminar_ref
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let sequence = seminar.sequence + u32::from(seminar.cancelled);
    let mut event = Event::new();
    if seminar.cancelled {
        event.status(icalendar::EventStatus::Cancelled);
    }
    let event = whole_day(&mut event, seminar.held_on)
        .uid(&format!("seminar.{uid}@{domain}"))
        .timestamp(now)
        .summary(&seminar.title)
        .location(&seminar.venue)
        // Grows when the seminar moves, so the new invitation replaces the old.
        .append_property(("SEQUENCE", sequence.to_string().as_str()))
        .append_property(organiser)
        .append_property(attendee)
        .done();
    let mut calendar = calendar();
    calendar.append_property((
        "METHOD",
        if seminar.cancelled {
            "CANCEL"
        } else {
            "REQUEST"
        },
    ));
    calendar.push(event);
    calendar.done().to_string()
}

/// A parameter value as RFC 5545 §3.2 allows it: quoted, without the
/// characters a quoted value may not hold.
fn quoted(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    format!("\"{kept}\"")
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
    let mut event = Event::new();
    let event = whole_day(&mut event, starts_on)
        .uid(&format!(
            "visit.{}@{domain}",
            subject
                .to_string()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ))
        .timestamp(now)
        .summary(&format!("{authority}: monitoring visit {visit_no} begins"))
        .done();
    let mut calendar = calendar();
    calendar.push(event);
    calendar.done().to_string()
}
