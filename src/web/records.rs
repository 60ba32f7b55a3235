//! The forms that change records: a case's plan and planning event, a
//! visit's date, cancellation and audited cases, a seminar's confirmation
//! and cancellation, a conversation held.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use chrono::Datelike;

use super::auth::Session;
use super::authorities::{FormProblem, authority_view};
use super::session::Editing;
use super::{Shared, WebState};
use crate::records::edit::{self, EditError};

/// A form that gives one date: as the GOV.UK date input sends it (day,
/// month, year), or as one `YYYY-MM-DD` value. `sure` confirms a date that
/// looks wrong.
#[derive(Deserialize, Default)]
pub struct DateForm {
    #[serde(default)]
    date: String,
    #[serde(default)]
    day: String,
    #[serde(default)]
    month: String,
    #[serde(default)]
    year: String,
    #[serde(default)]
    sure: String,
}

impl DateForm {
    /// The date given, or what to say about it.
    fn date(&self) -> Result<NaiveDate, &'static str> {
        if !self.date.trim().is_empty() {
            return crate::calendar::parse_date(self.date.trim())
                .map_err(|_| "must be a real date, from 2000 to 2100");
        }
        let parts = [&self.day, &self.month, &self.year].map(|p| p.trim());
        if parts.iter().any(|p| p.is_empty()) {
            return Err("must include a day, a month and a year");
        }
        let [Ok(day), Ok(month), Ok(year)] = parts.map(str::parse::<u32>) else {
            return Err("must be numbers: a day, a month and a year");
        };
        let date = i32::try_from(year)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
            .ok_or("must be a real date")?;
        // The same bounds as every date the command line takes.
        crate::calendar::parse_date(&date.to_string())
            .map_err(|_| "must be a year from 2000 to 2100")
    }

    /// What was typed, to show back in the form.
    fn typed(&self) -> std::collections::BTreeMap<&'static str, String> {
        let (day, month, year) = match crate::calendar::parse_date(self.date.trim()) {
            Ok(d) => (
                d.day().to_string(),
                d.month().to_string(),
                d.year().to_string(),
            ),
            Err(_) => (self.day.clone(), self.month.clone(), self.year.clone()),
        };
        [("day", day), ("month", month), ("year", year)].into()
    }

    fn sure(&self) -> bool {
        self.sure == "yes"
    }
}

/// A form's value shown back: the form, what was typed and what is wrong.
fn problem(
    form: String,
    what: &str,
    values: std::collections::BTreeMap<&'static str, String>,
    message: String,
    confirm: bool,
) -> FormProblem {
    FormProblem {
        field: format!(
            "{form}-{}",
            if values.contains_key("day") {
                "day"
            } else {
                what
            }
        ),
        form,
        values: values
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        message,
        confirm,
    }
}

/// A visit's forms: a new date, or the audited cases' references.
#[derive(Deserialize)]
pub struct VisitForm {
    #[serde(flatten)]
    date: DateForm,
    #[serde(default)]
    refs: String,
}

/// A seminar's forms, with the authority page they were on.
#[derive(Deserialize)]
pub struct SeminarForm {
    #[serde(default)]
    back: String,
    /// Confirms a cancellation.
    #[serde(default)]
    sure: String,
    /// For `timetable`: "TIME SESSION" pairs separated by `;`.
    #[serde(default)]
    timetable: String,
}

