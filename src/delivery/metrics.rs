//! Numbers for a monitoring system (Prometheus text format): counts and
//! ages, never personal data. Recorded through the `metrics` facade, which
//! does nothing until the daemon installs the exporter (`web.metrics`).

use crate::db::Pool;
use chrono::{DateTime, Utc};
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::outbox::{self, Status};

/// Installs the recorder once; the handle renders the current values.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| anyhow::anyhow!("cannot start the metrics recorder: {e}"))
}

pub fn pass_done(at: DateTime<Utc>) {
    counter!("keydates_passes_total").increment(1);
    gauge!("keydates_last_pass_timestamp_seconds").set(at.timestamp() as f64);
}

pub fn send(rule: &str, outcome: &'static str) {
    counter!("keydates_sends_total", "rule" => rule.to_string(), "outcome" => outcome).increment(1);
}

pub fn reloaded() {
    counter!("keydates_config_reloads_total").increment(1);
}

/// The outbox's depth by state, and how long the oldest waiting rows have waited.
pub async fn outbox_gauges(pool: &Pool, now: DateTime<Utc>) -> anyhow::Result<()> {
    for (status, n) in outbox::counts(pool).await? {
        gauge!("keydates_outbox_rows", "state" => status.as_str()).set(n as f64);
    }
    for status in [Status::Pending, Status::AwaitingConfirmation] {
        let oldest: Option<String> = sqlx::query_scalar(
            "SELECT MIN(send_at) FROM outbox WHERE status = $1 AND send_at <= $2",
        )
        .bind(status.as_str())
        .bind(outbox::ts(now))
        .fetch_one(pool)
        .await?;
        let age = oldest
            .as_deref()
            .and_then(outbox::parse_ts)
            .map_or(0.0, |t| (now - t).num_seconds().max(0) as f64);
        gauge!("keydates_oldest_due_age_seconds", "state" => status.as_str()).set(age);
    }
    Ok(())
}
