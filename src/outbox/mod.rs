//! The outbox: the one place that decides whether an email goes.
//!
//! Planned actions are reconciled into rows under a unique key; a due row is
//! claimed atomically (`UPDATE ... RETURNING`), its Message-ID is stored with
//! the claim, and it is then marked sent, scheduled for retry, or failed. A
//! claim whose process died is released and retried with the same Message-ID.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::db::{Backend, Conn, Pool};
use strum::{EnumString, IntoStaticStr};

use crate::db::state;
pub use crate::domain::Refusal;
use crate::domain::{EmailAddress, Subject, SubjectType};
use crate::plan::{PlannedAction, Recipients};

pub use crate::db::{parse_ts, ts};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    clap::ValueEnum,
    EnumString,
    IntoStaticStr,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    Pending,
    /// Held until someone confirms it may go (`keydates confirm ID`).
    #[value(name = "awaiting_confirmation")]
    AwaitingConfirmation,
    Sending,
    Sent,
    Failed,
    Cancelled,
    Missed,
}

/// Who cancelled an email: the plan (its record stopped calling for it, and
/// it comes back if the record does again) or a person (it stays cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum CancelledBy {
    Plan,
    Admin,
}

impl CancelledBy {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Not yet gone, and still following its record.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::AwaitingConfirmation)
    }

    /// Where a planned action starts: held ones wait for a confirmation.
    fn first(a: &PlannedAction) -> Status {
        if a.held {
            Status::AwaitingConfirmation
        } else {
            Status::Pending
        }
    }
}

/// One outbox row.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub key: String,
    pub rule: String,
    pub subject: Subject,
    pub authority: Option<String>,
    pub delegate: Option<EmailAddress>,
    pub anchor_on: NaiveDate,
    pub due_on: NaiveDate,
    pub send_at: DateTime<Utc>,
    pub send_until: DateTime<Utc>,
    pub recipients: Recipients,
    pub status: Status,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
    pub server_reply: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The addresses the email has reached, on this or an earlier try.
    pub delivered_to: Vec<String>,
    /// Recipients the relay refused for good, with its reply.
    pub refused: Vec<Refusal>,
    /// Sends of this email during which the connection broke.
    pub broken_sends: i64,
}

impl OutboxRow {
    /// A row as it would be recorded for a planned action (for previews).
    pub fn from_planned(a: &PlannedAction) -> OutboxRow {
        OutboxRow {
            id: 0,
            key: a.key.clone(),
            rule: a.rule_id.clone(),
            subject: a.subject.clone(),
            authority: a.authority.clone(),
            delegate: a.delegate.clone(),
            anchor_on: a.anchor_on,
            due_on: a.due_on,
            send_at: a.send_at,
            send_until: a.send_until,
            recipients: a.recipients.clone(),
            status: Status::Pending,
            attempts: 0,
            next_attempt_at: None,
            first_attempt_at: None,
            message_id: None,
            server_reply: None,
            last_error: None,
            sent_at: None,
            delivered_to: Vec::new(),
            refused: Vec::new(),
            broken_sends: 0,
        }
    }

    /// The problem with a stored value, naming the row and column: a bad value
    /// means the database was changed by hand, and guessing could send wrongly.
    fn bad(column: &str, value: &str, why: impl std::fmt::Display) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: format!("outbox.{column} holds `{value}`: {why}").into(),
        }
    }
}

fn date_col(row: &crate::db::Row, column: &str) -> Result<NaiveDate, sqlx::Error> {
    let s: String = row.try_get(column)?;
    NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| OutboxRow::bad(column, &s, e))
}

fn ts_col(row: &crate::db::Row, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    let s: String = row.try_get(column)?;
    parse_ts(&s).ok_or_else(|| OutboxRow::bad(column, &s, "not an RFC 3339 time"))
}

fn opt_ts_col(row: &crate::db::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let s: Option<String> = row.try_get(column)?;
    s.map(|s| parse_ts(&s).ok_or_else(|| OutboxRow::bad(column, &s, "not an RFC 3339 time")))
        .transpose()
}

/// A JSON list, empty when NULL.
fn json_col<T: serde::de::DeserializeOwned>(
    row: &crate::db::Row,
    column: &str,
) -> Result<Vec<T>, sqlx::Error> {
    let s: Option<String> = row.try_get(column)?;
    match s {
        None => Ok(Vec::new()),
        Some(s) => serde_json::from_str(&s).map_err(|e| OutboxRow::bad(column, &s, e)),
    }
}

/// A list as a JSON column: NULL when empty.
fn json_or_null<T: Serialize>(list: &[T]) -> Option<String> {
    (!list.is_empty()).then(|| serde_json::to_string(list).expect("lists serialize"))
}

