//! The SQLite database: opening it, and reading the records back.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::{Authority, Case, Delegate, Records, Seminar, Visit};
use crate::calendar::parse_date;
use crate::domain::EmailAddress;

/// Opens (creating if need be) the database in WAL mode, with a busy timeout so
/// the command line can change records while the daemon runs, and migrates it.
#[tracing::instrument(skip_all, fields(path = %path.display()))]
pub async fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<SqlitePool> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the database folder {}", dir.display()))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy_timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("while opening the database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .with_context(|| format!("while migrating the database {}", path.display()))?;
    Ok(pool)
}

fn email(s: &str) -> anyhow::Result<EmailAddress> {
    EmailAddress::parse(s).map_err(anyhow::Error::msg)
}

fn optional_email(s: Option<String>) -> anyhow::Result<Option<EmailAddress>> {
    s.filter(|s| !s.is_empty()).map(|s| email(&s)).transpose()
}

fn date(s: &str) -> anyhow::Result<chrono::NaiveDate> {
    parse_date(s).map_err(anyhow::Error::msg)
}

/// Splits the stored `;`-separated audited case references.
pub fn split_audited(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Reads every record. Values were checked on the way in, so a bad one here
/// means the file was edited by hand: say which.
#[tracing::instrument(skip_all)]
pub async fn load(pool: &SqlitePool) -> anyhow::Result<Records> {
    let mut records = Records::default();
    for row in sqlx::query("SELECT * FROM authorities")
        .fetch_all(pool)
        .await?
    {
        let code: String = row.get("code");
        let a = (|| -> anyhow::Result<Authority> {
            Ok(Authority {
                code: code.clone(),
                name: row.get("name"),
                region: crate::domain::Region::from_str(row.get("region"))
                    .map_err(anyhow::Error::msg)?,
                dcs_name: row.get("dcs_name"),
                dcs_email: email(row.get("dcs_email"))?,
                coordinator_email: optional_email(row.get("coordinator_email"))?,
            })
        })()
        .with_context(|| format!("while reading authority {code}"))?;
        records.authorities.insert(code, a);
    }
    for row in sqlx::query("SELECT * FROM cases").fetch_all(pool).await? {
        let case_ref: String = row.get("case_ref");
        let c = (|| -> anyhow::Result<Case> {
            Ok(Case {
                case_ref: case_ref.clone(),
                authority_code: row.get("authority_code"),
                judgement: row
                    .get::<String, _>("judgement")
                    .parse()
                    .map_err(anyhow::Error::msg)?,
                report_received_on: date(row.get("report_received_on"))?,
                plan_received_on: row
                    .get::<Option<String>, _>("plan_received_on")
                    .map(|s| date(&s))
                    .transpose()?,
                lead_inspector_email: email(row.get("lead_inspector_email"))?,
                dfe_link_email: optional_email(row.get("dfe_link_email"))?,
                closed: row.get("closed"),
            })
        })()
        .with_context(|| format!("while reading case {case_ref}"))?;
        records.cases.insert(case_ref, c);
    }
    for row in sqlx::query("SELECT * FROM visits ORDER BY case_ref, visit_no")
        .fetch_all(pool)
        .await?
    {
        let case_ref: String = row.get("case_ref");
        let visit_no: i64 = row.get("visit_no");
        let v = (|| -> anyhow::Result<Visit> {
            Ok(Visit {
                case_ref: case_ref.clone(),
                visit_no: u32::try_from(visit_no)?,
                starts_on: date(row.get("starts_on"))?,
                lead_inspector_email: email(row.get("lead_inspector_email"))?,
                audited_cases: split_audited(row.get("audited_cases")),
                cancelled: row.get("cancelled"),
            })
        })()
        .with_context(|| format!("while reading visit {case_ref}#{visit_no}"))?;
        records.visits.push(v);
    }
    for row in sqlx::query("SELECT * FROM seminars")
        .fetch_all(pool)
        .await?
    {
        let seminar_ref: String = row.get("seminar_ref");
        let s = (|| -> anyhow::Result<Seminar> {
            Ok(Seminar {
                seminar_ref: seminar_ref.clone(),
                title: row.get("title"),
                region: crate::domain::Region::from_str(row.get("region"))
                    .map_err(anyhow::Error::msg)?,
                held_on: date(row.get("held_on"))?,
                venue: row.get("venue"),
                confirmed: row.get("confirmed"),
                cancelled: row.get("cancelled"),
            })
        })()
        .with_context(|| format!("while reading seminar {seminar_ref}"))?;
        records.seminars.insert(seminar_ref, s);
    }
    for row in sqlx::query("SELECT * FROM delegates ORDER BY seminar_ref, authority_code, email")
        .fetch_all(pool)
        .await?
    {
        let seminar_ref: String = row.get("seminar_ref");
        let d = Delegate {
            seminar_ref: seminar_ref.clone(),
            authority_code: row.get("authority_code"),
            name: row.get("name"),
            email: email(row.get("email"))
                .with_context(|| format!("while reading a delegate of {seminar_ref}"))?,
        };
        records.delegates.push(d);
    }
    Ok(records)
}
