//! The authorities, and one authority's page: its cases, visits, seminars,
//! timeline, planned emails and history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use minijinja::context;

use super::auth::Session;
use super::session::SignedIn;
use super::{Shared, WebState, agenda_items, base, failed_page, timeline};
use crate::agenda::{AgendaItem, Window};
use crate::config::WebRole;
use crate::plan;
use crate::records::{self, audit};

pub async fn authorities_page(State(state): State<Shared>, SignedIn(s): SignedIn) -> Response {
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let list: Vec<_> = records
        .authorities
        .values()
        .map(|a| {
            let cases: Vec<_> = records
                .cases
                .values()
                .filter(|c| c.authority_code == a.code)
                .map(|c| context! { case_ref => c.case_ref, closed => c.closed })
                .collect();
            context! { code => a.code, name => a.name, region => a.region.name(), cases => cases }
        })
        .collect();
    let ctx = base(&s, "authorities", "Authorities");
    state.render("authorities.html", context! { authorities => list, ..ctx })
}

/// A form's value that could not be used, or that looks wrong: shown back
/// in its form, with an error summary at the top of the page.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FormProblem {
    /// The form's id; its fields' ids start with it.
    pub form: String,
    /// The field to go to.
    pub field: String,
    /// What was typed, by field name.
    pub values: std::collections::BTreeMap<String, String>,
    pub message: String,
    /// It only looks wrong: the form offers to record it anyway.
    pub confirm: bool,
}

pub async fn authority_page(
    State(state): State<Shared>,
    SignedIn(s): SignedIn,
    Path(code): Path<String>,
) -> Response {
    authority_view(&state, &s, &code, None).await
}

/// An authority's page, with a form's problem when there is one.
pub async fn authority_view(
    state: &WebState,
    s: &Session,
    code: &str,
    problem: Option<FormProblem>,
) -> Response {
    let code = code.to_string();
    let settings = state.engine.borrow().settings.clone();
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let Some(authority) = records.authorities.get(code.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such authority").into_response();
    };
    let items: Vec<AgendaItem> = match agenda_items(state, Window::default()).await {
        Ok(items) => items
            .into_iter()
            .filter(|i| i.authority.as_deref() == Some(code.as_str()))
            .collect(),
        Err(e) => return failed_page(e),
    };
    let calendar = settings.calendar();
    let cases: Vec<_> = records
        .cases
        .values()
        .filter(|c| c.authority_code == code)
        .collect();
    let mut entries: Vec<(NaiveDate, String, String, String)> = items
        .iter()
        .filter_map(|i| {
            let status: &str = i.status.into();
            Some((
                i.due_on?,
                i.rule.clone(),
                status.to_string(),
                i.rule.clone(),
            ))
        })
        .collect();
    let record = |d: NaiveDate, label: String| (d, label, "record".to_string(), String::new());
    for c in &cases {
        entries.push(record(
            c.report_received_on,
            format!("{}: report received", c.case_ref),
        ));
        if let Some(due) = plan::plan_due_on(&calendar, c.report_received_on) {
            entries.push(record(due, format!("{}: plan due", c.case_ref)));
        }
        if let Some(on) = c.planning_event_on {
            entries.push(record(on, format!("{}: planning event", c.case_ref)));
        }
    }
    let visits: Vec<_> = records
        .visits
        .iter()
        .filter(|v| cases.iter().any(|c| c.case_ref == v.case_ref))
        .collect();
    for v in &visits {
        entries.push(record(v.starts_on, format!("visit {} starts", v.visit_no)));
    }
    let seminar_refs: std::collections::BTreeSet<&str> = records
        .delegates
        .iter()
        .filter(|d| d.authority_code == code)
        .map(|d| d.seminar_ref.as_str())
        .collect();
    let seminars: Vec<_> = seminar_refs
        .iter()
        .filter_map(|r| records.seminars.get(*r))
        .collect();
    for s in &seminars {
        entries.push(record(s.held_on, format!("seminar {}", s.seminar_ref)));
    }
    let today = state.today();
    let case_views: Vec<_> = cases
        .iter()
        .map(|c| {
            let vs: Vec<_> = visits
                .iter()
                .filter(|v| v.case_ref == c.case_ref)
                .map(|v| context! { visit_no => v.visit_no, starts_on => v.starts_on, cancelled => v.cancelled, audited_cases => v.audited_cases })
                .collect();
            context! { case_ref => c.case_ref, judgement => c.judgement.id(), visits => vs, closed => c.closed }
        })
        .collect();
    let seminar_views: Vec<_> = seminars
        .iter()
        .map(|s| {
            context! {
                seminar_ref => s.seminar_ref, title => s.title, held_on => s.held_on,
                timetable => s.timetable.to_string(),
            }
        })
        .collect();
    let mut audit = Vec::new();
    let own = std::iter::once(format!("authority:{code}"));
    for target in own
        .chain(cases.iter().map(|c| format!("case:{}", c.case_ref)))
        .chain(
            seminars
                .iter()
                .map(|s| format!("seminar:{}", s.seminar_ref)),
        )
    {
        audit.extend(
            audit::for_target(&state.pool, &target)
                .await
                .unwrap_or_default(),
        );
    }
    audit.sort_by(|a, b| b.at.cmp(&a.at));
    let title = match &problem {
        Some(_) => format!("Error: {}", authority.name),
        None => authority.name.clone(),
    };
    let ctx = base(s, "authorities", &title);
    state.render(
        "authority.html",
        context! {
            authority => context! {
                code => authority.code, name => authority.name, region => authority.region.name(),
                dcs_name => authority.dcs_name, dcs_email => authority.dcs_email,
                coordinator_email => authority.coordinator_email,
            },
            timeline => timeline::layout(entries, today),
            legend => <timeline::Shape as strum::IntoEnumIterator>::iter()
                .map(|k| context! { shape => k, meaning => k.meaning() })
                .collect::<Vec<_>>(),
            items => super::for_people(&items, &settings),
            cases => case_views,
            seminars => seminar_views,
            can_act => s.role == WebRole::Editor,
            audit => audit,
            notice => if problem.is_none() { state.told(s) } else { None },
            problem => problem,
            ..ctx
        },
    )
}
