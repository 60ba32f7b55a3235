//! Reading the records back from the database.

use std::str::FromStr;

use anyhow::Context;

use sqlx::Row;

use crate::db::Pool;

use super::{Authority, Case, Damaged, Delegate, Records, Seminar, Visit};
use crate::calendar::parse_date;
use crate::domain::{EmailAddress, Reference};

fn email(s: &str) -> anyhow::Result<EmailAddress> {
    Ok(EmailAddress::parse(s)?)
}

fn reference(column: &str, s: &str) -> anyhow::Result<Reference> {
    Reference::parse(s).with_context(|| format!("column {column} holds `{s}`"))
}

fn optional_email(s: Option<String>) -> anyhow::Result<Option<EmailAddress>> {
    s.filter(|s| !s.is_empty()).map(|s| email(&s)).transpose()
}

fn date(s: &str) -> anyhow::Result<chrono::NaiveDate> {
    Ok(parse_date(s)?)
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
    for row in rows(pool, &format!("SELECT {CASE_COLUMNS} FROM cases"), &[]).await? {
        if let Some(c) = keep(
            &mut records.damaged,
            "cases",
            || key_of(&row, "case_ref"),
            case(&row),
        ) {
            records.cases.insert(c.case_ref.clone(), c);
        }
    }
    let every_visit = format!("SELECT {VISIT_COLUMNS} FROM visits ORDER BY case_ref, visit_no");
    for row in rows(pool, &every_visit, &[]).await? {
        if let Some(v) = keep(
            &mut records.damaged,
            "visits",
            || key_of(&row, "case_ref"),
            visit(&row),
        ) {
            records.visits.push(v);
        }
    }
    Ok(records)
}

/// Every record except cases and visits: what planning needs alongside
/// each batch of cases (`load_cases_after`).
#[tracing::instrument(skip_all)]
pub async fn load_without_cases(pool: &Pool) -> anyhow::Result<Records> {
    let mut records = Records::default();
    let d = &mut records.damaged;
    for row in rows(pool, "SELECT * FROM authorities", &[]).await? {
        if let Some(a) = keep(d, "authorities", || key_of(&row, "code"), authority(&row)) {
            records.authorities.insert(a.code.clone(), a);
        }
    }
    for row in rows(pool, "SELECT * FROM seminars", &[]).await? {
        if let Some(s) = keep(d, "seminars", || key_of(&row, "seminar_ref"), seminar(&row)) {
            records.seminars.insert(s.seminar_ref.clone(), s);
        }
    }
    let by_seminar = "SELECT * FROM delegates ORDER BY seminar_ref, authority_code, email";
    for row in rows(pool, by_seminar, &[]).await? {
        if let Some(x) = keep(
            d,
            "delegates",
            || key_of(&row, "seminar_ref"),
            delegate(&row),
        ) {
            records.delegates.push(x);
        }
    }
    for row in rows(pool, "SELECT * FROM conversations", &[]).await? {
        if let Some((k, on)) = keep(
            d,
            "conversations",
            || key_of(&row, "seminar_ref"),
            conversation(&row),
        ) {
            records.conversations.insert(k, on);
        }
    }
    for row in rows(pool, "SELECT * FROM invited_authorities", &[]).await? {
        if let Some(k) = keep(
            d,
            "invited_authorities",
            || key_of(&row, "seminar_ref"),
            invited(&row),
        ) {
            records.invited.insert(k);
        }
    }
    Ok(records)
}

/// The columns of a case, in the order `case` reads them.
const CASE_COLUMNS: &str = "case_ref, authority_code, judgement, report_received_on,
    plan_received_on, lead_inspector_email, dfe_link_email, closed, planning_event_on";
const VISIT_COLUMNS: &str =
    "case_ref, visit_no, starts_on, lead_inspector_email, audited_cases, cancelled";

/// Column `i` of a row read by `SELECT {..._COLUMNS}`, named in its error.
fn col<'r, T>(row: &'r crate::db::Row, i: usize, name: &str) -> anyhow::Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(i)
        .map_err(|e| anyhow::anyhow!("column {name} does not hold what it should ({e})"))
}

fn named<'r, T>(row: &'r crate::db::Row, name: &str) -> anyhow::Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(name)
        .map_err(|e| anyhow::anyhow!("column {name} does not hold what it should ({e})"))
}

/// The key of a row that may itself be damaged, for naming it.
fn key_of(row: &crate::db::Row, column: &str) -> String {
    row.try_get::<String, _>(column)
        .unwrap_or_else(|_| "(unreadable key)".to_string())
}