impl sqlx::FromRow<'_, crate::db::Row> for OutboxRow {
    fn from_row(row: &crate::db::Row) -> Result<Self, sqlx::Error> {
        let subject_type: String = row.try_get("subject_type")?;
        let subject_type: SubjectType = subject_type
            .parse()
            .map_err(|e| OutboxRow::bad("subject_type", &subject_type, e))?;
        let subject: String = row.try_get("subject")?;
        let status: String = row.try_get("status")?;
        let recipients: String = row.try_get("recipients")?;
        let delegate: Option<String> = row.try_get("delegate")?;
        Ok(OutboxRow {
            id: row.try_get("id")?,
            key: row.try_get("key")?,
            rule: row.try_get("rule_id")?,
            subject: Subject::parse(subject_type, &subject)
                .map_err(|e| OutboxRow::bad("subject", &subject, e))?,
            authority: row.try_get("authority")?,
            delegate: delegate
                .map(|d| EmailAddress::parse(&d).map_err(|e| OutboxRow::bad("delegate", &d, e)))
                .transpose()?,
            anchor_on: date_col(row, "anchor_on")?,
            due_on: date_col(row, "due_on")?,
            send_at: ts_col(row, "send_at")?,
            send_until: ts_col(row, "send_until")?,
            recipients: serde_json::from_str(&recipients)
                .map_err(|e| OutboxRow::bad("recipients", &recipients, e))?,
            status: status
                .parse()
                .map_err(|e| OutboxRow::bad("status", &status, e))?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: opt_ts_col(row, "next_attempt_at")?,
            first_attempt_at: opt_ts_col(row, "first_attempt_at")?,
            message_id: row.try_get("message_id")?,
            server_reply: row.try_get("server_reply")?,
            last_error: row.try_get("last_error")?,
            sent_at: opt_ts_col(row, "sent_at")?,
            delivered_to: json_col(row, "delivered_to")?,
            refused: json_col(row, "refused")?,
            broken_sends: row.try_get("broken_sends")?,
        })
    }
}

/// What a reconcile changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub added: usize,
    pub updated: usize,
    pub cancelled: usize,
    pub revived: usize,
    /// Past their limit before keydates knew of them (old records imported):
    /// shown as missed from the plan, never stored, never sent.
    pub missed_on_arrival: usize,
    /// Fell due and passed their limit while no pass ran: stored as missed,
    /// for the digest.
    pub missed_while_stopped: usize,
}

/// How far ahead the outbox holds actions, and how far the last plan of
/// every record reached (the watermark). An action recorded from a day
/// after the watermark was not in the outbox's reach before, so if its limit
/// has passed it was missed while keydates was stopped, not before it knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    pub until: NaiveDate,
    pub watermark: Option<NaiveDate>,
}

struct Existing {
    id: i64,
    status: Status,
    cancelled_by: Option<CancelledBy>,
    forced: bool,
    fields: Fields,
    /// Called for by the plan so far.
    planned: bool,
}

/// The stored forms of what a plan can change in a row: due date, send
/// time, limit and recipients.
type Fields = (String, String, String, String);

fn fields_of(a: &PlannedAction) -> Fields {
    (
        a.due_on.to_string(),
        ts(a.send_at),
        ts(a.send_until),
        serde_json::to_string(&a.recipients).expect("addresses serialize"),
    )
}

/// Which outbox rows a reconcile may touch.
#[derive(Debug, Clone, Copy)]
pub enum ReconcileScope<'a> {
    /// Every row: the plan covers all records.
    All,
    /// Only rows about these cases (and their visits) and these seminars: the
    /// plan covers just the records that changed.
    Subjects {
        cases: &'a [String],
        seminars: &'a [String],
        /// Ids of the rules on cases and visits, and on seminars, delegates
        /// and seminar authorities: a case and a seminar may share a name.
        case_rules: &'a HashSet<String>,
        seminar_rules: &'a HashSet<String>,
    },
}

/// Makes the outbox match the plan, in one transaction. New actions become
/// pending rows; pending rows follow their record (new date, new recipients)
/// or are cancelled when their action no longer holds; rows cancelled that
/// way come back if it holds again. Sent, failed and missed rows never change.
#[tracing::instrument(skip_all, fields(planned = planned.len()))]
pub async fn reconcile(
    pool: &Pool,
    planned: &[PlannedAction],
    now: DateTime<Utc>,
    reach: Reach,
) -> anyhow::Result<ReconcileReport> {
    reconcile_scoped(pool, planned, now, reach, ReconcileScope::All).await
}

/// `reconcile_scoped` in one write transaction.
pub async fn reconcile_scoped(
    pool: &Pool,
    planned: &[PlannedAction],
    now: DateTime<Utc>,
    reach: Reach,
    scope: ReconcileScope<'_>,
) -> anyhow::Result<ReconcileReport> {
    let mut tx = crate::db::begin(pool).await?;
    let report = reconcile_in(&mut tx, planned, now, reach, scope).await?;
    tx.commit().await?;
    Ok(report)
}

// `status || ''` keeps the database off the status index, so that the
// subject index serves the scoped lookups.
// Rows a plan can still change: open ones, and those the plan cancelled,
// which come back if their action holds again.
const OPEN_ROWS: &str =
    "SELECT id, key, rule_id, status, cancelled_by, forced, due_on, send_at, send_until, recipients
     FROM outbox WHERE ((status || '') IN ('pending', 'awaiting_confirmation')
       OR ((status || '') = 'cancelled' AND cancelled_by = 'plan'))";

