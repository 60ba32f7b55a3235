//! Who changed what through the console, kept in the database and shown on
//! the record's page.

use crate::db::Pool;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::ts;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub async fn record(
    pool: &Pool,
    at: DateTime<Utc>,
    user: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, \"user\", action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ts(at))
    .bind(user)
    .bind(action)
    .bind(target)
    .bind(detail)
    .execute(pool)
    .await?;
    tracing::info!(user, action, target, detail, "console action");
    Ok(())
}

/// Everything done to one record, newest first.
pub async fn for_target(pool: &Pool, target: &str) -> anyhow::Result<Vec<AuditEntry>> {
    Ok(sqlx::query_as(
        "SELECT at, \"user\", action, target, detail FROM audit_log WHERE target = $1 ORDER BY id DESC",
    )
    .bind(target)
    .fetch_all(pool)
    .await?)
}
