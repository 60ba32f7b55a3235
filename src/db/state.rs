//! What the daemon keeps between passes (a few named values in the
//! database), who this process is when it claims an email, and which
//! instances are running against the database (their heartbeats).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::db::Pool;

/// The names of the values kept; each is written by one place.
pub mod keys {
    /// When the last pass ran (UTC, RFC 3339).
    pub const LAST_PASS_AT: &str = "last_pass_at";
    /// The local date of the last daily digest.
    pub const LAST_DIGEST_ON: &str = "last_digest_on";
    /// `SEQ:FINGERPRINT`: the record changes and settings the outbox was last planned from.
    pub const PLANNED_THROUGH: &str = "planned_through";
    /// The last day (local) up to which every record was planned into the outbox.
    pub const PLANNED_UNTIL: &str = "planned_until";
    /// JSON: the mail relay fault in force.
    pub const RELAY_FAULT: &str = "relay_fault";
    /// JSON: the stored records that do not read back, as the last plans found them.
    pub const DAMAGED_RECORDS: &str = "damaged_records";
    /// The start (UTC) of the relay fault `mail.alert_to` was told of.
    pub const RELAY_ALERTED: &str = "relay_alerted";
    /// JSON: a relay fault that has ended, until the digest reports it.
    pub const RELAY_FAULT_ENDED: &str = "relay_fault_ended";
    /// `DATE|CLAIMED_AT`: the day whose digest an instance is sending, and since when.
    pub const DIGEST_CLAIM: &str = "digest_claim";
}

pub async fn get(pool: &Pool, name: &str) -> anyhow::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM daemon_state WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn set(pool: &Pool, name: &str, value: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO daemon_state (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes the claim `name` for `day`, unless another process took it for the
/// same day less than `lease` ago: one statement, so of two processes asking
/// at once exactly one gets it (on SQLite as on PostgreSQL).
pub async fn claim_day(
    pool: &Pool,
    name: &str,
    day: chrono::NaiveDate,
    now: DateTime<Utc>,
    lease: chrono::Duration,
) -> anyhow::Result<bool> {
    let value = format!("{day}|{}", crate::db::ts(now));
    let stale = format!("{day}|{}", crate::db::ts(now - lease));
    let taken = sqlx::query(
        "INSERT INTO daemon_state (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value
         WHERE substr(daemon_state.value, 1, 10) <> substr(excluded.value, 1, 10)
            OR daemon_state.value < $3",
    )
    .bind(name)
    .bind(&value)
    .bind(&stale)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

pub async fn remove(pool: &Pool, name: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM daemon_state WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Who holds a claim, and this instance's name in logs and `status`: this
/// host and process, so a restart can tell a dead claim.
pub fn worker_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}:{}", hostname(), std::process::id()))
        .clone()
}

/// A daemon heard from recently.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub started_at: String,
    pub seen_at: String,
}

/// How often a daemon says it is alive, and how long after its last word
/// it still counts as running.
pub const HEARTBEAT_SECS: u64 = 15;
pub const LIVE_WITHIN_SECS: i64 = 60;

/// Says this daemon is alive (first call: that it has started).
pub async fn heartbeat(
    pool: &Pool,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO instances (name, host, pid, started_at, seen_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(worker_id())
    .bind(hostname())
    .bind(i64::from(std::process::id()))
    .bind(crate::db::ts(started_at))
    .bind(crate::db::ts(now))
    .execute(pool)
    .await?;
    Ok(())
}

/// This daemon stops: it is no longer listed, and others long silent are
/// forgotten too.
pub async fn leave(pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM instances WHERE name = $1 OR seen_at < $2")
        .bind(worker_id())
        .bind(crate::db::ts(now - chrono::Duration::days(7)))
        .execute(pool)
        .await?;
    Ok(())
}

/// The daemons heard from within `LIVE_WITHIN_SECS` of `now`.
pub async fn live_instances(pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<Vec<Instance>> {
    let since = crate::db::ts(now - chrono::Duration::seconds(LIVE_WITHIN_SECS));
    let rows = sqlx::query(
        "SELECT name, host, pid, started_at, seen_at FROM instances WHERE seen_at >= $1 ORDER BY name",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Instance {
            name: r.get("name"),
            host: r.get("host"),
            pid: r.get("pid"),
            started_at: r.get("started_at"),
            seen_at: r.get("seen_at"),
        })
        .collect())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// Whether a claim was made by a process on this host that no longer runs.
pub fn claim_is_dead(claimed_by: &str) -> bool {
    let Some((host, pid)) = claimed_by.rsplit_once(':') else {
        return false;
    };
    host == hostname()
        && pid != std::process::id().to_string()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}