/// The cases and seminars with rows a plan can still change: a plan for the
/// outbox plans all of their actions, however far ahead, so that those rows
/// follow their records.
pub async fn followed_subjects(pool: &Pool) -> anyhow::Result<(HashSet<String>, HashSet<String>)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT DISTINCT subject_type, subject FROM outbox
         WHERE status IN ('pending', 'awaiting_confirmation')
            OR (status = 'cancelled' AND cancelled_by = 'plan')",
    )
    .fetch_all(pool)
    .await?;
    let (mut cases, mut seminars) = (HashSet::new(), HashSet::new());
    for (subject_type, subject) in rows {
        if subject_type == <&str>::from(SubjectType::Seminar) {
            seminars.insert(subject);
        } else {
            // A visit is `CASE#N`.
            let case = subject.split_once('#').map_or(&*subject, |(c, _)| c);
            cases.insert(case.to_string());
        }
    }
    Ok((cases, seminars))
}

/// `reconcile`, limited to the rows in `scope`, on a connection whose
/// transaction the caller owns (a dry run rolls it back).
pub async fn reconcile_in(
    tx: &mut Conn,
    planned: &[PlannedAction],
    now: DateTime<Utc>,
    reach: Reach,
    scope: ReconcileScope<'_>,
) -> anyhow::Result<ReconcileReport> {
    let mut reconciler = Reconciler::start(tx, now, reach, scope).await?;
    reconciler.apply(tx, planned).await?;
    reconciler.finish(tx).await
}

/// A reconcile taken in steps, for a plan that comes a batch at a time:
/// `start` reads the rows the plan may change, `apply` takes each batch of
/// planned actions, and `finish` cancels the open rows no batch called for.
pub struct Reconciler {
    existing: HashMap<String, Existing>,
    now: DateTime<Utc>,
    now_s: String,
    reach: Reach,
    report: ReconcileReport,
}

impl Reconciler {
    pub async fn start(
        tx: &mut Conn,
        now: DateTime<Utc>,
        reach: Reach,
        scope: ReconcileScope<'_>,
    ) -> anyhow::Result<Reconciler> {
        let mut rows = Vec::new();
        match scope {
            ReconcileScope::All => rows = sqlx::query(OPEN_ROWS).fetch_all(&mut *tx).await?,
            ReconcileScope::Subjects {
                cases,
                seminars,
                case_rules,
                seminar_rules,
            } => {
                // A case's rows and its visits' (`CASE#N`): a range on the
                // subject index, '$' being the character after '#'.
                let by_case = format!(
                    "{OPEN_ROWS} AND (subject = $1 OR (subject >= $1 || '#' AND subject < $1 || '$'))"
                );
                for case in cases {
                    let found = sqlx::query(&by_case).bind(case).fetch_all(&mut *tx).await?;
                    rows.extend(
                        found
                            .into_iter()
                            .filter(|r| case_rules.contains(r.get::<&str, _>("rule_id"))),
                    );
                }
                let by_seminar = format!("{OPEN_ROWS} AND subject = $1");
                for seminar in seminars {
                    let found = sqlx::query(&by_seminar)
                        .bind(seminar)
                        .fetch_all(&mut *tx)
                        .await?;
                    rows.extend(
                        found
                            .into_iter()
                            .filter(|r| seminar_rules.contains(r.get::<&str, _>("rule_id"))),
                    );
                }
            }
        }
        let mut existing = HashMap::with_capacity(rows.len());
        for row in rows {
            let status: String = row.get("status");
            existing.insert(
                row.get("key"),
                Existing {
                    id: row.get("id"),
                    status: status
                        .parse()
                        .map_err(|_| anyhow::anyhow!("outbox.status holds `{status}`"))?,
                    cancelled_by: match row.get::<Option<String>, _>("cancelled_by") {
                        None => None,
                        Some(by) => Some(
                            by.parse()
                                .map_err(|_| anyhow::anyhow!("outbox.cancelled_by holds `{by}`"))?,
                        ),
                    },
                    forced: row.get::<i64, _>("forced") != 0,
                    fields: (
                        row.get("due_on"),
                        row.get("send_at"),
                        row.get("send_until"),
                        row.get("recipients"),
                    ),
                    planned: false,
                },
            );
        }
        Ok(Reconciler {
            existing,
            now,
            now_s: ts(now),
            reach,
            report: ReconcileReport::default(),
        })
    }

