//! One pass: plan what changed, reconcile, then deliver due rows.
//!
//! `try_deliver_one` is the step function: claim a due row, compose it, send
//! it, record the outcome. Tests drive it directly; a pass loops over it.

pub mod alert;
pub mod annex;
pub mod compose;
pub mod health;
pub mod metrics;
pub mod progress;
pub mod relay_fault;
pub mod transport;

use std::sync::Arc;

use crate::db::Pool;
use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::calendar::Calendar;
use crate::config::Settings;
use crate::config::rules::RuleOn;
use crate::db::state::{self, keys};
use crate::domain::Subject;
use crate::outbox::{self, OutboxRow, ReconcileReport, Status};
use crate::plan;
use crate::records::{self, Records};
use compose::digest::{self, DigestItem};
use compose::render::Renderer;
use compose::{ComposeError, Composer, Draft};
use transport::{Delivery, Mailer, SendError};

/// What a pass works with; rebuilt whole when the config is reloaded.
pub struct Engine {
    pub settings: Arc<Settings>,
    /// Changes whenever a setting the plan depends on does.
    pub plan_fingerprint: String,
    pub calendar: Calendar,
    pub renderer: Renderer,
    pub mailer: Mailer,
}

impl Engine {
    pub fn new(settings: Settings) -> anyhow::Result<Engine> {
        let renderer = Renderer::load(&settings.templates_dir(), &settings.rules)
            .map_err(|e| anyhow::anyhow!("template {e}"))?;
        let mailer = Mailer::from_settings(&settings)?;
        Ok(Engine {
            plan_fingerprint: plan_fingerprint(&settings),
            calendar: settings.calendar(),
            settings: Arc::new(settings),
            renderer,
            mailer,
        })
    }

    pub fn composer(&self) -> Composer<'_> {
        Composer {
            settings: &self.settings,
            calendar: &self.calendar,
            renderer: &self.renderer,
        }
    }
}

/// A digest of everything planning reads from the settings.
fn plan_fingerprint(s: &Settings) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!(
        "{:?}|{:?}|{}|{}|{:?}|{:?}",
        s.rules, s.calendar, s.schedule.send_hour, s.schedule.time_zone, s.contacts, s.regions
    )
    .hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The time a pass runs at: the real clock, or a fixed instant for trials and tests.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => t,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing is due.
    Idle,
    Sent {
        id: i64,
    },
    Retrying {
        id: i64,
        error: String,
    },
    Failed {
        id: i64,
        error: String,
    },
    /// The relay could not be used; the email waits for it.
    RelayFault {
        id: i64,
        error: String,
    },
}