/// Keeps a record that decodes; names and skips one that does not, so that
/// one hand-edited row stops nothing else.
fn keep<T>(
    damaged: &mut Vec<Damaged>,
    table: &'static str,
    key: impl FnOnce() -> String,
    decoded: anyhow::Result<T>,
) -> Option<T> {
    match decoded {
        Ok(value) => Some(value),
        Err(e) => {
            let d = Damaged {
                table: table.to_string(),
                key: key(),
                problem: format!("{e:#}"),
            };
            tracing::error!(table = %d.table, key = %d.key, problem = %d.problem, "a damaged record is skipped");
            damaged.push(d);
            None
        }
    }
}

/// One batch of cases in reference order, with their visits, and the rows
/// that did not decode.
#[derive(Debug, Default)]
pub struct CaseBatch {
    pub cases: std::collections::BTreeMap<Reference, Case>,
    pub visits: Vec<Visit>,
    pub damaged: Vec<Damaged>,
    /// The last reference read, damaged or not: where the next batch starts.
    pub last: Option<String>,
}

/// Up to `limit` cases after `after` in reference order, with their visits:
/// a plan of every case reads them a batch at a time, so that its memory
/// does not grow with the number of cases.
pub async fn load_cases_after(pool: &Pool, after: &str, limit: u32) -> anyhow::Result<CaseBatch> {
    let cases_sql =
        format!("SELECT {CASE_COLUMNS} FROM cases WHERE case_ref > $1 ORDER BY case_ref LIMIT $2");
    let visits_sql = format!(
        "SELECT {VISIT_COLUMNS} FROM visits WHERE case_ref >= $1 AND case_ref <= $2
         ORDER BY case_ref, visit_no"
    );
    let found = sqlx::query(&cases_sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    let mut batch = CaseBatch::default();
    let mut first_last = None;
    for row in found {
        let key = key_of(&row, "case_ref");
        first_last = Some((first_last.map_or(key.clone(), |(f, _)| f), key.clone()));
        if let Some(c) = keep(&mut batch.damaged, "cases", || key, case(&row)) {
            batch.cases.insert(c.case_ref.clone(), c);
        }
    }
    if let Some((first, last)) = &first_last {
        let found = sqlx::query(&visits_sql)
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await?;
        for row in found {
            if let Some(v) = keep(
                &mut batch.damaged,
                "visits",
                || key_of(&row, "case_ref"),
                visit(&row),
            ) {
                batch.visits.push(v);
            }
        }
        batch.last = Some(last.clone());
    }
    Ok(batch)
}

fn conversation(
    row: &crate::db::Row,
) -> anyhow::Result<((Reference, Reference), chrono::NaiveDate)> {
    let seminar_ref: Reference = named(row, "seminar_ref")?;
    let code: Reference = named(row, "authority_code")?;
    let held_on = date(&named::<String>(row, "held_on")?)
        .context("column held_on")
        .with_context(|| format!("the conversation of {seminar_ref} with {code}"))?;
    Ok(((seminar_ref, code), held_on))
}

fn invited(row: &crate::db::Row) -> anyhow::Result<(Reference, Reference)> {
    Ok((named(row, "seminar_ref")?, named(row, "authority_code")?))
}

fn authority(row: &crate::db::Row) -> anyhow::Result<Authority> {
    let code: String = named(row, "code")?;
    (|| -> anyhow::Result<Authority> {
        Ok(Authority {
            code: reference("code", &code)?,
            name: named(row, "name")?,
            region: crate::domain::Region::from_str(&named::<String>(row, "region")?)
                .map_err(|e| anyhow::anyhow!("column region: {e}"))?,
            dcs_name: named(row, "dcs_name")?,
            dcs_email: email(&named::<String>(row, "dcs_email")?).context("column dcs_email")?,
            coordinator_email: optional_email(named(row, "coordinator_email")?)
                .context("column coordinator_email")?,
        })
    })()
    .with_context(|| format!("authority {code}"))
}

/// A yes/no column, kept as an integer on both backends.
fn flag(row: &crate::db::Row, column: &str) -> anyhow::Result<bool> {
    Ok(named::<i64>(row, column)? != 0)
}

fn case(row: &crate::db::Row) -> anyhow::Result<Case> {
    let case_ref: String = col(row, 0, "case_ref")?;
    (|| -> anyhow::Result<Case> {
        let judgement: String = col(row, 2, "judgement")?;
        let report: String = col(row, 3, "report_received_on")?;
        let plan: Option<String> = col(row, 4, "plan_received_on")?;
        let lead: String = col(row, 5, "lead_inspector_email")?;
        let event: Option<String> = col(row, 8, "planning_event_on")?;
        Ok(Case {
            case_ref: reference("case_ref", &case_ref)?,
            authority_code: col(row, 1, "authority_code")?,
            judgement: judgement
                .parse()
                .map_err(|e| anyhow::anyhow!("column judgement: {e}"))?,
            report_received_on: date(&report).context("column report_received_on")?,
            plan_received_on: plan
                .map(|s| date(&s))
                .transpose()
                .context("column plan_received_on")?,
            lead_inspector_email: email(&lead).context("column lead_inspector_email")?,
            dfe_link_email: optional_email(col(row, 6, "dfe_link_email")?)
                .context("column dfe_link_email")?,
            closed: col::<i64>(row, 7, "closed")? != 0,
            planning_event_on: event
                .map(|s| date(&s))
                .transpose()
                .context("column planning_event_on")?,
        })
    })()
    .with_context(|| format!("case {case_ref}"))
}

fn visit(row: &crate::db::Row) -> anyhow::Result<Visit> {
    let case_ref: String = col(row, 0, "case_ref")?;
    let visit_no: i64 = col(row, 1, "visit_no")?;
    (|| -> anyhow::Result<Visit> {
        let starts_on: String = col(row, 2, "starts_on")?;
        let lead: String = col(row, 3, "lead_inspector_email")?;
        let audited: String = col(row, 4, "audited_cases")?;
        let cancelled: i64 = col(row, 5, "cancelled")?;
        Ok(Visit {
            case_ref: reference("case_ref", &case_ref)?,
            visit_no: u32::try_from(visit_no)?,
            starts_on: date(&starts_on).context("column starts_on")?,
            lead_inspector_email: email(&lead).context("column lead_inspector_email")?,
            audited_cases: split_audited(&audited),
            cancelled: cancelled != 0,
        })
    })()
    .with_context(|| format!("visit {case_ref}#{visit_no}"))
}

fn seminar(row: &crate::db::Row) -> anyhow::Result<Seminar> {
    let seminar_ref: String = named(row, "seminar_ref")?;
    (|| -> anyhow::Result<Seminar> {
        Ok(Seminar {
            seminar_ref: reference("seminar_ref", &seminar_ref)?,
            title: named(row, "title")?,
            region: crate::domain::Region::from_str(&named::<String>(row, "region")?)
                .map_err(|e| anyhow::anyhow!("column region: {e}"))?,
            held_on: date(&named::<String>(row, "held_on")?).context("column held_on")?,
            venue: named(row, "venue")?,
            confirmed: flag(row, "confirmed")?,
            cancelled: flag(row, "cancelled")?,
            timetable: crate::records::Timetable::parse(
                &named::<Option<String>>(row, "timetable")?.unwrap_or_default(),
            )
            .context("column timetable")?,
            sequence: u32::try_from(named::<i64>(row, "sequence")?).unwrap_or(u32::MAX),
            cancelled_on: named::<Option<String>>(row, "cancelled_on")?
                .map(|d| date(&d))
                .transpose()
                .context("column cancelled_on")?,
            confirmed_on: named::<Option<String>>(row, "confirmed_on")?
                .map(|d| date(&d))
                .transpose()
                .context("column confirmed_on")?,
        })
    })()
    .with_context(|| format!("seminar {seminar_ref}"))
}

fn delegate(row: &crate::db::Row) -> anyhow::Result<Delegate> {
    let seminar_ref: String = named(row, "seminar_ref")?;
    (|| -> anyhow::Result<Delegate> {
        Ok(Delegate {
            seminar_ref: reference("seminar_ref", &seminar_ref)?,
            authority_code: named(row, "authority_code")?,
            name: named(row, "name")?,
            email: email(&named::<String>(row, "email")?).context("column email")?,
        })
    })()
    .with_context(|| format!("a delegate of {seminar_ref}"))
}

/// Records `today` as the day each seminar confirmed since the last pass
/// was confirmed: its invitations go from that day.
#[tracing::instrument(skip(pool))]
pub async fn stamp_confirmed_seminars(
    pool: &Pool,
    today: chrono::NaiveDate,
) -> anyhow::Result<u64> {
    let done = sqlx::query(
        "UPDATE seminars SET confirmed_on = $1
         WHERE confirmed = 1 AND cancelled = 0 AND confirmed_on IS NULL",
    )
    .bind(today.to_string())
    .execute(pool)
    .await
    .context("while recording the day seminars were confirmed")?;
    Ok(done.rows_affected())
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
        let (of_authority, its_seminars) = subjects_of_authority(pool, code).await?;
        cases.extend(of_authority);
        seminars.extend(its_seminars);
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
    let d = &mut records.damaged;
    for case_ref in cases {
        for row in rows(pool, &one_case, &[case_ref]).await? {
            if let Some(c) = keep(d, "cases", || case_ref.clone(), case(&row)) {
                records.cases.insert(c.case_ref.clone(), c);
            }
        }
        for row in rows(pool, &its_visits, &[case_ref]).await? {
            if let Some(v) = keep(d, "visits", || case_ref.clone(), visit(&row)) {
                records.visits.push(v);
            }
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
            if let Some(s) = keep(d, "seminars", || seminar_ref.clone(), seminar(&row)) {
                records.seminars.insert(s.seminar_ref.clone(), s);
            }
        }
        for row in rows(
            pool,
            "SELECT * FROM delegates WHERE seminar_ref = $1 ORDER BY authority_code, email",
            &[seminar_ref],
        )
        .await?
        {
            if let Some(x) = keep(d, "delegates", || seminar_ref.clone(), delegate(&row)) {
                records.delegates.push(x);
            }
        }
        for row in rows(
            pool,
            "SELECT * FROM conversations WHERE seminar_ref = $1",
            &[seminar_ref],
        )
        .await?
        {
            if let Some((k, on)) = keep(
                d,
                "conversations",
                || seminar_ref.clone(),
                conversation(&row),
            ) {
                records.conversations.insert(k, on);
            }
        }
        for row in rows(
            pool,
            "SELECT * FROM invited_authorities WHERE seminar_ref = $1",
            &[seminar_ref],
        )
        .await?
        {
            if let Some(k) = keep(
                d,
                "invited_authorities",
                || seminar_ref.clone(),
                invited(&row),
            ) {
                records.invited.insert(k);
            }
        }
    }
    let codes: std::collections::BTreeSet<Reference> = records
        .cases
        .values()
        .map(|c| c.authority_code.clone())
        .chain(records.delegates.iter().map(|d| d.authority_code.clone()))
        .chain(records.invited.iter().map(|(_, code)| code.clone()))
        .collect();
    for code in &codes {
        for row in rows(pool, "SELECT * FROM authorities WHERE code = $1", &[code]).await? {
            if let Some(a) = keep(
                &mut records.damaged,
                "authorities",
                || code.to_string(),
                authority(&row),
            ) {
                records.authorities.insert(a.code.clone(), a);
            }
        }
    }
    Ok(records)
}

/// What the last plans found damaged, as `status` and the digest report it.
pub async fn damaged(pool: &Pool) -> anyhow::Result<Vec<Damaged>> {
    Ok(
        match crate::db::state::get(pool, crate::db::state::keys::DAMAGED_RECORDS).await? {
            Some(text) => serde_json::from_str(&text)?,
            None => Vec::new(),
        },
    )
}

/// Which records a plan read: all of them, or these cases and seminars.
pub enum Read<'a> {
    Everything,
    Subjects {
        cases: &'a [String],
        seminars: &'a [String],
    },
}