    /// Brings the rows of these planned actions into line.
    pub async fn apply(&mut self, tx: &mut Conn, planned: &[PlannedAction]) -> anyhow::Result<()> {
        let (now, reach, report) = (self.now, self.reach, &mut self.report);
        let mut new = Vec::new();
        for a in planned {
            let fields = fields_of(a);
            match self.existing.get_mut(&a.key) {
                Some(e) if e.status.is_open() => {
                    e.planned = true;
                    if e.fields != fields && !e.forced {
                        update_fields(tx, e.id, &fields, &self.now_s).await?;
                        report.updated += 1;
                    }
                }
                Some(e) if e.cancelled_by == Some(CancelledBy::Plan) => {
                    update_fields(tx, e.id, &fields, &self.now_s).await?;
                    sqlx::query(
                        "UPDATE outbox SET status = $1, cancelled_by = NULL, last_error = NULL
                         WHERE id = $2",
                    )
                    .bind(Status::first(a).as_str())
                    .bind(e.id)
                    .execute(&mut *tx)
                    .await?;
                    report.revived += 1;
                }
                Some(_) => {}
                None if a.record_from > reach.until => {}
                None if a.send_until <= now
                    && reach.watermark.is_none_or(|w| a.record_from <= w) =>
                {
                    // Past its limit before keydates knew of it (old records
                    // imported): the plan shows it as missed; nothing to store.
                    report.missed_on_arrival += 1;
                }
                None => new.push((a, fields)),
            }
        }
        for batch in new.chunks(INSERT_BATCH) {
            for status in insert_batch(tx, batch, now, &self.now_s).await? {
                if status == Status::Missed {
                    report.missed_while_stopped += 1;
                } else {
                    report.added += 1;
                }
            }
        }
        Ok(())
    }

    /// Cancels the open rows that no batch called for.
    /// Leaves the open rows of these cases (and their visits) and seminars
    /// as they are, whatever the plan said of them.
    pub fn spare(&mut self, cases: &HashSet<String>, seminars: &HashSet<String>) {
        for (key, e) in self.existing.iter_mut() {
            // Keys are `RULE|SUBJECT|ANCHOR[|...]`, a visit's subject `CASE#N`.
            let Some(subject) = key.split('|').nth(1) else {
                continue;
            };
            let case = subject.split_once('#').map_or(subject, |(c, _)| c);
            if cases.contains(case) || seminars.contains(subject) {
                e.planned = true;
            }
        }
    }

    pub async fn finish(mut self, tx: &mut Conn) -> anyhow::Result<ReconcileReport> {
        for e in self.existing.values() {
            if e.status.is_open() && !e.planned {
                sqlx::query(
                    "UPDATE outbox SET status = 'cancelled', cancelled_by = 'plan',
                       last_error = 'no longer applies to the records', updated_at = $1
                     WHERE id = $2 AND status IN ('pending', 'awaiting_confirmation')",
                )
                .bind(&self.now_s)
                .bind(e.id)
                .execute(&mut *tx)
                .await?;
                self.report.cancelled += 1;
            }
        }
        Ok(self.report)
    }
}

/// Rows per INSERT: 16 values each, well inside SQLite's limit on bound values.
const INSERT_BATCH: usize = 500;

/// Inserts new rows in one statement; gives the status of each row that was
/// new (a key already there, say sent, is left alone).
async fn insert_batch(
    tx: &mut Conn,
    batch: &[(&PlannedAction, Fields)],
    now: DateTime<Utc>,
    now_s: &str,
) -> anyhow::Result<Vec<Status>> {
    const COLUMNS: usize = 16;
    let mut sql = String::from(
        "INSERT INTO outbox (key, rule_id, subject_type, subject, authority, delegate,
           anchor_on, due_on, send_at, send_until, recipients, status, last_error,
           reported_at, created_at, updated_at) VALUES ",
    );
    sql.push_str(&Backend::of_conn(tx).values_list(batch.len(), COLUMNS));
    sql.push_str(" ON CONFLICT (key) DO NOTHING RETURNING status");
    let mut insert = sqlx::query_scalar::<_, String>(&sql);
    for (a, fields) in batch {
        // Fell due and passed its limit while no pass ran: recorded as
        // missed, for the digest, and never sent. A held email has no limit
        // until it is confirmed: it waits as ever.
        let late = a.send_until <= now && !a.held;
        insert = insert
            .bind(&a.key)
            .bind(&a.rule_id)
            .bind(<&str>::from(a.subject.subject_type()))
            .bind(a.subject.to_string())
            .bind(&a.authority)
            .bind(a.delegate.as_ref().map(EmailAddress::as_str))
            .bind(a.anchor_on.to_string())
            .bind(&fields.0)
            .bind(&fields.1)
            .bind(&fields.2)
            .bind(&fields.3)
            .bind(if late {
                Status::Missed.as_str()
            } else {
                Status::first(a).as_str()
            })
            .bind(late.then_some("fell due and passed its limit while keydates was stopped"))
            .bind(None::<&str>)
            .bind(now_s)
            .bind(now_s);
    }
    let statuses: Vec<String> = insert.fetch_all(&mut *tx).await?;
    statuses
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|_| anyhow::anyhow!("outbox.status holds `{s}`"))
        })
        .collect()
}

async fn update_fields(
    tx: &mut Conn,
    id: i64,
    fields: &Fields,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET due_on = $1, send_at = $2, send_until = $3, recipients = $4, updated_at = $5
         WHERE id = $6",
    )
    .bind(&fields.0)
    .bind(&fields.1)
    .bind(&fields.2)
    .bind(&fields.3)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Puts interrupted sends back to pending: this process's own (a pass runs
