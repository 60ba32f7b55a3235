//! The agenda: what went and what will go, the outbox's rows merged with the
//! plan's actions that are not rows yet. A pure function, so the command
//! line and any other view show the same thing.

pub mod feed;

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::{EmailAddress, Subject};
use crate::outbox::{OutboxRow, Status};
use crate::plan::{PlannedAction, Waiting};

/// Where an agenda line stands: an outbox state, or still only planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AgendaStatus {
    Planned,
    /// Cannot be dated until someone records the date it counts from.
    Waiting,
    Pending,
    AwaitingConfirmation,
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
            Status::AwaitingConfirmation => AgendaStatus::AwaitingConfirmation,
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
    pub subject: Subject,
    pub authority: Option<String>,
    pub delegate: Option<EmailAddress>,
    /// None while the action waits for the date it counts from.
    pub due_on: Option<NaiveDate>,
    /// Local time, written as RFC 3339 with its offset (`+00:00`, never `Z`).
    #[serde(serialize_with = "rfc3339")]
    pub send_at: Option<DateTime<FixedOffset>>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub status: AgendaStatus,
    pub detail: Option<String>,
}

fn rfc3339<S: serde::Serializer>(
    t: &Option<DateTime<FixedOffset>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// Which lines to keep: due dates from and to, both included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Window {
    /// An undated line is shown only when no window is asked for.
    fn holds(&self, date: Option<NaiveDate>) -> bool {
        match date {
            Some(date) => self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t),
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// Recorded rows first-hand, then planned actions not yet recorded, in send order.
pub fn build(
    rows: &[OutboxRow],
    planned: &[PlannedAction],
    waiting: &[Waiting],
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
            due_on: Some(r.due_on),
            send_at: Some(local(r.send_at)),
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
                due_on: Some(a.due_on),
                send_at: Some(local(a.send_at)),
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
    items.extend(waiting.iter().map(|w| AgendaItem {
        id: None,
        rule: w.rule_id.clone(),
        subject: w.subject.clone(),
        authority: w.authority.clone(),
        delegate: None,
        due_on: None,
        send_at: None,
        to: Vec::new(),
        cc: Vec::new(),
        status: AgendaStatus::Waiting,
        detail: Some(w.reason.clone()),
    }));
    items.retain(|i| window.holds(i.due_on));
    // Dated lines in send order, then those waiting for a date.
    items.sort_by_key(|i| {
        (
            i.send_at.is_none(),
            i.send_at,
            i.rule.clone(),
            i.subject.to_string(),
        )
    });
    items
}

/// The agenda as of `now`, read from the database: the command line, the
/// console and the calendar feeds all show this.
/// One feed owner's agenda, read from that owner's records only (an
/// authority's cases and seminars, or the cases and visits an inspector
/// leads) with the emails recorded for them; and those records.
pub async fn for_owner(
    pool: &crate::db::Pool,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
    owner: &feed::Owner,
) -> anyhow::Result<(Vec<AgendaItem>, crate::records::Records)> {
    use crate::records::store;
    let (records, rows) = match owner {
        feed::Owner::Authority(code) => {
            let (cases, seminars) = store::subjects_of_authority(pool, code).await?;
            let records = store::load_subjects(pool, &cases, &seminars).await?;
            (records, crate::outbox::about_authority(pool, code).await?)
        }
        feed::Owner::Inspector(email) => {
            let cases = store::cases_led_by(pool, &email.folded()).await?;
            let records = store::load_subjects(pool, &cases, &[]).await?;
            (
                records,
                crate::outbox::maybe_to(pool, &email.folded()).await?,
            )
        }
    };
    let planned = crate::plan::plan(&records, settings, &settings.calendar());
    let waiting = crate::plan::waiting(&records, settings);
    let items = build(
        &rows,
        &planned,
        &waiting,
        now,
        settings.time_zone(),
        Window::default(),
    );
    Ok((
        items.into_iter().filter(|i| owner.holds(i)).collect(),
        records,
    ))
}

pub async fn current(
    pool: &crate::db::Pool,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
    window: Window,
) -> anyhow::Result<Vec<AgendaItem>> {
    let records = crate::records::store::load(pool).await?;
    let planned = crate::plan::plan(&records, settings, &settings.calendar());
    let waiting = crate::plan::waiting(&records, settings);
    let rows = crate::outbox::list(pool, None).await?;
    Ok(build(
        &rows,
        &planned,
        &waiting,
        now,
        settings.time_zone(),
        window,
    ))
}
