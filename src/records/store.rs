//! Reading the records back from the database.

use std::str::FromStr;

use anyhow::Context;

use sqlx::Row;

use crate::db::Pool;

use super::{Authority, Case, Delegate, Records, Seminar, Visit};
use crate::calendar::parse_date;
use crate::domain::EmailAddress;

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

/// One table's rows under a filter; `binds` fill the filter's `?`s.
async fn rows(pool: &Pool, sql: &str, binds: &[&str]) -> anyhow::Result<Vec<crate::db::Row>> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    Ok(q.fetch_all(pool).await?)
}

/// Reads every record. Values were checked on the way in, so a bad one here
/// means the file was edited by hand: say which.
#[tracing::instrument(skip_all)]
pub async fn load(pool: &Pool) -> anyhow::Result<Records> {
    let mut records = load_without_cases(pool).await?;
    let every_case: Vec<CaseRow> = sqlx::query_as(&format!("SELECT {CASE_COLUMNS} FROM cases"))
        .fetch_all(pool)
        .await?;
    for row in every_case {
        let c = case(row)?;
        records.cases.insert(c.case_ref.clone(), c);
    }
    let every_visit: Vec<VisitRow> = sqlx::query_as(&format!(
        "SELECT {VISIT_COLUMNS} FROM visits ORDER BY case_ref, visit_no"
    ))
    .fetch_all(pool)
    .await?;
    for row in every_visit {
        records.visits.push(visit(row)?);
    }
    Ok(records)
}

/// Every record except cases and visits: what planning needs alongside
/// each batch of cases (`load_cases_after`).
#[tracing::instrument(skip_all)]
pub async fn load_without_cases(pool: &Pool) -> anyhow::Result<Records> {
    let mut records = Records::default();
    for row in rows(pool, "SELECT * FROM authorities", &[]).await? {
        let a = authority(&row)?;
        records.authorities.insert(a.code.clone(), a);
    }
    for row in rows(pool, "SELECT * FROM seminars", &[]).await? {
        let s = seminar(&row)?;
        records.seminars.insert(s.seminar_ref.clone(), s);
    }
    let by_seminar = "SELECT * FROM delegates ORDER BY seminar_ref, authority_code, email";
    for row in rows(pool, by_seminar, &[]).await? {
        records.delegates.push(delegate(&row)?);
    }
    for row in rows(pool, "SELECT * FROM conversations", &[]).await? {
        conversation(&row, &mut records)?;
    }
    Ok(records)
}

/// The columns of a case, in the order of `CaseRow`.
const CASE_COLUMNS: &str = "case_ref, authority_code, judgement, report_received_on,
    plan_received_on, lead_inspector_email, dfe_link_email, closed, planning_event_on";
type CaseRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
    Option<String>,
);
const VISIT_COLUMNS: &str =
    "case_ref, visit_no, starts_on, lead_inspector_email, audited_cases, cancelled";
type VisitRow = (String, i64, String, String, String, i64);