/// only after the last one ended, so none of them is in flight: the last
/// pass stopped on an error, say the database going away), those whose
/// process on this host has died, and any whose lease has run out. They keep
/// their Message-ID.
pub async fn release_interrupted(
    pool: &Pool,
    now: DateTime<Utc>,
    lease: Duration,
) -> anyhow::Result<usize> {
    let stale_before = ts(now - lease);
    let mut released = 0;
    for row in sqlx::query("SELECT id, claimed_by, claimed_at FROM outbox WHERE status = 'sending'")
        .fetch_all(pool)
        .await?
    {
        let id: i64 = row.get("id");
        let by: Option<String> = row.get("claimed_by");
        let at: Option<String> = row.get("claimed_at");
        let mine = by.as_deref() == Some(state::worker_id().as_str());
        let dead = mine || by.as_deref().is_some_and(state::claim_is_dead);
        let expired = at.is_none_or(|at| at < stale_before);
        if dead || expired {
            let done = sqlx::query(
                "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
                   last_error = 'the previous send was interrupted'
                 WHERE id = $1 AND status = 'sending' AND claimed_by IS NOT DISTINCT FROM $2",
            )
            .bind(id)
            .bind(&by)
            .execute(pool)
            .await?;
            released += done.rows_affected() as usize;
        }
    }
    if released > 0 {
        tracing::warn!(released, "released interrupted sends for retry");
    }
    Ok(released)
}

/// Marks pending rows past their limit: missed if never tried, failed if retrying.
pub async fn expire(pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<u64> {
    let now_s = ts(now);
    let missed = sqlx::query(
        "UPDATE outbox SET status = 'missed', updated_at = $1,
           last_error = 'not sent before its limit ' || send_until
         WHERE status = 'pending' AND forced = 0 AND send_until <= $1 AND attempts = 0",
    )
    .bind(&now_s)
    .execute(pool)
    .await?
    .rows_affected();
    let failed = sqlx::query(
        "UPDATE outbox SET status = 'failed', updated_at = $1,
           last_error = 'still failing at its limit ' || send_until || ': ' || COALESCE(last_error, '')
         WHERE status = 'pending' AND forced = 0 AND send_until <= $1 AND attempts > 0",
    )
    .bind(&now_s)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(missed + failed)
}

/// When a pending row is due: its time has come, its limit has not passed
/// (unless an admin forced it), and it is not waiting out a retry back-off.
/// `?1` is now. The one statement of the rule: claims and dry runs share it.
const DUE: &str = "status = 'pending' AND send_at <= $1
    AND (send_until > $1 OR forced = 1)
    AND (next_attempt_at IS NULL OR next_attempt_at <= $1)";

/// Claims the next due row, if any (`claim_batch` of one).
pub async fn claim(
    pool: &Pool,
    now: DateTime<Utc>,
    worker: &str,
    message_id_domain: &str,
) -> anyhow::Result<Option<OutboxRow>> {
    Ok(claim_batch(pool, now, worker, message_id_domain, 1)
        .await?
        .into_iter()
        .next())
}

/// Claims up to `limit` due rows in one transaction, in send order, each
/// with its Message-ID stored (made here unless a previous attempt left one).
pub async fn claim_batch(
    pool: &Pool,
    now: DateTime<Utc>,
    worker: &str,
    message_id_domain: &str,
    limit: u32,
) -> anyhow::Result<Vec<OutboxRow>> {
    let now_s = ts(now);
    let backend = Backend::of(pool);
    let mut tx = crate::db::begin(pool).await?;
    // The same form as `domain::message_id`, made by the database once per
    // row. On SQLite, `+status` keeps the update on the ids the subquery
    // chose rather than on a status index, which would walk every pending
    // row; on PostgreSQL, rows another instance holds are skipped.
    let (random, skip_locked, status) = (
        backend.random_hex(),
        backend.skip_locked(),
        match backend {
            Backend::Sqlite => "+status",
            Backend::Postgres => "status",
        },
    );
    let mut rows: Vec<OutboxRow> = sqlx::query_as(&format!(
        "WITH picked AS (SELECT id FROM outbox WHERE {DUE} ORDER BY send_at, id LIMIT $4{skip_locked})
         UPDATE outbox SET status = 'sending', claimed_at = $1, claimed_by = $2,
           attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, $1),
           message_id = COALESCE(message_id,
             '<keydates.outbox.' || {random} || '@' || $3 || '>'),
           updated_at = $1
         WHERE id IN (SELECT id FROM picked) AND {status} = 'pending'
         RETURNING *"
    ))
    .bind(&now_s)
    .bind(worker)
    .bind(message_id_domain)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.sort_by_key(|r| (r.send_at, r.id));
    Ok(rows)
}

/// Gives back claimed rows whose sends were never started (the pass stopped,
/// or the relay failed first), as if they had not been claimed.
pub async fn unclaim(pool: &Pool, ids: &[i64]) -> anyhow::Result<()> {
    let mut tx = crate::db::begin(pool).await?;
    for id in ids {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL,
               attempts = attempts - 1,
               first_attempt_at = CASE WHEN attempts = 1 THEN NULL ELSE first_attempt_at END
             WHERE id = $1 AND status = 'sending'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The rows a pass would claim now, in claim order, without claiming them.
pub async fn due(conn: &mut Conn, now: DateTime<Utc>) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT * FROM outbox WHERE {DUE} ORDER BY send_at, id"
    ))
    .bind(ts(now))
    .fetch_all(conn)
    .await?)
}

