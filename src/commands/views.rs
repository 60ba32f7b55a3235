//! Commands that show what went and what will go, and the admin's actions on
//! single outbox rows.

use std::process::ExitCode;

use chrono::{NaiveDate, Utc};

use super::{done, instant, print_table};
use super::{out, outln};
use crate::agenda::{self, Window};
use crate::cli::{Format, Now};
use crate::config::Settings;
use crate::db;
use crate::outbox::{self, Status};
use crate::plan;

pub async fn agenda(
    settings: Settings,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: Option<Now>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let now = instant(now, &settings);
    let pool = db::connect_existing(&settings).await?;
    let items = agenda::current(&pool, &settings, now, Window { from, to }).await?;
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&items)?),
        Format::Table => print_table(
            &["due", "status", "rule", "subject", "authority", "to"],
            items.iter().map(|i| {
                vec![
                    i.due_on.map_or("-".to_string(), |d| d.to_string()),
                    <&str>::from(i.status).to_string(),
                    i.rule.clone(),
                    i.subject.to_string(),
                    i.authority.clone().unwrap_or_default(),
                    plan::joined(&i.to),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn outbox(
    settings: &Settings,
    status: Option<Status>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let rows = outbox::list(&db::connect_existing(settings).await?, status).await?;
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => print_table(
            &["id", "status", "due", "rule", "subject", "tries", "detail"],
            rows.iter().map(|r| {
                vec![
                    r.id.to_string(),
                    r.status.as_str().to_string(),
                    r.due_on.to_string(),
                    r.rule.clone(),
                    r.subject.to_string(),
                    r.attempts.to_string(),
                    r.last_error
                        .clone()
                        .or(r.server_reply.clone())
                        .unwrap_or_default(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(settings: &Settings, id: i64) -> anyhow::Result<ExitCode> {
    outbox::retry(&db::connect_existing(settings).await?, id, Utc::now()).await?;
    done(format!("outbox row {id}: pending again"))
}

pub async fn confirm(settings: &Settings, id: i64, role: Option<&str>) -> anyhow::Result<ExitCode> {
    let by = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "command line".to_string());
    let pool = db::connect_existing(settings).await?;
    match outbox::confirm(&pool, id, role, &settings.rules, &by, Utc::now()).await? {
        outbox::Confirmed::Released => done(format!(
            "outbox row {id}: confirmed by every role asked; it goes at the next pass"
        )),
        outbox::Confirmed::Waiting(missing) => done(format!(
            "outbox row {id}: confirmed as {}; it waits for {}",
            role.unwrap_or_default(),
            missing.join(" and ")
        )),
    }
}

pub async fn cancel(settings: &Settings, id: i64) -> anyhow::Result<ExitCode> {
    outbox::cancel(&db::connect_existing(settings).await?, id, Utc::now()).await?;
    done(format!("outbox row {id}: cancelled"))
}

pub async fn status(settings: Settings, format: Format) -> anyhow::Result<ExitCode> {
    let pool = db::connect_existing(&settings).await?;
    let health = crate::delivery::health::check(&pool, &settings, Utc::now()).await?;
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&health)?),
        Format::Table => {
            outln!("healthy: {}", if health.healthy { "yes" } else { "no" });
            outln!("database: {} ({})", health.database, health.backend);
            outln!("instances running: {}", health.instances.len());
            for i in &health.instances {
                let here = if i.host == health.host {
                    " (this machine)"
                } else {
                    ""
                };
                outln!(
                    "  {}{here}: started {}, last heard {}",
                    i.name,
                    i.started_at,
                    i.seen_at
                );
            }
            outln!(
                "last pass: {}",
                health.last_pass_at.as_deref().unwrap_or("never")
            );
            outln!("{}", health.next);
            for (s, n) in &health.counts {
                outln!("{s:<10} {n}");
            }
            for p in &health.problems {
                outln!("problem: {p}");
            }
        }
    }
    Ok(if health.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

pub async fn ics(
    settings: &Settings,
    inspector: Option<crate::domain::EmailAddress>,
    authority: Option<String>,
) -> anyhow::Result<ExitCode> {
    use crate::agenda::feed::{self, Owner};
    let owner = match (inspector, authority) {
        (Some(e), _) => Owner::Inspector(e),
        (None, Some(code)) => Owner::Authority(code),
        (None, None) => anyhow::bail!("give --inspector EMAIL or --authority CODE"),
    };
    let pool = db::connect_existing(settings).await?;
    let records = crate::records::store::load(&pool).await?;
    if !feed::owners(&records).contains(&owner) {
        anyhow::bail!("no such lead inspector or authority in the records");
    }
    let (items, records) = agenda::for_owner(&pool, settings, Utc::now(), &owner).await?;
    out!(
        "{}",
        feed::feed(&owner, &items, &records, settings, Utc::now())
    );
    if let Some(address) = feed::address(settings, &owner) {
        eprintln!("subscribe at {address}");
    }
    Ok(ExitCode::SUCCESS)
}
