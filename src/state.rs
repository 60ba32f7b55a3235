//! What the daemon keeps between passes (a few named values in the
//! database), and who this process is when it claims an email.

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
    /// JSON: a relay fault that has ended, until the digest reports it.
    pub const RELAY_FAULT_ENDED: &str = "relay_fault_ended";
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

pub async fn remove(pool: &Pool, name: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM daemon_state WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Who holds a claim: this host and process, so a restart can tell a dead claim.
pub fn worker_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

fn hostname() -> String {
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
