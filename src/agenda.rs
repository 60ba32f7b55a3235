//! The agenda: what went and what will go, the outbox's rows merged with the
//! plan's actions that are not rows yet. A pure function, so the command
//! line and any other view show the same thing.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::{EmailAddress, SubjectKey};
use crate::outbox::{OutboxRow, Status};
use crate::plan::PlannedAction;

/// Where an agenda line stands: an outbox state, or still only planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AgendaStatus {
    Planned,
    Pending,
    Sending,
    Sent,
    Failed,
    Cancelled,
    Missed,
}

impl From<Status> for AgendaStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => AgendaStatus::Pending,
            Status::Sending => AgendaStatus::Sending,
            Status::Sent => AgendaStatus::Sent,
            Status::Failed => AgendaStatus::Failed,
            Status::Cancelled => AgendaStatus::Cancelled,
            Status::Missed => AgendaStatus::Missed,
        }
    }
}

/// One line of the agenda. Its JSON form is a contract with outside scripts.
#[derive(Debug, Clone, Serialize)]
pub struct AgendaItem {
    /// The outbox row, when the email has one.
    pub id: Option<i64>,
    pub rule: String,
    pub subject: SubjectKey,
    pub authority: Option<String>,
    pub delegate: Option<EmailAddress>,
    pub due_on: NaiveDate,
    /// Local time, written as RFC 3339 with its offset (`+00:00`, never `Z`).
    #[serde(serialize_with = "rfc3339")]
    pub send_at: DateTime<FixedOffset>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub status: AgendaStatus,
    pub detail: Option<String>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<FixedOffset>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

/// Which lines to keep: due dates from and to, both included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Window {
    fn holds(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }
}

/// Recorded rows first-hand, then planned actions not yet recorded, in send order.
pub fn build(
    rows: &[OutboxRow],
    planned: &[PlannedAction],
    now: DateTime<Utc>,
    tz: Tz,
    window: Window,
) -> Vec<AgendaItem> {
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset();
    let recorded: HashSet<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let mut items: Vec<AgendaItem> = rows
        .iter()
        .map(|r| AgendaItem {
            id: Some(r.id),
            rule: r.rule.clone(),
            subject: r.subject.clone(),
            authority: r.authority.clone(),
            delegate: r.delegate.clone(),
            due_on: r.due_on,
            send_at: local(r.send_at),
            to: r.recipients.to.clone(),
            cc: r.recipients.cc.clone(),
            status: r.status.into(),
            detail: r.last_error.clone().or(r.server_reply.clone()),
        })
        .collect();
    items.extend(
        planned
            .iter()
            .filter(|a| !recorded.contains(a.key.as_str()))
            .map(|a| AgendaItem {
                id: None,
                rule: a.rule_id.clone(),
                subject: a.subject.clone(),
                authority: a.authority.clone(),
                delegate: a.delegate.clone(),
                due_on: a.due_on,
                send_at: local(a.send_at),
                to: a.recipients.to.clone(),
                cc: a.recipients.cc.clone(),
                status: if a.send_until <= now {
                    AgendaStatus::Missed
                } else {
                    AgendaStatus::Planned
                },
                detail: None,
            }),
    );
    items.retain(|i| window.holds(i.due_on));
    items.sort_by(|a, b| {
        (a.send_at, &a.rule, a.subject.to_string()).cmp(&(
            b.send_at,
            &b.rule,
            b.subject.to_string(),
        ))
    });
    items
}
