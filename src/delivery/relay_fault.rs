//! Whether the mail relay can be used. A relay that refuses keydates' login,
//! cannot be reached, stays silent or fails TLS is a fault of keydates'
//! configuration or of the relay, not of any email: the emails wait, the
//! fault is logged once when it starts and once when it ends, `status`
//! reports it, and the next digest says how long it lasted.

use crate::db::Pool;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::db::state::{self, keys};
use crate::outbox;

/// A relay fault: since when, and the last error seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayFault {
    pub since: DateTime<Utc>,
    pub error: String,
    /// When it ended, once it has.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

async fn read(pool: &Pool, key: &str) -> anyhow::Result<Option<RelayFault>> {
    Ok(match state::get(pool, key).await? {
        Some(text) => Some(serde_json::from_str(&text)?),
        None => None,
    })
}

async fn write(pool: &Pool, key: &str, fault: &RelayFault) -> anyhow::Result<()> {
    state::set(pool, key, &serde_json::to_string(fault)?).await
}

/// The fault in force, if any.
pub async fn current(pool: &Pool) -> anyhow::Result<Option<RelayFault>> {
    read(pool, keys::RELAY_FAULT).await
}

/// Records that a send found the relay unusable.
pub async fn fails(pool: &Pool, error: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
    let since = match current(pool).await? {
        Some(f) => f.since,
        // The pass says so at error priority, each time while it lasts.
        None => now,
    };
    let fault = RelayFault {
        since,
        error: error.to_string(),
        until: None,
    };
    write(pool, keys::RELAY_FAULT, &fault).await
}

/// Records that a send went through: a fault in force has ended.
pub async fn works(pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<()> {
    if let Some(mut fault) = current(pool).await? {
        tracing::warn!(since = %fault.since, "the mail relay works again");
        fault.until = Some(now);
        write(pool, keys::RELAY_FAULT_ENDED, &fault).await?;
        state::remove(pool, keys::RELAY_FAULT).await?;
    }
    Ok(())
}

/// A fault that ended since the last digest, for the digest to report.
pub async fn ended(pool: &Pool) -> anyhow::Result<Option<RelayFault>> {
    read(pool, keys::RELAY_FAULT_ENDED).await
}

/// Forgets the ended fault once the digest has reported it.
pub async fn reported(pool: &Pool) -> anyhow::Result<()> {
    state::remove(pool, keys::RELAY_FAULT_ENDED).await
}

/// After the settings are reloaded, emails waiting for the relay go at the
/// next pass instead of after their back-off.
pub async fn retry_waiting_now(pool: &Pool) -> anyhow::Result<u64> {
    outbox::retry_relay_waits(pool).await
}