/// Keeps what a plan found damaged: a plan of everything replaces the list;
/// a plan of some subjects replaces what was known of them.
pub async fn note_damaged(pool: &Pool, read: Read<'_>, found: &[Damaged]) -> anyhow::Result<()> {
    let mut list = match read {
        Read::Everything => Vec::new(),
        Read::Subjects { cases, seminars } => {
            let mut list = damaged(pool).await?;
            list.retain(|d| match d.table.as_str() {
                "cases" | "visits" => !cases.contains(&d.key),
                "seminars" | "delegates" | "conversations" | "invited_authorities" => {
                    !seminars.contains(&d.key)
                }
                _ => true,
            });
            list
        }
    };
    for d in found {
        if !list.contains(d) {
            list.push(d.clone());
        }
    }
    let key = crate::db::state::keys::DAMAGED_RECORDS;
    if list.is_empty() {
        crate::db::state::remove(pool, key).await
    } else {
        crate::db::state::set(pool, key, &serde_json::to_string(&list)?).await
    }
}

/// The cases whose case or one of whose visits `email` (folded) leads.
pub async fn cases_led_by(pool: &Pool, email: &str) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT case_ref FROM cases WHERE lower(lead_inspector_email) = $1 \
         UNION SELECT case_ref FROM visits WHERE lower(lead_inspector_email) = $1",
    )
    .bind(email)
    .fetch_all(pool)
    .await?)
}

/// The cases and seminars that involve an authority.
pub async fn subjects_of_authority(
    pool: &Pool,
    code: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let cases = sqlx::query_scalar("SELECT case_ref FROM cases WHERE authority_code = $1")
        .bind(code)
        .fetch_all(pool)
        .await?;
    let seminars = sqlx::query_scalar(
        "SELECT seminar_ref FROM delegates WHERE authority_code = $1
             UNION SELECT seminar_ref FROM invited_authorities WHERE authority_code = $1",
    )
    .bind(code)
    .fetch_all(pool)
    .await?;
    Ok((cases, seminars))
}