/// After a record change: audit it, wake the daemon, and go back to the
/// authority, whose page says what changed and what it does to the emails.
#[allow(clippy::too_many_arguments)]
async fn changed(
    state: &WebState,
    s: &Session,
    result: Result<(), EditError>,
    action: &str,
    target: String,
    detail: String,
    back: &str,
    notice: String,
) -> Response {
    if let Err(e) = result {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    state.tell(s, notice);
    state.recorded(s, action, &target, &detail).await;
    Redirect::to(&format!("/authorities/{}", super::path_part(back))).into_response()
}

async fn state_of_visit(state: &WebState, case_ref: &str, visit_no: u32) -> bool {
    sqlx::query_scalar::<_, i64>(
        "SELECT cancelled FROM visits WHERE case_ref = $1 AND visit_no = $2",
    )
    .bind(case_ref)
    .bind(visit_no as i64)
    .fetch_optional(&state.pool)
    .await
    .ok()
    .flatten()
    .is_some_and(|c| c != 0)
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
    Close,
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

/// Asks before a change that stops emails: the same action, confirmed.
fn ask_first(
    state: &WebState,
    s: &Session,
    action: String,
    question: String,
    consequence: &str,
    button: String,
    back: &str,
) -> Response {
    let ctx = super::base(s, "authorities", &question);
    state.render(
        "confirm.html",
        minijinja::context! {
            question => question, consequence => consequence, action => action,
            button => button, back => back,
            return_to => format!("/authorities/{}", super::path_part(back)),
            ..ctx
        },
    )
}

fn no_such_change() -> Response {
    (StatusCode::NOT_FOUND, "no such action").into_response()
}

/// Shows the authority's page again with a form's problem: 400 for a value
/// that cannot be used, 422 for one that looks wrong and waits to be confirmed.
async fn show(state: &WebState, s: &Session, back: &str, problem: FormProblem) -> Response {
    let status = if problem.confirm {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut page = authority_view(state, s, back, Some(problem)).await;
    if page.status().is_success() {
        *page.status_mut() = status;
    }
    page
}

/// A date form on an authority's page, and how its date is named in what
/// the page says back.
struct DateField<'a> {
    state: &'a WebState,
    s: &'a Session,
    back: &'a str,
    form_id: String,
    label: &'a str,
}

impl DateField<'_> {
    /// The form's date, or the page again saying why it cannot be used.
    async fn date(&self, form: &DateForm) -> Result<NaiveDate, Response> {
        match form.date() {
            Ok(d) => Ok(d),
            Err(why) => Err(self
                .again(form, format!("{} {why}", self.label), false)
                .await),
        }
    }

    /// The page again, recording nothing, when `doubt` says why the date
    /// looks wrong and the form has not confirmed it.
    async fn unless_doubted(&self, form: &DateForm, doubt: Option<String>) -> Result<(), Response> {
        match doubt {
            Some(why) if !form.sure() => Err(self.again(form, why, true).await),
            _ => Ok(()),
        }
    }

    async fn again(&self, form: &DateForm, message: String, confirm: bool) -> Response {
        let p = problem(self.form_id.clone(), "date", form.typed(), message, confirm);
        show(self.state, self.s, self.back, p).await
    }
}

/// Why a planning event on `on` looks wrong for this case: outside the
/// 25-35 working days after the report (000 §8, 001 §10).
async fn outside_window(state: &WebState, case_ref: &str, on: NaiveDate) -> Option<String> {
    let records = crate::records::store::load_subjects(&state.pool, &[case_ref.to_string()], &[])
        .await
        .ok()?;
    let case = records.cases.values().next()?;
    let calendar = state.engine.borrow().settings.calendar();
    let (from, to) = crate::plan::planning_window(&calendar, case.report_received_on)?;
    (on < from || on > to).then(|| {
        format!(
            "{} is outside the usual window for the planning event, {} to {} (25 to 35 working days after the report)",
            ukdate(on),
            ukdate(from),
            ukdate(to)
        )
    })
}

fn ukdate(d: NaiveDate) -> String {
    crate::calendar::uk_long_date(d)
}

pub async fn case_action(
    State(state): State<Shared>,
    Path((case_ref, action)): Path<(String, String)>,
    Editing { session: s, form }: Editing<DateForm>,
) -> Response {
    let Ok(change) = action.parse::<CaseChange>() else {
        return no_such_change();
    };
    let back = authority_of_case(&state, &case_ref).await;
    let (id, label) = match change {
        CaseChange::PlanReceived => ("plan", "The day the plan was received"),
        CaseChange::PlanningEvent => ("event", "The planning event's date"),
        CaseChange::Close => return close_case(&state, &s, &case_ref, &back, form.sure()).await,
    };
    let field = DateField {
        state: &state,
        s: &s,
        back: &back,
        form_id: format!("{id}-{case_ref}"),
        label,
    };
    let date = match field.date(&form).await {
        Ok(d) => d,
        Err(page) => return page,
    };
    let doubt = match change {
        CaseChange::PlanningEvent => outside_window(&state, &case_ref, date).await,
        _ => None,
    };
    if let Err(page) = field.unless_doubted(&form, doubt).await {
        return page;
    }
    let (result, notice) = match change {
        CaseChange::PlanReceived => (
            edit::plan_received(&state.pool, &case_ref, date).await,
            format!(
                "The plan for {case_ref} is recorded as received on {}. Reminders that wait for the plan will not go; the inspectors are told it has arrived.",
                ukdate(date)
            ),
        ),
        CaseChange::PlanningEvent => (
            edit::set_planning_event(&state.pool, &case_ref, date).await,
            format!(
                "The planning event for {case_ref} is set for {}. The final agenda and the record of the event are planned from it.",
                ukdate(date)
            ),
        ),
        CaseChange::Close => unreachable!("handled above"),
    };
    changed(
        &state,
        &s,
        result,
        change.into(),
        format!("case:{case_ref}"),
        date.to_string(),
        &back,
        notice,
    )
    .await
}

/// Closing a case stops every email still to come for it: asked first, then
/// a page that says it is done.
async fn close_case(
    state: &WebState,
    s: &Session,
    case_ref: &str,
    back: &str,
    sure: bool,
) -> Response {
    let path = format!("/cases/{}/close", super::path_part(case_ref));
    if !sure {
        return ask_first(
            state,
            s,
            path,
            format!("Close case {case_ref}?"),
            "Every email still to come for it is cancelled and nothing more is planned. Emails already sent stay in its history.",
            format!("Yes, close case {case_ref}"),
            back,
        );
    }
    if let Err(e) = edit::close_case(&state.pool, case_ref).await {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    state
        .recorded(s, "close", &format!("case:{case_ref}"), "")
        .await;
    let ctx = super::base(s, "authorities", &format!("Case {case_ref} closed"));
    state.render(
        "closed.html",
        minijinja::context! { case_ref => case_ref, back => back, ..ctx },
    )
}

/// Why a visit moved to `to` looks wrong: in the past, or over a year ahead.
fn implausible_visit(today: NaiveDate, to: NaiveDate) -> Option<String> {
    if to < today {
        Some(format!("{} is in the past", ukdate(to)))
    } else if to > today + chrono::Months::new(12) {
        Some(format!("{} is more than a year ahead", ukdate(to)))
    } else {
        None
    }
}

pub async fn visit_action(
    State(state): State<Shared>,
    Path((case_ref, visit_no, action)): Path<(String, u32, String)>,
    Editing { session: s, form }: Editing<VisitForm>,
) -> Response {
    let Ok(change) = action.parse::<VisitChange>() else {
        return no_such_change();
    };
    let back = authority_of_case(&state, &case_ref).await;
    let notice;
    let (result, detail) = match change {
        VisitChange::Move => {
            let field = DateField {
                state: &state,
                s: &s,
                back: &back,
                form_id: format!("move-{case_ref}-{visit_no}"),
                label: "The visit's new first on-site day",
            };
            let date = match field.date(&form.date).await {
                Ok(d) => d,
                Err(page) => return page,
            };
            let doubt = implausible_visit(state.today(), date);
            if let Err(page) = field.unless_doubted(&form.date, doubt).await {
                return page;
            }
            let was_cancelled = state_of_visit(&state, &case_ref, visit_no).await;
            notice = format!(
                "Visit {visit_no} of {case_ref} now starts on {}{}. Its requests, notices and reminders move with it.",
                ukdate(date),
                if was_cancelled {
                    " and is no longer cancelled"
                } else {
                    ""
                }
            );
            (
                edit::move_visit(&state.pool, &case_ref, visit_no, date).await,
                date.to_string(),
            )
        }
        VisitChange::Cancel => {
            if !form.date.sure() {
                return ask_first(
                    &state,
                    &s,
                    format!("/visits/{}/{visit_no}/cancel", super::path_part(&case_ref)),
                    format!("Cancel visit {visit_no} of {case_ref}?"),
                    "Its requests, notices and reminders still to come are cancelled. Moving it to a new date later reinstates it.",
                    format!("Yes, cancel visit {visit_no} of {case_ref}"),
                    &back,
                );
            }
            notice = format!(
                "Visit {visit_no} of {case_ref} is cancelled. Its emails still to come will not go."
            );
            (
                edit::cancel_visit(&state.pool, &case_ref, visit_no).await,
                String::new(),
            )
        }
        VisitChange::Audited => {
            let refs = vec![form.refs.clone()];
            match edit::set_audited(&state.pool, &case_ref, visit_no, &refs).await {
                Err(EditError::Invalid(why)) => {
                    let form_id = format!("audited-{case_ref}-{visit_no}");
                    let typed = [("refs", form.refs.clone())].into();
                    let message = format!("The audited cases: {why}");
                    return show(
                        &state,
                        &s,
                        &back,
                        problem(form_id, "refs", typed, message, false),
                    )
                    .await;
                }
                result => {
                    notice = format!(
                        "The audited cases for visit {visit_no} of {case_ref} are recorded. The authority is told which to submit on the notice's day."
                    );
                    (result, refs.join(";"))
                }
            }
        }
    };
    let action = format!("visit {visit_no}: {}", <&str>::from(change));
    changed(
        &state,
        &s,
        result,
        &action,
        format!("case:{case_ref}"),
        detail,
        &back,
        notice,
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
    let notice;
    let result = match change {
        SeminarChange::Confirm => {
            notice = format!(
                "Seminar {seminar_ref} is confirmed. Its invitations go at the first chance, once it has a timetable, and at least 15 working days before."
            );
            edit::confirm_seminar(&state.pool, &seminar_ref).await
        }
        SeminarChange::Cancel => {
            if form.sure != "yes" {
                return ask_first(
                    &state,
                    &s,
                    format!("/seminars/{}/cancel", super::path_part(&seminar_ref)),
                    format!("Cancel seminar {seminar_ref}?"),
                    "Each delegate is told it is cancelled, with a calendar cancellation, and nothing else goes for it.",
                    format!("Yes, cancel seminar {seminar_ref}"),
                    &form.back,
                );
            }
            notice = format!(
                "Seminar {seminar_ref} is cancelled. Each delegate is told on the next working day at the latest; nothing else goes for it."
            );
            edit::cancel_seminar(&state.pool, &seminar_ref, state.today()).await
        }
        SeminarChange::Timetable => match crate::records::Timetable::parse(&form.timetable) {
            Ok(timetable) => {
                detail = timetable.to_string();
                notice = format!(
                    "The timetable of {seminar_ref} is recorded. Invitations still to go carry it."
                );
                edit::set_timetable(&state.pool, &seminar_ref, &timetable).await
            }
            Err(e) => {
                let typed = [("timetable", form.timetable.clone())].into();
                let p = problem(
                    format!("timetable-{seminar_ref}"),
                    "timetable",
                    typed,
                    format!("The timetable: {e}"),
                    false,
                );
                return show(&state, &s, &form.back, p).await;
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
        notice,
    )
    .await
}

pub async fn conversation_action(
    State(state): State<Shared>,
    Path((seminar_ref, code)): Path<(String, String)>,
    Editing { session: s, form }: Editing<DateForm>,
) -> Response {
    let field = DateField {
        state: &state,
        s: &s,
        back: &code,
        form_id: format!("talk-{seminar_ref}"),
        label: "The day of the conversation",
    };
    let date = match field.date(&form).await {
        Ok(d) => d,
        Err(page) => return page,
    };
    let doubt = (date > state.today()).then(|| {
        format!(
            "{} is in the future: record a conversation once it has taken place",
            ukdate(date)
        )
    });
    if let Err(page) = field.unless_doubted(&form, doubt).await {
        return page;
    }
    let result = edit::record_conversation(&state.pool, &seminar_ref, &code, date).await;
    changed(
        &state,
        &s,
        result,
        "conversation",
        format!("seminar:{seminar_ref}"),
        format!("{code} {date}"),
        &code,
        format!("The conversation about {seminar_ref} is recorded as held on {}. The senior HMI is reminded to send the record to the director.", ukdate(date)),
    )
    .await
}

/// An authority's details, as its page's form sends them.
#[derive(Deserialize)]
pub struct DetailsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    dcs_name: String,
    #[serde(default)]
    dcs_email: String,
    #[serde(default)]
    coordinator_email: String,
}

/// The first field of the details form that cannot be used, and why.
fn bad_detail(form: &DetailsForm) -> Option<(&'static str, String)> {
    use crate::domain::{EmailAddress, MAX_TEXT_CHARS, check_text};
    for (field, label, value) in [
        ("name", "The authority's name", &form.name),
        ("dcs_name", "The director's name", &form.dcs_name),
    ] {
        if value.trim().is_empty() {
            return Some((field, format!("{label} must not be empty")));
        }
        if let Err(e) = check_text(value.trim(), MAX_TEXT_CHARS) {
            return Some((field, format!("{label}: {e}")));
        }
    }
    if let Err(e) = EmailAddress::parse(form.dcs_email.trim()) {
        return Some(("dcs_email", format!("The director's email address: {e}")));
    }
    let coordinator = form.coordinator_email.trim();
    if !coordinator.is_empty()
        && let Err(e) = EmailAddress::parse(coordinator)
    {
        return Some((
            "coordinator_email",
            format!("The coordinator's email address: {e}"),
        ));
    }
    None
}

pub async fn details_action(
    State(state): State<Shared>,
    Path(code): Path<String>,
    Editing { session: s, form }: Editing<DetailsForm>,
) -> Response {
    if let Some((field, message)) = bad_detail(&form) {
        let values = [
            ("name", form.name.clone()),
            ("dcs_name", form.dcs_name.clone()),
            ("dcs_email", form.dcs_email.clone()),
            ("coordinator_email", form.coordinator_email.clone()),
        ];
        let p = FormProblem {
            form: "details".into(),
            field: format!("details-{field}"),
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            message,
            confirm: false,
        };
        return show(&state, &s, &code, p).await;
    }
    let parse = |v: &str| crate::domain::EmailAddress::parse(v.trim()).ok();
    let (Some(dcs_email), coordinator) = (parse(&form.dcs_email), parse(&form.coordinator_email))
    else {
        return (
            StatusCode::BAD_REQUEST,
            "the director's email address cannot be used",
        )
            .into_response();
    };
    let result = edit::set_authority_details(
        &state.pool,
        &code,
        form.name.trim(),
        form.dcs_name.trim(),
        &dcs_email,
        coordinator.as_ref(),
    )
    .await;
    let detail = format!(
        "{}; {} <{}>; coordinator {}",
        form.name.trim(),
        form.dcs_name.trim(),
        dcs_email,
        coordinator
            .as_ref()
            .map_or("none".to_string(), |c| c.to_string())
    );
    changed(
        &state,
        &s,
        result,
        "details",
        format!("authority:{code}"),
        detail,
        &code,
        format!("The details of {code} are saved. Every email still to come goes to the addresses recorded now."),
    )
    .await
}
