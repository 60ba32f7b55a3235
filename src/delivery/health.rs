//! Health for monitoring: the one-line status systemd shows, and the
//! `status` report whose exit code says whether anything needs a person.

use std::collections::BTreeMap;

use crate::db::Pool;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Settings;
use crate::db::state::{self, keys};
use crate::outbox::{self, Status};

/// A one-line summary for systemd's STATUS and `status`.
pub async fn status_line(pool: &Pool, tz: Tz) -> anyhow::Result<String> {
    let next = outbox::next_pending(pool).await?;
    let failed = count_of(&outbox::counts(pool).await?, Status::Failed);
    let next = match next {
        Some(row) => format!(
            "next: {} for {} at {}",
            row.rule,
            row.authority.unwrap_or_else(|| row.subject.to_string()),
            row.send_at.with_timezone(&tz).format("%Y-%m-%d %H:%M")
        ),
        None => "nothing pending".to_string(),
    };
    Ok(format!("{next}; {failed} failed"))
}

fn count_of(counts: &[(Status, i64)], status: Status) -> i64 {
    counts.iter().find(|(s, _)| *s == status).map_or(0, |c| c.1)
}

/// What `status` reports.
#[derive(Debug, Serialize)]
pub struct Health {
    pub healthy: bool,
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The machine `status` ran on, and every daemon heard from lately,
    /// on this machine or another sharing the database.
    pub host: String,
    pub instances: Vec<state::Instance>,
    pub last_pass_at: Option<String>,
    pub next: String,
    pub counts: BTreeMap<&'static str, i64>,
    pub problems: Vec<String>,
}

/// Healthy when a pass ran recently and nothing has failed.
pub async fn check(pool: &Pool, settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<Health> {
    // Measured, not assumed: a round trip to the database.
    let asked = std::time::Instant::now();
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map_err(|e| anyhow::anyhow!("the database does not answer: {e}"))?;
    let database = format!(
        "answered in {:.1} ms",
        asked.elapsed().as_secs_f64() * 1000.0
    );
    let counts = outbox::counts(pool).await?;
    let last = state::get(pool, keys::LAST_PASS_AT).await?;
    let mut problems = Vec::new();
    let stale = settings.schedule.stale_after_secs as i64;
    match last.as_deref().and_then(outbox::parse_ts) {
        None => problems.push("no pass has run yet".to_string()),
        Some(t) if (now - t).num_seconds() > stale => {
            problems.push(format!("the last pass was at {t}, more than {stale}s ago"))
        }
        Some(_) => {}
    }
    if let Some(fault) = crate::delivery::relay_fault::current(pool).await? {
        problems.push(format!(
            "the mail relay cannot be used since {}: {} (emails wait; fix [mail.smtp] or the relay, then reload)",
            fault.since, fault.error
        ));
    }
    let stuck = now - chrono::Duration::seconds(stale);
    let retrying = outbox::retrying_since(pool, stuck).await?;
    if let Some(first) = retrying.first() {
        problems.push(format!(
            "{} {} failing to go for more than {stale}s (retrying; the oldest, {} {}, since {}: {})",
            retrying.len(),
            if retrying.len() == 1 { "email keeps" } else { "emails keep" },
            first.rule,
            first.subject,
            first.first_attempt_at.map(outbox::ts).unwrap_or_default(),
            first.last_error.as_deref().unwrap_or("no error recorded"),
        ));
    }
    let damaged = crate::records::store::damaged(pool).await?;
    if let Some(first) = damaged.first() {
        problems.push(format!(
            "{} stored {} not read back and left out of planning (changed by hand?); the first: {} {}: {}",
            damaged.len(),
            if damaged.len() == 1 { "record is" } else { "records are" },
            first.table,
            first.key,
            first.problem
        ));
    }
    let failed = count_of(&counts, Status::Failed);
    if failed > 0 {
        problems.push(format!("{failed} failed (keydates outbox --status failed)"));
    }
    Ok(Health {
        healthy: problems.is_empty(),
        database,
        backend: crate::db::Backend::of(pool).name(),
        host: state::hostname(),
        instances: state::live_instances(pool, now).await?,
        last_pass_at: last,
        next: status_line(pool, settings.time_zone()).await?,
        counts: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
        problems,
    })
}
