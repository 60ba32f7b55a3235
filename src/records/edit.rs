//! The everyday record changes, without a spreadsheet. The next pass re-plans
//! from them: a received plan cancels its chase, a moved visit moves its emails.

use crate::db::Pool;
use chrono::NaiveDate;

use super::import::parse_audited;

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no {what} `{key}` in the records")]
    NotFound { what: &'static str, key: String },
    #[error("{0}")]
    Invalid(String),
    #[error("while writing the records: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Runs one UPDATE and says which record was missing when it touched none.
async fn update_one<'q>(
    pool: &Pool,
    what: &'static str,
    key: String,
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<(), EditError> {
    if query.execute(pool).await?.rows_affected() == 0 {
        return Err(EditError::NotFound { what, key });
    }
    Ok(())
}

/// A date recorded on a case, never before its report arrived.
#[derive(Debug, Clone, Copy)]
enum CaseDate {
    PlanReceived,
    PlanningEvent,
}

async fn set_case_date(
    pool: &Pool,
    case_ref: &str,
    which: CaseDate,
    on: NaiveDate,
) -> Result<(), EditError> {
    let report: Option<String> =
        sqlx::query_scalar("SELECT report_received_on FROM cases WHERE case_ref = $1")
            .bind(case_ref)
            .fetch_optional(pool)
            .await?;
    let report = report.ok_or_else(|| EditError::NotFound {
        what: "case",
        key: case_ref.to_string(),
    })?;
    if on.to_string() < report {
        return Err(EditError::Invalid(format!(
            "{on} is before the report was received ({report})"
        )));
    }
    let sql = match which {
        CaseDate::PlanReceived => "UPDATE cases SET plan_received_on = $1 WHERE case_ref = $2",
        CaseDate::PlanningEvent => "UPDATE cases SET planning_event_on = $1 WHERE case_ref = $2",
    };
    let q = sqlx::query(sql).bind(on.to_string()).bind(case_ref);
    update_one(pool, "case", case_ref.to_string(), q).await
}

pub async fn plan_received(pool: &Pool, case_ref: &str, on: NaiveDate) -> Result<(), EditError> {
    set_case_date(pool, case_ref, CaseDate::PlanReceived, on).await
}

/// An authority's name and people: every email still to come goes to the
/// addresses recorded now.
pub async fn set_authority_details(
    pool: &Pool,
    code: &str,
    name: &str,
    dcs_name: &str,
    dcs_email: &crate::domain::EmailAddress,
    coordinator_email: Option<&crate::domain::EmailAddress>,
) -> Result<(), EditError> {
    let q = sqlx::query(
        "UPDATE authorities SET name = $1, dcs_name = $2, dcs_email = $3, coordinator_email = $4
         WHERE code = $5",
    )
    .bind(name)
    .bind(dcs_name)
    .bind(dcs_email.as_str())
    .bind(coordinator_email.map(|e| e.as_str()))
    .bind(code);
    update_one(pool, "authority", code.to_string(), q).await
}

pub async fn close_case(pool: &Pool, case_ref: &str) -> Result<(), EditError> {
    let q = sqlx::query("UPDATE cases SET closed = 1 WHERE case_ref = $1").bind(case_ref);
    update_one(pool, "case", case_ref.to_string(), q).await
}

pub async fn move_visit(
    pool: &Pool,
    case_ref: &str,
    visit_no: u32,
    starts_on: NaiveDate,
) -> Result<(), EditError> {
    let q = sqlx::query(
        "UPDATE visits SET starts_on = $1, cancelled = 0 WHERE case_ref = $2 AND visit_no = $3",
    )
    .bind(starts_on.to_string())
    .bind(case_ref)
    .bind(visit_no as i64);
    update_one(pool, "visit", format!("{case_ref}#{visit_no}"), q).await
}

pub async fn cancel_visit(pool: &Pool, case_ref: &str, visit_no: u32) -> Result<(), EditError> {
    let q = sqlx::query("UPDATE visits SET cancelled = 1 WHERE case_ref = $1 AND visit_no = $2")
        .bind(case_ref)
        .bind(visit_no as i64);
    update_one(pool, "visit", format!("{case_ref}#{visit_no}"), q).await
}

pub async fn set_audited(
    pool: &Pool,
    case_ref: &str,
    visit_no: u32,
    refs: &[String],
) -> Result<(), EditError> {
    let refs = parse_audited(&refs.join(";")).map_err(EditError::Invalid)?;
    let q =
        sqlx::query("UPDATE visits SET audited_cases = $1 WHERE case_ref = $2 AND visit_no = $3")
            .bind(refs.join(";"))
            .bind(case_ref)
            .bind(visit_no as i64);
    update_one(pool, "visit", format!("{case_ref}#{visit_no}"), q).await
}

/// Confirms a seminar, or reinstates a cancelled one; the next pass records
/// the day, from which its invitations go.
pub async fn confirm_seminar(pool: &Pool, seminar_ref: &str) -> Result<(), EditError> {
    let q = sqlx::query(
        "UPDATE seminars SET confirmed = 1, cancelled = 0, cancelled_on = NULL,
           confirmed_on = CASE WHEN confirmed = 1 AND cancelled = 0 THEN confirmed_on END
         WHERE seminar_ref = $1",
    )
    .bind(seminar_ref);
    update_one(pool, "seminar", seminar_ref.to_string(), q).await
}

/// Cancels a seminar on `on`; cancelling it again keeps the first day.
pub async fn cancel_seminar(
    pool: &Pool,
    seminar_ref: &str,
    on: NaiveDate,
) -> Result<(), EditError> {
    let q = sqlx::query(
        "UPDATE seminars SET cancelled = 1, cancelled_on = COALESCE(cancelled_on, $1)
         WHERE seminar_ref = $2",
    )
    .bind(on.to_string())
    .bind(seminar_ref);
    update_one(pool, "seminar", seminar_ref.to_string(), q).await
}

/// Records a seminar's own timetable; an empty one falls back to config's.
pub async fn set_timetable(
    pool: &Pool,
    seminar_ref: &str,
    timetable: &crate::records::Timetable,
) -> Result<(), EditError> {
    let q = sqlx::query("UPDATE seminars SET timetable = $1 WHERE seminar_ref = $2")
        .bind((!timetable.is_empty()).then(|| timetable.to_string()))
        .bind(seminar_ref);
    update_one(pool, "seminar", seminar_ref.to_string(), q).await
}

/// Records the agreed date of the case's planning event (000 §21, 001 §14).
pub async fn set_planning_event(
    pool: &Pool,
    case_ref: &str,
    on: NaiveDate,
) -> Result<(), EditError> {
    set_case_date(pool, case_ref, CaseDate::PlanningEvent, on).await
}

/// Records the day the senior HMI's six-month conversation with the DCS of
/// an authority that attended a seminar took place (000 §38).
pub async fn record_conversation(
    pool: &Pool,
    seminar_ref: &str,
    authority_code: &str,
    on: NaiveDate,
) -> Result<(), EditError> {
    let held: Option<String> =
        sqlx::query_scalar("SELECT held_on FROM seminars WHERE seminar_ref = $1")
            .bind(seminar_ref)
            .fetch_optional(pool)
            .await?;
    let held = held.ok_or_else(|| EditError::NotFound {
        what: "seminar",
        key: seminar_ref.to_string(),
    })?;
    let attended: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM delegates WHERE seminar_ref = $1 AND authority_code = $2",
    )
    .bind(seminar_ref)
    .bind(authority_code)
    .fetch_one(pool)
    .await?;
    if attended == 0 {
        return Err(EditError::Invalid(format!(
            "authority `{authority_code}` sent no delegates to seminar `{seminar_ref}`"
        )));
    }
    if on.to_string() < held {
        return Err(EditError::Invalid(format!(
            "{on} is before the seminar was held ({held})"
        )));
    }
    sqlx::query(
        "INSERT INTO conversations (seminar_ref, authority_code, held_on) VALUES ($1, $2, $3)
         ON CONFLICT (seminar_ref, authority_code) DO UPDATE SET held_on = excluded.held_on",
    )
    .bind(seminar_ref)
    .bind(authority_code)
    .bind(on.to_string())
    .execute(pool)
    .await?;
    Ok(())
}