/// What became of a claimed row's send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Sent {
        reply: String,
    },
    /// Goes back to pending, to be tried again from `next`.
    Retry {
        error: String,
        next: DateTime<Utc>,
    },
    Failed {
        error: String,
    },
}

/// A claimed row's outcome, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub settled: Settled,
    /// Everyone the email has reached so far, this try included.
    pub delivered_to: Vec<String>,
    /// Everyone refused for good so far.
    pub refused: Vec<Refusal>,
    /// The connection broke during this try.
    pub broken: bool,
    /// This try found the relay unusable: the email waits for it.
    pub relay_fault: bool,
    /// Not stored: the relay answered for this email (it can be used).
    pub relay_answered: bool,
}

/// Records outcomes, all in one transaction: a group commit pays for the
/// disk once for many sends. Each must land on the row claimed for it;
/// anything else means the claim was lost, and carrying on could send the
/// email again, so nothing of the group is recorded.
pub async fn settle(pool: &Pool, outcomes: &[Settlement]) -> anyhow::Result<()> {
    let mut tx = crate::db::begin(pool).await?;
    for s in outcomes {
        // ?1 the reply or error, ?2 the time, ?3 the row, ?4 the next attempt.
        let (sql, text, next) = match &s.settled {
            Settled::Sent { reply } => (
                "UPDATE outbox SET status = 'sent', server_reply = $1, sent_at = $2,
                   last_error = NULL, next_attempt_at = $4",
                reply,
                None,
            ),
            Settled::Retry { error, next } => (
                "UPDATE outbox SET status = 'pending', last_error = $1, next_attempt_at = $4,
                   claimed_at = NULL",
                error,
                Some(ts(*next)),
            ),
            Settled::Failed { error } => (
                "UPDATE outbox SET status = 'failed', last_error = $1, next_attempt_at = $4",
                error,
                None,
            ),
        };
        let done = sqlx::query(&format!(
            "{sql}, updated_at = $2, claimed_by = NULL, delivered_to = $5, refused = $6,
               broken_sends = broken_sends + $7, relay_fault = $8
             WHERE id = $3 AND status = 'sending'"
        ))
        .bind(text)
        .bind(ts(s.at))
        .bind(s.id)
        .bind(next)
        .bind(json_or_null(&s.delivered_to))
        .bind(json_or_null(&s.refused))
        .bind(i64::from(s.broken))
        .bind(i64::from(s.relay_fault))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            anyhow::bail!(
                "outbox row {} was no longer claimed when its send finished",
                s.id
            );
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The wait before attempt `attempts + 1`: doubling from `initial`, capped at
/// `max`, plus up to a quarter more at random so retries do not bunch up.
pub fn backoff(attempts: i64, initial: Duration, max: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    let base = initial
        .checked_mul(2i32.saturating_pow(doublings))
        .unwrap_or(max)
        .min(max);
    let jitter_ms = (base.num_milliseconds() / 4).max(0) as u64;
    base + Duration::milliseconds(fastrand::u64(0..=jitter_ms) as i64)
}

pub async fn list(pool: &Pool, status: Option<Status>) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(match status {
        Some(s) => {
            sqlx::query_as("SELECT * FROM outbox WHERE status = $1 ORDER BY send_at, id")
                .bind(s.as_str())
                .fetch_all(pool)
                .await?
        }
        None => {
            sqlx::query_as("SELECT * FROM outbox ORDER BY send_at, id")
                .fetch_all(pool)
                .await?
        }
    })
}

/// The rows about an authority.
pub async fn about_authority(pool: &Pool, code: &str) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(
        sqlx::query_as("SELECT * FROM outbox WHERE authority = $1 ORDER BY send_at, id")
            .bind(code)
            .fetch_all(pool)
            .await?,
    )
}