/// Builds the email for a claimed row from the current records and rules.
pub fn compose_row(
    engine: &Engine,
    records: &Records,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> Result<compose::Composed, ComposeError> {
    let rule = engine
        .settings
        .rules
        .iter()
        .find(|r| r.id == row.rule)
        .ok_or_else(|| ComposeError(format!("rule `{}` is no longer in the config", row.rule)))?;
    let involved = plan::find_involved(
        records,
        rule,
        &row.subject,
        row.authority.as_deref(),
        row.delegate.as_ref(),
    )
    .ok_or_else(|| ComposeError(format!("the records for {} are gone", row.subject)))?;
    let sent_on = now.with_timezone(&engine.settings.time_zone()).date_naive();
    let dates = involved.key_dates(
        &engine.calendar,
        &engine.settings.child_level_data.late_return,
        rule,
        row.anchor_on,
        row.due_on,
        sent_on,
    );
    // Too late for its readers to meet the date it states: the people who
    // decide are told instead, in the same row.
    let instead = dates
        .too_late_for(rule, sent_on)
        .then(|| rule.too_late_rule())
        .flatten();
    let rule = instead.as_ref().unwrap_or(rule);
    // From the records as they are now: an address corrected since the row
    // was planned (or since a recipient refused it) is the one it goes to.
    let recipients = involved.recipients(rule, &engine.settings);
    if recipients.to.is_empty() {
        return Err(ComposeError(format!(
            "the records for {} name no one to send `{}` to",
            row.subject, row.rule
        )));
    }
    let message_id = row.message_id.clone().unwrap_or_else(|| {
        crate::domain::message_id("preview", &engine.settings.mail.message_id_domain)
    });
    engine.composer().compose(&Draft {
        rule,
        involved: &involved,
        anchor_on: row.anchor_on,
        due_on: row.due_on,
        dates,
        recipients: &recipients,
        message_id: &message_id,
        now,
    })
}

/// Only the records one row's email is about (its case with its visits, or
/// its seminar with its delegates): cheap however many records there are.
pub async fn records_for(pool: &Pool, row: &OutboxRow) -> anyhow::Result<Records> {
    match &row.subject {
        Subject::Case(case_ref) | Subject::Visit { case_ref, .. } => {
            records::store::load_subjects(pool, &[case_ref.to_string()], &[]).await
        }
        Subject::Seminar(seminar_ref) => {
            records::store::load_subjects(pool, &[], &[seminar_ref.to_string()]).await
        }
    }
}

/// Claims and sends at most one due row, and records what became of it:
/// the sending loop itself (`deliver_due`), given a budget of one email.
#[tracing::instrument(skip_all)]
pub async fn try_deliver_one(
    engine: &Arc<Engine>,
    pool: &Pool,
    worker: &str,
    clock: Clock,
) -> anyhow::Result<Outcome> {
    let (recorder, writer) = Recorder::start(pool.clone());
    let done = deliver_due(
        engine.clone(),
        pool.clone(),
        worker.to_string(),
        clock,
        CancellationToken::new(),
        recorder,
        Some(1),
    )
    .await;
    writer.await.context("the outcome writer stopped")??;
    Ok(done?.1.unwrap_or(Outcome::Idle))
}

/// Composes and sends one claimed row; says what became of it, to record.
async fn send_claimed(
    engine: &Engine,
    pool: &Pool,
    row: OutboxRow,
    clock: Clock,
) -> anyhow::Result<(Outcome, outbox::Settlement)> {
    let span = tracing::info_span!("send", instance = %state::worker_id(), id = row.id, rule = %row.rule, subject = %row.subject,
        message_id = row.message_id.as_deref().unwrap_or(""));
    async {
        let records = records_for(pool, &row)
            .await
            .context("while reading the records for an email")?;
        let not_sent = |error: SendError| Delivery {
            delivered: Vec::new(),
            refused: Vec::new(),
            reply: String::new(),
            error: Some(error),
        };
        let (delivery, relay_answered) = if let Some(d) = records.damaged.first() {
            // Not composed on a guess: it waits for the record to be put right.
            let error = format!(
                "its record does not read back: {} {}: {}",
                d.table, d.key, d.problem
            );
            tracing::error!(%error, "not sent");
            (not_sent(SendError::Transient(error)), false)
        } else {
            match compose_row(engine, &records, &row, clock.now()) {
                Ok(composed) => {
                    // Those it reached or who refused it are not sent it again;
                    // an admin's retry clears the refusals.
                    let skip: Vec<String> = row
                        .delivered_to
                        .iter()
                        .cloned()
                        .chain(row.refused.iter().map(|r| r.address.clone()))
                        .collect();
                    (engine.mailer.send(&composed.message, &skip).await, true)
                }
                Err(reason) => (not_sent(SendError::Permanent(reason.to_string())), false),
            }
        };
        Ok(settle_send(
            engine,
            &row,
            delivery,
            relay_answered,
            clock.now(),
        ))
    }
    .instrument(span)
    .await
}

/// Sends during which the connection broke, after which an email is failed
/// rather than tried again: one that breaks the relay's connection every
/// time must not be retried first at every pass.
pub const MAX_BROKEN_SENDS: i64 = 3;

/// What a send's result means for its row: sent, retried after a back-off,
/// waiting for the relay, or failed once its retries have run out.
fn settle_send(
    engine: &Engine,
    row: &OutboxRow,
    delivery: Delivery,
    answered: bool,
    now: DateTime<Utc>,
) -> (Outcome, outbox::Settlement) {
    use outbox::Settled;
    let s = &engine.settings.schedule;
    let next = now
        + outbox::backoff(
            row.attempts,
            Duration::seconds(s.backoff_initial_secs as i64),
            Duration::seconds(s.backoff_max_secs as i64),
        );
    let id = row.id;
    let mut delivered_to = row.delivered_to.clone();
    delivered_to.extend(delivery.delivered.iter().cloned());
    let mut refused: Vec<outbox::Refusal> = row
        .refused
        .iter()
        .filter(|old| {
            !delivery
                .refused
                .iter()
                .any(|new| new.address == old.address)
        })
        .cloned()
        .collect();
    refused.extend(delivery.refused.iter().cloned());
    for r in &delivery.refused {
        tracing::warn!(recipient = %r.address, reply = %r.reply, "a recipient was refused; the others get the email");
    }
    let fail = |error: String| {
        tracing::error!(%error, "failed");
        (
            Outcome::Failed {
                id,
                error: error.clone(),
            },
            Settled::Failed { error },
            "failed",
        )
    };
    let retry_or_fail = |error: String| {
        let first = row.first_attempt_at.unwrap_or(now);
        let lifetime = Duration::hours(s.retry_lifetime_hours as i64);
        if next - first > lifetime {
            fail(format!("gave up after {} attempts: {error}", row.attempts))
        } else {
            tracing::warn!(%error, next_attempt = %outbox::ts(next), "will retry");
            (
                Outcome::Retrying {
                    id,
                    error: error.clone(),
                },
                Settled::Retry { error, next },
                "retrying",
            )
        }
    };
    let mut broken = false;
    let mut relay_fault = false;
    let (outcome, settled, metric) = match delivery.error {
        None => {
            tracing::info!(reply = %delivery.reply, attempts = row.attempts, "sent");
            let reply = if delivery.reply.is_empty() {
                row.server_reply.clone().unwrap_or_default()
            } else {
                delivery.reply
            };
            (Outcome::Sent { id }, Settled::Sent { reply }, "sent")
        }
        Some(SendError::RelayFault(reason)) => {
            let error = SendError::RelayFault(reason).to_string();
            tracing::warn!(%error, "the relay could not be used; the email waits");
            relay_fault = true;
            let settled = Settled::Retry {
                error: error.clone(),
                next,
            };
            (Outcome::RelayFault { id, error }, settled, "relay_fault")
        }
        Some(SendError::Permanent(error)) => {
            tracing::error!(%error, "failed; not retried");
            let settled = Settled::Failed {
                error: error.clone(),
            };
            (Outcome::Failed { id, error }, settled, "failed")
        }
        Some(SendError::Broken(error)) => {
            broken = true;
            if row.broken_sends + 1 >= MAX_BROKEN_SENDS {
                fail(format!(
                    "the connection to the mail server broke on each of {MAX_BROKEN_SENDS} tries to send this email; not tried again: {error}"
                ))
            } else {
                retry_or_fail(error)
            }
        }
        Some(SendError::Transient(error)) => retry_or_fail(error),
    };
    metrics::send(&row.rule, metric);
    (
        outcome,
        outbox::Settlement {
            id,
            at: now,
            settled,
            delivered_to,
            refused,
            broken,
            relay_fault,
            relay_answered: answered && !relay_fault,
        },
    )
}

/// Records a group of outcomes in one commit, then what they say of the relay.
async fn record(pool: &Pool, group: &[(Outcome, outbox::Settlement)]) -> anyhow::Result<()> {
    let settlements: Vec<_> = group.iter().map(|(_, s)| s.clone()).collect();
    outbox::settle(pool, &settlements)
        .await
        .context("while recording what became of the sends")?;
    // The latest word on the relay wins: any answer about one email means
    // the relay can be used.
    let relay = group.iter().rev().find_map(|(o, s)| match o {
        Outcome::RelayFault { error, .. } => Some((Some(error), s.at)),
        _ if s.relay_answered => Some((None, s.at)),
        _ => None,
    });
    match relay {
        Some((None, at)) => relay_fault::works(pool, at).await?,
        Some((Some(error), at)) => relay_fault::fails(pool, error, at).await?,
        None => {}
    }
    Ok(())
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub reconcile: ReconcileReport,
    pub released: usize,
    pub expired: u64,
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    /// Sends that found the relay unusable (each worker stops at its first).
    pub relay_faults: usize,
    pub digest: bool,
}

/// How many cases a plan of every record reads at a time.
pub const CASE_BATCH: u32 = 20_000;

/// The actions the outbox may hold, planned from every record a batch of
/// cases at a time and handed to `take` batch by batch: memory follows the
/// horizon and the batch, not the number of cases.
#[tracing::instrument(skip_all)]
pub async fn plan_every_record(
    engine: &Engine,
    pool: &Pool,
    horizon: &plan::Horizon,
    mut take: impl AsyncFnMut(Vec<plan::PlannedAction>) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<records::Damaged>> {
    let plan_batch = |records: &Records, kinds| {
        plan::plan_within(
            records,
            &engine.settings,
            &engine.calendar,
            kinds,
            Some(horizon),
        )
    };
    let mut records = records::store::load_without_cases(pool)
        .await
        .context("while reading the records")?;
    take(plan_batch(&records, RuleOn::OF_SEMINARS)).await?;
    let mut after = String::new();
    let mut damaged = std::mem::take(&mut records.damaged);
    loop {
        let batch = records::store::load_cases_after(pool, &after, CASE_BATCH)
            .await
            .context("while reading the cases")?;
        let Some(last) = batch.last else {
            return Ok(damaged);
        };
        damaged.extend(batch.damaged);
        (records.cases, records.visits) = (batch.cases, batch.visits);
        take(plan_batch(&records, RuleOn::OF_CASES)).await?;
        progress::made();
        after = last;
    }
}

/// Plans from all the current records and brings the whole outbox into line,
/// in one transaction.
pub async fn plan_and_reconcile(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
    reach: outbox::Reach,
) -> anyhow::Result<ReconcileReport> {
    let (cases, seminars) = outbox::followed_subjects(pool).await?;
    let horizon = plan::Horizon {
        until: reach.until,
        today: now.with_timezone(&engine.settings.time_zone()).date_naive(),
        watermark: reach.watermark,
        cases,
        seminars,
    };
    let mut tx = crate::db::begin(pool).await?;
    let mut reconciler =
        outbox::Reconciler::start(&mut tx, now, reach, outbox::ReconcileScope::All).await?;
    let damaged = plan_every_record(engine, pool, &horizon, async |batch| {
        reconciler.apply(&mut tx, &batch).await
    })
    .await
    .context("while reconciling the outbox")?;
    let (spared_cases, spared_seminars) = spared(pool, &damaged).await?;
    reconciler.spare(&spared_cases, &spared_seminars);
    let report = reconciler.finish(&mut tx).await?;
    tx.commit().await?;
    records::store::note_damaged(pool, records::store::Read::Everything, &damaged).await?;
    Ok(report)
}

/// The cases and seminars whose rows a plan leaves as they are, because a
/// record they depend on does not read back: planning them without it would
/// cancel or change their emails on a guess.
async fn spared(
    pool: &Pool,
    damaged: &[records::Damaged],
) -> anyhow::Result<(
    std::collections::HashSet<String>,
    std::collections::HashSet<String>,
)> {
    let (mut cases, mut seminars) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for d in damaged {
        match d.table.as_str() {
            "cases" | "visits" => {
                cases.insert(d.key.clone());
            }
            "seminars" | "delegates" | "conversations" | "invited_authorities" => {
                seminars.insert(d.key.clone());
            }
            _ => {
                let (of_authority, its_seminars) =
                    records::store::subjects_of_authority(pool, &d.key).await?;
                cases.extend(of_authority);
                seminars.extend(its_seminars);
            }
        }
    }
    Ok((cases, seminars))
}

/// More changed records than this and a pass plans everything again, which
/// is then cheaper than planning them one by one.
const INCREMENTAL_LIMIT: usize = 2_000;

/// The last day the outbox should hold emails for, as of `now`.
pub fn horizon_end(settings: &Settings, now: DateTime<Utc>) -> NaiveDate {
    let today = now.with_timezone(&settings.time_zone()).date_naive();
    today + chrono::Days::new(u64::from(settings.schedule.horizon_days))
}

/// How far the outbox reaches now, and how far the last plan of every record did.
async fn reach(engine: &Engine, pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<outbox::Reach> {
    let watermark = state::get(pool, keys::PLANNED_UNTIL)
        .await?
        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    let until = horizon_end(&engine.settings, now);
    Ok(outbox::Reach {
        // Never shorter than before: a clock set back keeps what is held.
        until: watermark.map_or(until, |w| w.max(until)),
        watermark,
    })
}

/// Plans what changed since the last plan and reconciles it: nothing when
/// nothing changed, just the changed cases and seminars when few did, and
/// everything when the planning settings changed, many records did, or the
/// horizon moved on to a new day. `None` when nothing needed planning.
///
/// Instances sharing a database plan one at a time; the next one in finds
/// the work done.
pub async fn plan_if_changed(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<ReconcileReport>> {
    crate::db::exclusively(pool, crate::db::Job::Planning, async || {
        plan_changes(engine, pool, now).await
    })
    .await
}

async fn plan_changes(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<ReconcileReport>> {
    let today = now.with_timezone(&engine.settings.time_zone()).date_naive();
    records::store::stamp_confirmed_seminars(pool, today).await?;
    // Read first: a change made while planning is after it and is planned
    // by the next pass.
    let changes = records::store::pending_changes(pool).await?;
    let count: i64 = changes.iter().map(|(first, last)| last - first + 1).sum();
    let upto = changes.last().map_or(0, |(_, last)| *last);
    let stamp = state::get(pool, keys::PLANNED_THROUGH).await?;
    let same_rules = stamp
        .as_deref()
        .and_then(|s| s.split_once(':'))
        .is_some_and(|(_, fingerprint)| fingerprint == engine.plan_fingerprint);
    let reach = reach(engine, pool, now).await?;
    let moved_on = reach.watermark != Some(reach.until);
    let report = if same_rules && !moved_on {
        if changes.is_empty() {
            return Ok(None);
        }
        let (cases, seminars) = if count as usize > INCREMENTAL_LIMIT {
            (Vec::new(), Vec::new())
        } else {
            records::store::changed_subjects(pool, &changes).await?
        };
        if count as usize > INCREMENTAL_LIMIT || cases.len() + seminars.len() > INCREMENTAL_LIMIT {
            plan_and_reconcile(engine, pool, now, reach).await?
        } else {
            plan_subjects(engine, pool, now, reach, &cases, &seminars).await?
        }
    } else {
        plan_and_reconcile(engine, pool, now, reach).await?
    };
    state::set(pool, keys::PLANNED_UNTIL, &reach.until.to_string()).await?;
    state::set(
        pool,
        keys::PLANNED_THROUGH,
        &format!("{upto}:{}", engine.plan_fingerprint),
    )
    .await?;
    records::store::forget_changes(pool, &changes).await?;
    Ok(Some(report))
}

/// Plans and reconciles just these cases and seminars.
async fn plan_subjects(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
    reach: outbox::Reach,
    cases: &[String],
    seminars: &[String],
) -> anyhow::Result<ReconcileReport> {
    let records = records::store::load_subjects(pool, cases, seminars)
        .await
        .context("while reading the changed records")?;
    records::store::note_damaged(
        pool,
        records::store::Read::Subjects { cases, seminars },
        &records.damaged,
    )
    .await?;
    let (spared_cases, spared_seminars) = spared(pool, &records.damaged).await?;
    let cases: Vec<String> = cases
        .iter()
        .filter(|c| !spared_cases.contains(*c))
        .cloned()
        .collect();
    let seminars: Vec<String> = seminars
        .iter()
        .filter(|s| !spared_seminars.contains(*s))
        .cloned()
        .collect();
    let (cases, seminars) = (&cases[..], &seminars[..]);
    // All their actions: their open rows follow them however far ahead.
    let planned = plan::plan(&records, &engine.settings, &engine.calendar);
    let ids = |kinds: &[RuleOn]| -> std::collections::HashSet<String> {
        engine
            .settings
            .rules
            .iter()
            .filter(|r| kinds.contains(&r.on))
            .map(|r| r.id.clone())
            .collect()
    };
    let case_rules = ids(RuleOn::OF_CASES);
    let seminar_rules = ids(RuleOn::OF_SEMINARS);
    outbox::reconcile_scoped(
        pool,
        &planned,
        now,
        reach,
        outbox::ReconcileScope::Subjects {
            cases,
            seminars,
            case_rules: &case_rules,
            seminar_rules: &seminar_rules,
        },
    )
    .await
    .context("while reconciling the changed records")
}

/// One plan-reconcile-deliver pass. Stops between sends once `stop` is
/// cancelled: the sends in hand finish and are recorded first.
/// With SMTP, `mail.smtp.pool_size` workers send side by side, each claiming
/// its own rows, so one slow exchange does not hold up the rest.
#[tracing::instrument(skip_all)]
pub async fn run_pass(
    engine: &Arc<Engine>,
    pool: &Pool,
    clock: Clock,
    stop: &CancellationToken,
) -> anyhow::Result<PassReport> {
    progress::made();
    let worker = state::worker_id();
    let now = clock.now();
    let lease = Duration::seconds(engine.settings.schedule.claim_lease_secs as i64);
    let mut report = PassReport {
        reconcile: plan_if_changed(engine, pool, now)
            .await?
            .unwrap_or_default(),
        released: outbox::release_interrupted(pool, now, lease).await?,
        expired: outbox::expire(pool, now).await?,
        ..PassReport::default()
    };
    let workers = match engine.settings.mail.transport {
        crate::config::TransportKind::Smtp => engine.settings.mail.smtp.pool_size.max(1),
        crate::config::TransportKind::File => 1,
    };
    let (recorder, writer) = Recorder::start(pool.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(deliver_due(
            engine.clone(),
            pool.clone(),
            worker.clone(),
            clock,
            stop.clone(),
            recorder.clone(),
            None,
        ));
    }
    drop(recorder);
    let mut failure = None;
    // Every worker is waited for, whatever became of the others: a worker
    // that panicked must not abort the rest mid-send.
    while let Some(done) = tasks.join_next().await {
        let done = done
            .map_err(|e| anyhow::Error::new(e).context("a sending task stopped"))
            .and_then(|r| r);
        match done {
            Ok((tally, _)) => {
                report.sent += tally.sent;
                report.retrying += tally.retrying;
                report.failed += tally.failed;
                report.relay_faults += tally.relay_faults;
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    // The writer's own error, when it has one, is the cause of the workers'.
    writer.await.context("the outcome writer stopped")??;
    if let Some(e) = failure {
        return Err(e);
    }
    if !stop.is_cancelled() {
        report.digest = send_digest_if_due(engine, pool, clock.now()).await?;
    }
    state::set(pool, keys::LAST_PASS_AT, &outbox::ts(clock.now())).await?;
    if let Some(fault) = relay_fault::current(pool).await? {
        // Every pass while it lasts: the digest goes through the same relay,
        // so the journal (and `mail.alert_to`) may be all anyone sees.
        tracing::error!(
            since = %fault.since,
            error = %fault.error,
            "the mail relay cannot be used: emails wait until it can (check [mail.smtp] and the relay, then reload)"
        );
    }
    if let Err(e) = alert_on_relay(engine, pool).await {
        tracing::error!(
            error = format!("{e:#}"),
            "the relay alert could not be sent by mail.alert_to; will try again"
        );
    }
    metrics::pass_done(clock.now());
    if let Err(e) = metrics::outbox_gauges(pool, clock.now()).await {
        tracing::warn!(error = format!("{e:#}"), "outbox figures not measured");
    }
    Ok(report)
}

/// Rows a worker claims at a time once its connection has carried an email;
/// until then it claims one, so a relay that is down costs one try per
/// worker, as ever. Claimed rows a worker does not get to (the pass stops,
/// or the relay fails) are given back at once.
const CLAIM_BATCH: u32 = 8;

/// One sending worker: claims due rows a few at a time, sends them one by
/// one on its own connection, and hands each outcome to the recorder. It
/// sends the next email while the last outcome is being committed, but not
/// the one after: at any moment at most two of its sends are not yet on disk,
/// which bounds what a crash can send twice. `budget` caps the emails it
/// sends (none: until nothing is due); it returns its tally and the last
/// email's outcome.
async fn deliver_due(
    engine: Arc<Engine>,
    pool: Pool,
    worker: String,
    clock: Clock,
    stop: CancellationToken,
    recorder: Recorder,
    budget: Option<u32>,
) -> anyhow::Result<(PassReport, Option<Outcome>)> {
    let mut tally = PassReport::default();
    let mut last = None;
    let mut sends = 0u32;
    let domain = &engine.settings.mail.message_id_domain;
    let mut committing: Option<tokio::sync::oneshot::Receiver<()>> = None;
    'claiming: while !stop.is_cancelled() && budget.is_none_or(|b| sends < b) {
        let mut batch = if tally.sent > 0 { CLAIM_BATCH } else { 1 };
        if let Some(b) = budget {
            batch = batch.min(b - sends);
        }
        let rows = outbox::claim_batch(&pool, clock.now(), &worker, domain, batch)
            .await
            .context("while claiming due emails")?;
        progress::made();
        if rows.is_empty() {
            break;
        }
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let recorded = match committing.take() {
                Some(ack) => ack.await.is_ok(),
                None => true,
            };
            if !recorded || stop.is_cancelled() {
                break;
            }
            let row = rows.next().expect("peeked");
            let (outcome, settlement) = send_claimed(&engine, &pool, row, clock).await?;
            progress::made();
            sends += 1;
            match outcome {
                Outcome::Sent { .. } => tally.sent += 1,
                Outcome::Retrying { .. } => tally.retrying += 1,
                Outcome::Failed { .. } => tally.failed += 1,
                Outcome::RelayFault { .. } => tally.relay_faults += 1,
                Outcome::Idle => {}
            }
            let relay_fault = matches!(outcome, Outcome::RelayFault { .. });
            last = Some(outcome.clone());
            committing = recorder.record(outcome, settlement);
            // The next email would meet the same relay: leave them all waiting.
            if committing.is_none() || relay_fault {
                break;
            }
        }
        let rest: Vec<i64> = rows.map(|r| r.id).collect();
        if !rest.is_empty() {
            outbox::unclaim(&pool, &rest).await?;
            break 'claiming;
        }
        if committing.is_none() || tally.relay_faults > 0 {
            break;
        }
    }
    if let Some(ack) = committing {
        let _ = ack.await;
    }
    Ok((tally, last))
}

/// A send's outcome on its way to the writer, with word back once it is on disk.
type ToRecord = (
    Outcome,
    outbox::Settlement,
    tokio::sync::oneshot::Sender<()>,
);

/// Records the workers' outcomes: whatever arrives while one commit is on
/// its way to disk goes into the next, so a busy pass commits once for many
/// sends while a quiet one commits each at once.
#[derive(Clone)]
struct Recorder(tokio::sync::mpsc::UnboundedSender<ToRecord>);

impl Recorder {
    fn start(pool: Pool) -> (Recorder, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<ToRecord>();
        let writer = tokio::spawn(async move {
            let mut group = Vec::new();
            while receiver.recv_many(&mut group, 512).await > 0 {
                let outcomes: Vec<_> = group
                    .iter()
                    .map(|(o, s, _)| (o.clone(), s.clone()))
                    .collect();
                if let Err(e) = record(&pool, &outcomes).await {
                    // Closing, and dropping the acknowledgements unsent,
                    // tells the workers to stop at once.
                    receiver.close();
                    return Err(e);
                }
                for (_, _, ack) in group.drain(..) {
                    let _ = ack.send(());
                }
            }
            Ok(())
        });
        (Recorder(sender), writer)
    }

    /// Word back once the outcome is on disk; `None` once the writer has
    /// stopped, and the worker should stop too.
    fn record(
        &self,
        outcome: Outcome,
        settlement: outbox::Settlement,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.0.send((outcome, settlement, ack)).ok().map(|()| done)
    }
}

/// Tells `mail.alert_to` once when the relay goes down and once when it
/// works again.
async fn alert_on_relay(engine: &Engine, pool: &Pool) -> anyhow::Result<()> {
    let Some(to) = &engine.settings.mail.alert_to else {
        return Ok(());
    };
    let alerted = state::get(pool, keys::RELAY_ALERTED).await?;
    let from = &engine.settings.mail.from;
    match relay_fault::current(pool).await? {
        Some(fault) if alerted.as_deref() != Some(outbox::ts(fault.since).as_str()) => {
            let text = format!(
                "keydates cannot use its mail relay ({}) since {}.\n\nLast error: {}\n\nDue emails wait and go once the relay works again; nothing is lost. Until then no email leaves keydates, the daily report to IMS included. Check the [mail.smtp] settings and the relay.\n",
                Mailer::describe(&engine.settings),
                fault.since,
                fault.error
            );
            alert::send(to, from, "keydates: the mail relay cannot be used", &text).await?;
            state::set(pool, keys::RELAY_ALERTED, &outbox::ts(fault.since)).await?;
            tracing::warn!("mail.alert_to told that the relay cannot be used");
        }
        None if alerted.is_some() => {
            let text =
                "keydates can use its mail relay again. The emails that waited are being sent.\n";
            alert::send(to, from, "keydates: the mail relay works again", text).await?;
            state::remove(pool, keys::RELAY_ALERTED).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Once a day, from the digest hour, tells IMS about failed and missed
/// actions: once in all, however many instances share the database.
pub async fn send_digest_if_due(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    crate::db::exclusively(pool, crate::db::Job::Digest, async || {
        send_digest_unless_sent(engine, pool, now).await
    })
    .await
}

async fn send_digest_unless_sent(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let tz = engine.settings.time_zone();
    let local = now.with_timezone(&tz);
    let today: NaiveDate = local.date_naive();
    if chrono::Timelike::hour(&local) < engine.settings.schedule.digest_hour
        || state::get(pool, keys::LAST_DIGEST_ON).await?.as_deref()
            == Some(today.to_string().as_str())
    {
        return Ok(false);
    }
    // Claimed before it is read and sent: a daemon and a `run --once` on one
    // SQLite file (which has no advisory locks) cannot both send it.
    let lease = Duration::seconds(engine.settings.schedule.claim_lease_secs as i64);
    if !state::claim_day(pool, keys::DIGEST_CLAIM, today, now, lease).await? {
        return Ok(false);
    }
    let sent = send_digest_claimed(engine, pool, now, today).await;
    if !matches!(sent, Ok(true)) {
        // Not sent (nothing to say, or the relay did not take it): given back,
        // so that the next pass may try.
        state::remove(pool, keys::DIGEST_CLAIM).await?;
    }
    sent
}

async fn send_digest_claimed(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> anyhow::Result<bool> {
    let rows = outbox::unreported(pool).await?;
    let relay_fault = relay_fault::ended(pool).await?;
    let awaiting = outbox::awaiting_past_due(pool, today).await?;
    let stuck = now - Duration::seconds(engine.settings.schedule.stale_after_secs as i64);
    let retrying = outbox::retrying_since(pool, stuck).await?;
    let damaged = records::store::damaged(pool).await?;
    if rows.is_empty()
        && relay_fault.is_none()
        && awaiting.is_empty()
        && retrying.is_empty()
        && damaged.is_empty()
    {
        state::set(pool, keys::LAST_DIGEST_ON, &today.to_string()).await?;
        return Ok(false);
    }
    let item = |r: &OutboxRow| DigestItem {
        id: r.id,
        failed: r.status == Status::Failed,
        rule: r.rule.clone(),
        subject: r.subject.to_string(),
        authority: r.authority.clone(),
        due_on: r.due_on,
        reason: r.last_error.clone().unwrap_or_default(),
        delivered_to: r.delivered_to.clone(),
        refused: r.refused.clone(),
    };
    let items: Vec<DigestItem> = rows.iter().map(item).collect();
    let awaiting: Vec<DigestItem> = awaiting.iter().map(item).collect();
    let retrying: Vec<DigestItem> = retrying.iter().map(item).collect();
    let message = digest::message(
        &engine.settings,
        &engine.renderer,
        &digest::Report {
            items: &items,
            awaiting: &awaiting,
            retrying: &retrying,
            damaged: &damaged,
            relay_fault: relay_fault.as_ref(),
            today,
        },
    )?;
    match engine.mailer.send(&message, &[]).await.into_result() {
        Ok(reply) => {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            outbox::mark_reported(pool, &ids, now).await?;
            relay_fault::reported(pool).await?;
            state::set(pool, keys::LAST_DIGEST_ON, &today.to_string()).await?;
            tracing::info!(rows = ids.len(), %reply, "digest sent to IMS");
            Ok(true)
        }
        Err(e) => {
            // Left unreported: the next pass tries again.
            tracing::warn!(error = %e, "digest not sent; will try again");
            Ok(false)
        }
    }
}

/// What a pass would send now, composed but neither sent nor recorded: the
/// whole plan is reconciled inside a transaction that is then rolled back,
/// and the due rows are chosen by the same rule a claim uses.
pub async fn dry_run(
    engine: &Engine,
    pool: &Pool,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<(OutboxRow, Result<compose::Composed, ComposeError>)>> {
    let records = records::store::load(pool)
        .await
        .context("while reading the records")?;
    let planned = plan::plan(&records, &engine.settings, &engine.calendar);
    let reach = reach(engine, pool, now).await?;
    let mut tx = pool.begin().await?;
    outbox::reconcile_in(&mut tx, &planned, now, reach, outbox::ReconcileScope::All).await?;
    let due = outbox::due(&mut tx, now).await?;
    tx.rollback().await?;
    Ok(due
        .into_iter()
        .map(|row| {
            let composed = compose_row(engine, &records, &row, now);
            (row, composed)
        })
        .collect())
}
