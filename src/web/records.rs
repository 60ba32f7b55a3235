//! The forms that change records: a case's plan and planning event, a
//! visit's date, cancellation and audited cases, a seminar's confirmation
//! and cancellation, a conversation held.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

use super::auth::Session;
use super::session::Editing;
use super::{Shared, WebState};
use crate::records::audit;
use crate::records::edit::{self, EditError};

/// A form that gives one date.
#[derive(Deserialize)]
pub struct DateForm {
    #[serde(default)]
    date: String,
}

impl DateForm {
    fn date(&self) -> Option<NaiveDate> {
        crate::calendar::parse_date(&self.date).ok()
    }
}

fn bad_date() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "give a date (YYYY-MM-DD) from 2000 to 2100",
    )
        .into_response()
}

/// A visit's forms: a new date, or the audited cases' references.
#[derive(Deserialize)]
pub struct VisitForm {
    #[serde(default)]
    date: String,
    #[serde(default)]
    refs: String,
}

/// A seminar's forms, with the authority page they were on.
#[derive(Deserialize)]
pub struct SeminarForm {
    #[serde(default)]
    back: String,
    /// For `timetable`: "TIME SESSION" pairs separated by `;`.
    #[serde(default)]
    timetable: String,
}

/// After a record change: audit it, wake the daemon, and go back to the authority.
async fn changed(
    state: &WebState,
    s: &Session,
    result: Result<(), EditError>,
    action: &str,
    target: String,
    detail: String,
    back: &str,
) -> Response {
    if let Err(e) = result {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    if let Err(e) = audit::record(&state.pool, Utc::now(), &s.user, action, &target, &detail).await
    {
        tracing::error!(error = format!("{e:#}"), "audit log not written");
    }
    state.wake.notify_one();
    Redirect::to(&format!("/authorities/{}", super::path_part(back))).into_response()
}

async fn authority_of_case(state: &WebState, case_ref: &str) -> String {
    sqlx::query_scalar("SELECT authority_code FROM cases WHERE case_ref = $1")
        .bind(case_ref)
        .fetch_optional(&state.pool)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The changes an editor can make to a record, as named in their addresses
/// and in the audit log.
#[derive(Debug, Clone, Copy, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
enum CaseChange {
    PlanReceived,
    PlanningEvent,
}

#[derive(Debug, Clone, Copy, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
enum VisitChange {
    Move,
    Cancel,
    Audited,
}

#[derive(Debug, Clone, Copy, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
enum SeminarChange {
    Confirm,
    Cancel,
    Timetable,
}

fn no_such_change() -> Response {
    (StatusCode::NOT_FOUND, "no such action").into_response()
}

pub async fn case_action(
    State(state): State<Shared>,
    Path((case_ref, action)): Path<(String, String)>,
    Editing { session: s, form }: Editing<DateForm>,
) -> Response {
    let Some(date) = form.date() else {
        return bad_date();
    };
    let Ok(change) = action.parse::<CaseChange>() else {
        return no_such_change();
    };
    let result = match change {
        CaseChange::PlanReceived => edit::plan_received(&state.pool, &case_ref, date).await,
        CaseChange::PlanningEvent => edit::set_planning_event(&state.pool, &case_ref, date).await,
    };
    let back = authority_of_case(&state, &case_ref).await;
    changed(
        &state,
        &s,
        result,
        change.into(),
        format!("case:{case_ref}"),
        date.to_string(),
        &back,
    )
    .await
}

pub async fn visit_action(
    State(state): State<Shared>,
    Path((case_ref, visit_no, action)): Path<(String, u32, String)>,
    Editing { session: s, form }: Editing<VisitForm>,
) -> Response {
    let Ok(change) = action.parse::<VisitChange>() else {
        return no_such_change();
    };
    let (result, detail) = match change {
        VisitChange::Move => match (DateForm { date: form.date }).date() {
            Some(d) => (
                edit::move_visit(&state.pool, &case_ref, visit_no, d).await,
                d.to_string(),
            ),
            None => return bad_date(),
        },
        VisitChange::Cancel => (
            edit::cancel_visit(&state.pool, &case_ref, visit_no).await,
            String::new(),
        ),
        VisitChange::Audited => {
            let refs = vec![form.refs];
            (
                edit::set_audited(&state.pool, &case_ref, visit_no, &refs).await,
                refs.join(";"),
            )
        }
    };
    let back = authority_of_case(&state, &case_ref).await;
    let action = format!("visit {visit_no}: {}", <&str>::from(change));
    changed(
        &state,
        &s,
        result,
        &action,
        format!("case:{case_ref}"),
        detail,
        &back,
    )
    .await
}

pub async fn seminar_action(
    State(state): State<Shared>,
    Path((seminar_ref, action)): Path<(String, String)>,
    Editing { session: s, form }: Editing<SeminarForm>,
) -> Response {
    let Ok(change) = action.parse::<SeminarChange>() else {
        return no_such_change();
    };
    let mut detail = String::new();
    let result = match change {
        SeminarChange::Confirm => edit::confirm_seminar(&state.pool, &seminar_ref).await,
        SeminarChange::Cancel => {
            let today = chrono::Utc::now()
                .with_timezone(&state.engine.borrow().settings.time_zone())
                .date_naive();
            edit::cancel_seminar(&state.pool, &seminar_ref, today).await
        }
        SeminarChange::Timetable => match crate::records::Timetable::parse(&form.timetable) {
            Ok(timetable) => {
                detail = timetable.to_string();
                edit::set_timetable(&state.pool, &seminar_ref, &timetable).await
            }
            Err(e) => {
                return (StatusCode::BAD_REQUEST, format!("timetable: {e}")).into_response();
            }
        },
    };
    changed(
        &state,
        &s,
        result,
        change.into(),
        format!("seminar:{seminar_ref}"),
        detail,
        &form.back,
    )
    .await
}

pub async fn conversation_action(
    State(state): State<Shared>,
    Path((seminar_ref, code)): Path<(String, String)>,
    Editing { session: s, form }: Editing<DateForm>,
) -> Response {
    let Some(date) = form.date() else {
        return bad_date();
    };
    let result = edit::record_conversation(&state.pool, &seminar_ref, &code, date).await;
    changed(
        &state,
        &s,
        result,
        "conversation",
        format!("seminar:{seminar_ref}"),
        format!("{code} {date}"),
        &code,
    )
    .await
}