/// The rows whose recipients may include `email` (folded): a coarse match
/// on the stored list, for the caller to check address by address.
pub async fn maybe_to(pool: &Pool, email: &str) -> anyhow::Result<Vec<OutboxRow>> {
    let escaped: String = email
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Ok(sqlx::query_as(
        "SELECT * FROM outbox WHERE lower(recipients) LIKE $1 ESCAPE '\\' ORDER BY send_at, id",
    )
    .bind(format!("%{escaped}%"))
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &Pool, id: i64) -> anyhow::Result<Option<OutboxRow>> {
    Ok(sqlx::query_as("SELECT * FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Emails waiting for the relay go at the next pass (after a config reload).
pub async fn retry_relay_waits(pool: &Pool) -> anyhow::Result<u64> {
    Ok(sqlx::query(
        "UPDATE outbox SET next_attempt_at = NULL
         WHERE status = 'pending' AND relay_fault = 1",
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// One send of an email and what came of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub at: String,
    pub outcome: String,
    pub detail: Option<String>,
}

/// An email's sends, oldest first.
pub async fn attempts(pool: &Pool, id: i64) -> anyhow::Result<Vec<Attempt>> {
    Ok(
        sqlx::query_as("SELECT at, outcome, detail FROM attempts WHERE outbox_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(pool)
            .await?,
    )
}

/// The pending row that goes next, if any.
pub async fn next_pending(pool: &Pool) -> anyhow::Result<Option<OutboxRow>> {
    Ok(
        sqlx::query_as(
            "SELECT * FROM outbox WHERE status = 'pending' ORDER BY send_at, id LIMIT 1",
        )
        .fetch_optional(pool)
        .await?,
    )
}

/// Why an admin's retry or cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no outbox row {0}")]
    NotFound(i64),
    #[error("outbox row {id} is {status}: {why}")]
    Refused {
        id: i64,
        status: String,
        why: &'static str,
    },
    #[error("outbox row {id} waits for {} to confirm it: say which you confirm as (--as ROLE)", .missing.join(" and "))]
    NeedsRole { id: i64, missing: Vec<String> },
    #[error("outbox row {id} does not ask `{role}` to confirm it: it asks {}", .asked.join(" and "))]
    NotAsked {
        id: i64,
        role: String,
        asked: Vec<String>,
    },
    #[error("outbox row {id} is already confirmed as {role}; it waits for {}", .missing.join(" and "))]
    AlreadyConfirmed {
        id: i64,
        role: String,
        missing: Vec<String>,
    },
    #[error(transparent)]
    Storage(#[from] sqlx::Error),
    #[error(transparent)]
    Reading(#[from] anyhow::Error),
}

/// What one role's confirmation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// Every role asked has confirmed: it goes at the next pass.
    Released,
    /// Recorded; these roles have still to confirm.
    Waiting(Vec<String>),
}

/// One confirmation of a held email.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Confirmation {
    pub role: String,
    pub confirmed_by: String,
    pub confirmed_at: String,
}

/// Who has confirmed a held email so far, by role.
/// The roles a held email's rule asks to confirm it.
pub fn asked_of(rules: &[crate::config::rules::Rule], rule_id: &str) -> Vec<String> {
    rules
        .iter()
        .find(|r| r.id == rule_id)
        .map(|r| r.confirmed_by())
        .unwrap_or_default()
}

pub async fn confirmations(pool: &Pool, id: i64) -> anyhow::Result<Vec<Confirmation>> {
    Ok(sqlx::query_as(
        "SELECT role, confirmed_by, confirmed_at FROM confirmations WHERE outbox_id = $1
         ORDER BY confirmed_at, role",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// Puts a failed, missed or cancelled row back to pending, with no time
/// limit; or a sent one that some recipients refused, for those recipients
/// (as the records now give them). Whoever it reached is not sent it again.
pub async fn retry(pool: &Pool, id: i64, now: DateTime<Utc>) -> Result<(), AdminError> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', forced = 1, attempts = 0, next_attempt_at = NULL,
           first_attempt_at = NULL, cancelled_by = NULL, reported_at = NULL, updated_at = $1,
           refused = NULL, broken_sends = 0, relay_fault = 0
         WHERE id = $2 AND (status IN ('failed', 'missed', 'cancelled')
           OR (status = 'sent' AND refused IS NOT NULL))",
    )
    .bind(ts(now))
    .bind(id)
    .execute(pool)
    .await?;
    changed_or_refused(
        pool,
        id,
        done,
        "only failed, missed or cancelled rows, or sent ones some recipients refused, can be retried",
    )
    .await
}

/// Records that `role` confirms a held email should go (000 §28: it goes
/// only once every role its rule asks has). The last confirmation lets it go; one
/// whose day has passed may still go (it waited for the confirmation).
pub async fn confirm(
    pool: &Pool,
    id: i64,
    role: Option<&str>,
    rules: &[crate::config::rules::Rule],
    by: &str,
    now: DateTime<Utc>,
) -> Result<Confirmed, AdminError> {
    let Some(row) = get(pool, id).await? else {
        return Err(AdminError::NotFound(id));
    };
    let asked = asked_of(rules, &row.rule);
    if row.status != Status::AwaitingConfirmation {
        return refused(
            pool,
            id,
            "only an email awaiting confirmation can be confirmed",
        )
        .await
        .map(|()| Confirmed::Released);
    }
    let done: Vec<String> = confirmations(pool, id)
        .await?
        .into_iter()
        .map(|c| c.role)
        .collect();
    let missing: Vec<String> = asked
        .iter()
        .filter(|r| !done.contains(r))
        .cloned()
        .collect();
    let Some(role) = role else {
        return Err(AdminError::NeedsRole { id, missing });
    };
    if !asked.iter().any(|r| r == role) {
        return Err(AdminError::NotAsked {
            id,
            role: role.to_string(),
            asked: asked.to_vec(),
        });
    }
    if done.iter().any(|r| r == role) {
        return Err(AdminError::AlreadyConfirmed {
            id,
            role: role.to_string(),
            missing,
        });
    }
    let now_s = ts(now);
    sqlx::query(
        "INSERT INTO confirmations (outbox_id, role, confirmed_by, confirmed_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (outbox_id, role) DO NOTHING",
    )
    .bind(id)
    .bind(role)
    .bind(by)
    .bind(&now_s)
    .execute(pool)
    .await?;
    let missing: Vec<String> = missing.into_iter().filter(|r| r != role).collect();
    if !missing.is_empty() {
        return Ok(Confirmed::Waiting(missing));
    }
    let everyone: Vec<String> = confirmations(pool, id)
        .await?
        .iter()
        .map(|c| format!("{} ({})", c.confirmed_by, c.role))
        .collect();
    let released = sqlx::query(
        "UPDATE outbox SET status = 'pending', confirmed_by = $1,
           forced = CASE WHEN send_until <= $2 THEN 1 ELSE forced END, updated_at = $2
         WHERE id = $3 AND status = 'awaiting_confirmation'",
    )
    .bind(everyone.join(", "))
    .bind(&now_s)
    .bind(id)
    .execute(pool)
    .await?;
    changed_or_refused(
        pool,
        id,
        released,
        "only an email awaiting confirmation can be confirmed",
    )
    .await
    .map(|()| Confirmed::Released)
}

/// Held emails whose day has come and gone without a confirmation.
pub async fn awaiting_past_due(pool: &Pool, today: NaiveDate) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(sqlx::query_as(
        "SELECT * FROM outbox WHERE status = 'awaiting_confirmation' AND due_on <= $1
         ORDER BY due_on, id",
    )
    .bind(today.to_string())
    .fetch_all(pool)
    .await?)
}

/// Cancels a row that has not gone; the planner will not bring it back.
pub async fn cancel(pool: &Pool, id: i64, now: DateTime<Utc>) -> Result<(), AdminError> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'cancelled', cancelled_by = 'admin', updated_at = $1
         WHERE id = $2 AND status IN ('pending', 'awaiting_confirmation', 'failed', 'missed', 'cancelled')",
    )
    .bind(ts(now))
    .bind(id)
    .execute(pool)
    .await?;
    changed_or_refused(pool, id, done, "it has been sent or is being sent now").await
}

/// An admin's change took when it touched its row; otherwise say why not.
async fn changed_or_refused(
    pool: &Pool,
    id: i64,
    done: sqlx::any::AnyQueryResult,
    why: &'static str,
) -> Result<(), AdminError> {
    if done.rows_affected() == 1 {
        // Another instance may be the one to send it.
        crate::db::announce(pool).await?;
        Ok(())
    } else {
        refused(pool, id, why).await
    }
}

async fn refused(pool: &Pool, id: i64, why: &'static str) -> Result<(), AdminError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match status {
        None => Err(AdminError::NotFound(id)),
        Some(status) => Err(AdminError::Refused { id, status, why }),
    }
}

/// Rows counted by status, every status present.
pub async fn counts(pool: &Pool) -> anyhow::Result<Vec<(Status, i64)>> {
    let mut found: HashMap<String, i64> = HashMap::new();
    for row in sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        .fetch_all(pool)
        .await?
    {
        found.insert(row.get("status"), row.get("n"));
    }
    Ok(<Status as strum::IntoEnumIterator>::iter()
        .map(|s| (s, found.get(s.as_str()).copied().unwrap_or(0)))
        .collect())
}

/// Failed and missed rows, and sent ones some recipients refused, not yet
/// in a digest.
pub async fn unreported(pool: &Pool) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(sqlx::query_as(
        "SELECT * FROM outbox WHERE (status IN ('failed', 'missed')
           OR (status = 'sent' AND refused IS NOT NULL)) AND reported_at IS NULL
         ORDER BY send_at, id",
    )
    .fetch_all(pool)
    .await?)
}

/// Pending emails that have been failing to go since before `since`
/// (retrying, or waiting for the relay): overdue, and someone should know.
pub async fn retrying_since(pool: &Pool, since: DateTime<Utc>) -> anyhow::Result<Vec<OutboxRow>> {
    Ok(sqlx::query_as(
        "SELECT * FROM outbox WHERE status = 'pending' AND attempts > 0
           AND first_attempt_at <= $1 ORDER BY send_at, id",
    )
    .bind(ts(since))
    .fetch_all(pool)
    .await?)
}

pub async fn mark_reported(pool: &Pool, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut tx = crate::db::begin(pool).await?;
    for id in ids {
        sqlx::query("UPDATE outbox SET reported_at = $1 WHERE id = $2")
            .bind(ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let initial = Duration::seconds(60);
        let max = Duration::seconds(3600);
        for attempts in 1..12 {
            let b = backoff(attempts, initial, max);
            let base = (60 * 2i64.pow((attempts - 1) as u32)).min(3600);
            assert!(b >= Duration::seconds(base), "{attempts}: {b}");
            assert!(b <= Duration::seconds(base + base / 4), "{attempts}: {b}");
        }
    }

    #[test]
    fn timestamps_sort_as_text() {
        let a = parse_ts("2027-01-15T09:00:00Z").unwrap();
        let b = a + Duration::seconds(1);
        assert!(ts(a) < ts(b));
        assert_eq!(parse_ts(&ts(a)), Some(a));
    }
}