/// Up to `limit` cases after `after` in reference order, with their visits:
/// a plan of every case reads them a batch at a time, so that its memory
/// does not grow with the number of cases.
pub async fn load_cases_after(
    pool: &Pool,
    after: &str,
    limit: u32,
) -> anyhow::Result<(std::collections::BTreeMap<String, Case>, Vec<Visit>)> {
    let cases_sql =
        format!("SELECT {CASE_COLUMNS} FROM cases WHERE case_ref > $1 ORDER BY case_ref LIMIT $2");
    let visits_sql = format!(
        "SELECT {VISIT_COLUMNS} FROM visits WHERE case_ref >= $1 AND case_ref <= $2
         ORDER BY case_ref, visit_no"
    );
    let found: Vec<CaseRow> = sqlx::query_as(&cases_sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    let mut cases = std::collections::BTreeMap::new();
    for row in found {
        let c = case(row)?;
        cases.insert(c.case_ref.clone(), c);
    }
    let mut visits = Vec::new();
    if let (Some(first), Some(last)) = (cases.keys().next(), cases.keys().next_back()) {
        let found: Vec<VisitRow> = sqlx::query_as(&visits_sql)
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?;
        for row in found {
            visits.push(visit(row)?);
        }
    }
    Ok((cases, visits))
}

fn conversation(row: &crate::db::Row, records: &mut Records) -> anyhow::Result<()> {
    let seminar_ref: String = row.get("seminar_ref");
    let code: String = row.get("authority_code");
    let held_on = date(row.get("held_on"))
        .with_context(|| format!("while reading the conversation of {seminar_ref} with {code}"))?;
    records.conversations.insert((seminar_ref, code), held_on);
    Ok(())
}

fn authority(row: &crate::db::Row) -> anyhow::Result<Authority> {
    let code: String = row.get("code");
    (|| -> anyhow::Result<Authority> {
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
    .with_context(|| format!("while reading authority {code}"))
}

/// A yes/no column, kept as an integer on both backends.
fn flag(row: &crate::db::Row, column: &str) -> bool {
    row.get::<i64, _>(column) != 0
}

fn case(row: CaseRow) -> anyhow::Result<Case> {
    let (case_ref, authority_code, judgement, report, plan, lead, dfe, closed, event) = row;
    (|| -> anyhow::Result<Case> {
        Ok(Case {
            case_ref: case_ref.clone(),
            authority_code,
            judgement: judgement.parse().map_err(anyhow::Error::msg)?,
            report_received_on: date(&report)?,
            plan_received_on: plan.map(|s| date(&s)).transpose()?,
            lead_inspector_email: email(&lead)?,
            dfe_link_email: optional_email(dfe)?,
            closed: closed != 0,
            planning_event_on: event.map(|s| date(&s)).transpose()?,
        })
    })()
    .with_context(|| format!("while reading case {case_ref}"))
}

fn visit(row: VisitRow) -> anyhow::Result<Visit> {
    let (case_ref, visit_no, starts_on, lead, audited, cancelled) = row;
    (|| -> anyhow::Result<Visit> {
        Ok(Visit {
            case_ref: case_ref.clone(),
            visit_no: u32::try_from(visit_no)?,
            starts_on: date(&starts_on)?,
            lead_inspector_email: email(&lead)?,
            audited_cases: split_audited(&audited),
            cancelled: cancelled != 0,
        })
    })()
    .with_context(|| format!("while reading visit {case_ref}#{visit_no}"))
}

fn seminar(row: &crate::db::Row) -> anyhow::Result<Seminar> {
    let seminar_ref: String = row.get("seminar_ref");
    (|| -> anyhow::Result<Seminar> {
        Ok(Seminar {
            seminar_ref: seminar_ref.clone(),
            title: row.get("title"),
            region: crate::domain::Region::from_str(row.get("region"))
                .map_err(anyhow::Error::msg)?,
            held_on: date(row.get("held_on"))?,
            venue: row.get("venue"),
            confirmed: flag(row, "confirmed"),
            cancelled: flag(row, "cancelled"),
        })
    })()
    .with_context(|| format!("while reading seminar {seminar_ref}"))
}

fn delegate(row: &crate::db::Row) -> anyhow::Result<Delegate> {
    let seminar_ref: String = row.get("seminar_ref");
    Ok(Delegate {
        seminar_ref: seminar_ref.clone(),
        authority_code: row.get("authority_code"),
        name: row.get("name"),
        email: email(row.get("email"))
            .with_context(|| format!("while reading a delegate of {seminar_ref}"))?,
    })
}

/// The record changes not yet planned, as runs of consecutive sequence
/// numbers. A plan forgets exactly these runs afterwards: on PostgreSQL a
/// change can commit with a lower number than one already seen, and it must
/// wait for the next pass rather than be forgotten with its neighbours.
pub async fn pending_changes(pool: &Pool) -> anyhow::Result<Vec<(i64, i64)>> {
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM record_changes ORDER BY seq")
        .fetch_all(pool)
        .await?;
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for seq in seqs {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == seq => *end = seq,
            _ => runs.push((seq, seq)),
        }
    }
    Ok(runs)
}

/// What changed in these runs of changes: the cases and seminars to plan
/// again, with an authority's change spread to its cases and seminars.
pub async fn changed_subjects(
    pool: &Pool,
    runs: &[(i64, i64)],
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut cases = std::collections::BTreeSet::new();
    let mut seminars = std::collections::BTreeSet::new();
    let mut authorities = std::collections::BTreeSet::new();
    let mut changes = Vec::new();
    for (first, last) in runs {
        changes.extend(
            sqlx::query_as::<_, (String, String)>(
                "SELECT DISTINCT kind, key FROM record_changes WHERE seq >= $1 AND seq <= $2",
            )
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?,
        );
    }
    for (kind, key) in changes {
        match kind.as_str() {
            "case" => cases.insert(key),
            "seminar" => seminars.insert(key),
            _ => authorities.insert(key),
        };
    }
    for code in &authorities {
        cases.extend(
            sqlx::query_scalar::<_, String>("SELECT case_ref FROM cases WHERE authority_code = $1")
                .bind(code)
                .fetch_all(pool)
                .await?,
        );
        seminars.extend(
            sqlx::query_scalar::<_, String>(
                "SELECT DISTINCT seminar_ref FROM delegates WHERE authority_code = $1",
            )
            .bind(code)
            .fetch_all(pool)
            .await?,
        );
    }
    Ok((cases.into_iter().collect(), seminars.into_iter().collect()))
}

/// Forgets changes that have been planned: these runs and nothing else.
pub async fn forget_changes(pool: &Pool, runs: &[(i64, i64)]) -> anyhow::Result<()> {
    for (first, last) in runs {
        sqlx::query("DELETE FROM record_changes WHERE seq >= $1 AND seq <= $2")
            .bind(first)
            .bind(last)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The given cases with their visits and the given seminars with their
/// delegates, plus the authorities they name.
pub async fn load_subjects(
    pool: &Pool,
    cases: &[String],
    seminars: &[String],
) -> anyhow::Result<Records> {
    let mut records = Records::default();
    let one_case = format!("SELECT {CASE_COLUMNS} FROM cases WHERE case_ref = $1");
    let its_visits =
        format!("SELECT {VISIT_COLUMNS} FROM visits WHERE case_ref = $1 ORDER BY visit_no");
    for case_ref in cases {
        let found: Option<CaseRow> = sqlx::query_as(&one_case)
            .bind(case_ref)
            .fetch_optional(pool)
            .await?;
        if let Some(row) = found {
            let c = case(row)?;
            records.cases.insert(c.case_ref.clone(), c);
        }
        let found: Vec<VisitRow> = sqlx::query_as(&its_visits)
            .bind(case_ref)
            .fetch_all(pool)
            .await?;
        for row in found {
            records.visits.push(visit(row)?);
        }
    }
    for seminar_ref in seminars {
        for row in rows(
            pool,
            "SELECT * FROM seminars WHERE seminar_ref = $1",
            &[seminar_ref],
        )
        .await?
        {
            let s = seminar(&row)?;
            records.seminars.insert(s.seminar_ref.clone(), s);
        }
        for row in rows(
            pool,
            "SELECT * FROM delegates WHERE seminar_ref = $1 ORDER BY authority_code, email",
            &[seminar_ref],
        )
        .await?
        {
            records.delegates.push(delegate(&row)?);
        }
        for row in rows(
            pool,
            "SELECT * FROM conversations WHERE seminar_ref = $1",
            &[seminar_ref],
        )
        .await?
        {
            conversation(&row, &mut records)?;
        }
    }
    let codes: std::collections::BTreeSet<String> = records
        .cases
        .values()
        .map(|c| c.authority_code.clone())
        .chain(records.delegates.iter().map(|d| d.authority_code.clone()))
        .collect();
    for code in &codes {
        for row in rows(pool, "SELECT * FROM authorities WHERE code = $1", &[code]).await? {
            let a = authority(&row)?;
            records.authorities.insert(a.code.clone(), a);
        }
    }
    Ok(records)
}
