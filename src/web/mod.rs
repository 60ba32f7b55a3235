//! The console: server-rendered pages for the people who act on the dates,
//! served by the daemon. Every page and action needs a session; every form
//! carries the session's CSRF token; editors act, viewers look. Actions call
//! the same library functions as the commands, are written to the audit log,
//! and wake the daemon so that a change is planned at once.

pub mod auth;
pub mod timeline;

use std::collections::HashMap;
use std::sync::Arc;

use crate::db::Pool;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{Duration, NaiveDate, Utc};
use minijinja::{Environment, context};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::agenda::{self, AgendaItem, AgendaStatus, Window};
use crate::config::WebRole;
use crate::deliver::Engine;
use crate::outbox::{self, Status};
use crate::{audit, plan, records};
use auth::{COOKIE, Session, Sessions};

/// What every request may use.
pub struct WebState {
    pub pool: Pool,
    /// The settings, templates and mailer in force, replaced on reload.
    pub engine: watch::Receiver<Arc<Engine>>,
    /// Tells the daemon a record changed: plan now, not at the next poll.
    pub wake: Arc<Notify>,
    sessions: Sessions,
    pages: Environment<'static>,
    /// Renders `/metrics` when `web.metrics` is on.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

type Shared = Arc<WebState>;

fn pages() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("ukdate", crate::templates::ukdate);
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("rows.html", include_str!("templates/rows.html")),
        ("login.html", include_str!("templates/login.html")),
        ("today.html", include_str!("templates/today.html")),
        ("agenda.html", include_str!("templates/agenda.html")),
        ("outbox.html", include_str!("templates/outbox.html")),
        (
            "authorities.html",
            include_str!("templates/authorities.html"),
        ),
        ("authority.html", include_str!("templates/authority.html")),
        ("preview.html", include_str!("templates/preview.html")),
    ] {
        env.add_template(name, source)
            .expect("the console's templates are part of the program");
    }
    env
}

impl WebState {
    pub fn new(
        pool: Pool,
        engine: watch::Receiver<Arc<Engine>>,
        wake: Arc<Notify>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> WebState {
        WebState {
            pool,
            engine,
            metrics,
            wake,
            sessions: Sessions::default(),
            pages: pages(),
        }
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Response {
        match self.pages.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, page = name, "console page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be built",
                )
                    .into_response()
            }
        }
    }
}

/// The routes, with the security headers on every response.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(today))
        .route("/agenda", get(agenda_page))
        .route("/outbox/{id}", get(outbox_page))
        .route("/outbox/{id}/{action}", post(outbox_action))
        .route("/outbox/{id}/preview", get(preview_page))
        .route("/preview", get(planned_preview))
        .route("/outbox/{id}/preview.html", get(preview_html))
        .route("/outbox/{id}/annex/{n}", get(annex_download))
        .route("/authorities", get(authorities_page))
        .route("/authorities/{code}", get(authority_page))
        .route("/cases/{case}/{action}", post(case_action))
        .route("/visits/{case}/{no}/{action}", post(visit_action))
        .route("/seminars/{seminar}/{action}", post(seminar_action))
        .route(
            "/seminars/{seminar}/conversation/{code}",
            post(conversation_action),
        )
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/style.css", get(style))
        .route("/metrics", get(metrics_page))
        .route("/calendar/{file}", get(calendar_feed))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let csp = if response.extensions().get::<EmailPolicy>().is_some() {
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    };
    let h = response.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(csp));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Serves the console until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await?;
    Ok(())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn session(state: &WebState, headers: &HeaderMap) -> Option<Session> {
    state.sessions.get(&cookie_token(headers)?)
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The session of a form post that may act: signed in, with the form's
/// CSRF token, as an editor.
fn acting(
    state: &WebState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Box<Response>> {
    let refuse = |why: &'static str| Box::new((StatusCode::FORBIDDEN, why).into_response());
    let s = session(state, headers).ok_or_else(|| Box::new(to_login()))?;
    if form.get("csrf") != Some(&s.csrf) {
        return Err(refuse("the form is out of date: reload the page"));
    }
    if s.role != WebRole::Editor {
        return Err(refuse("viewers cannot change anything"));
    }
    Ok(s)
}

fn base(s: &Session, page: &str, title: &str) -> minijinja::Value {
    context! {
        user => s.user, role => <&str>::from(s.role), csrf => s.csrf,
        page => page, title => title, notice => (),
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("templates/style.css"),
    )
}

async fn login_page(
    State(state): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    state.render(
        "login.html",
        context! { user => (), page => "login", title => "Sign in", notice => (), failed => q.contains_key("failed") },
    )
}

async fn login(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let users = state.engine.borrow().settings.web.users.clone();
    let name = form.get("name").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    match state.sessions.login(&users, name, password).await {
        Some(token) => {
            tracing::info!(user = name, "console sign-in");
            (
                [(
                    header::SET_COOKIE,
                    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"),
                )],
                Redirect::to("/"),
            )
                .into_response()
        }
        None => {
            tracing::warn!(user = name, "console sign-in refused");
            Redirect::to("/login?failed").into_response()
        }
    }
}

async fn logout(
    State(state): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let (Some(token), Some(s)) = (cookie_token(&headers), session(&state, &headers))
        && form.get("csrf") == Some(&s.csrf)
    {
        state.sessions.logout(&token);
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/"),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

/// The agenda as the command line shows it, as of now.
async fn agenda_items(state: &WebState, window: Window) -> anyhow::Result<Vec<AgendaItem>> {
    let settings = state.engine.borrow().settings.clone();
    agenda::current(&state.pool, &settings, Utc::now(), window).await
}

fn failed_page(e: anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "console page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the records could not be read",
    )
        .into_response()
}

async fn today(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let today = Utc::now()
        .with_timezone(&state.engine.borrow().settings.time_zone())
        .date_naive();
    let items = match agenda_items(&state, Window::default()).await {
        Ok(items) => items,
        Err(e) => return failed_page(e),
    };
    let recent = today - Duration::days(30);
    let waiting: Vec<_> = items
        .iter()
        .filter(|i| {
            matches!(
                i.status,
                AgendaStatus::AwaitingConfirmation | AgendaStatus::Waiting
            )
        })
        .collect();
    let today_items: Vec<_> = items.iter().filter(|i| i.due_on == Some(today)).collect();
    let problems: Vec<_> = items
        .iter()
        .filter(|i| matches!(i.status, AgendaStatus::Failed | AgendaStatus::Missed))
        .filter(|i| i.due_on.is_some_and(|d| d >= recent) || i.status == AgendaStatus::Failed)
        .collect();
    let ctx = base(&s, "today", "Today");
    state.render(
        "today.html",
        context! { today => today, waiting => waiting, today_items => today_items, problems => problems, ..ctx },
    )
}

async fn agenda_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let date = |k: &str| {
        q.get(k)
            .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
    };
    let window = Window {
        from: date("from"),
        to: date("to"),
    };
    let mut items = match agenda_items(&state, window).await {
        Ok(items) => items,
        Err(e) => return failed_page(e),
    };
    let wanted = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    };
    if let Some(region) = wanted("region") {
        let codes: std::collections::HashSet<String> = match records::store::load(&state.pool).await
        {
            Ok(r) => r
                .authorities
                .values()
                .filter(|a| {
                    a.region.id() == region || a.region.name().to_ascii_lowercase() == region
                })
                .map(|a| a.code.clone())
                .collect(),
            Err(e) => return failed_page(e),
        };
        items.retain(|i| i.authority.as_ref().is_some_and(|a| codes.contains(a)));
    }
    if let Some(a) = wanted("authority") {
        items.retain(|i| {
            i.authority
                .as_deref()
                .is_some_and(|x| x.to_ascii_lowercase() == a)
        });
    }
    if let Some(r) = wanted("rule") {
        items.retain(|i| i.rule.to_ascii_lowercase().contains(&r));
    }
    if let Some(st) = wanted("status") {
        items.retain(|i| <&str>::from(i.status) == st.replace(' ', "_"));
    }
    // Every filter present, so the form can show what was asked.
    let filters: std::collections::BTreeMap<&str, String> =
        ["authority", "region", "rule", "status", "from", "to"]
            .into_iter()
            .map(|k| (k, q.get(k).cloned().unwrap_or_default()))
            .collect();
    let ctx = base(&s, "agenda", "Agenda");
    state.render(
        "agenda.html",
        context! { items => items, filters => filters, ..ctx },
    )
}

/// What an editor may do to a row in its state.
fn actions_for(status: Status) -> &'static [&'static str] {
    match status {
        Status::AwaitingConfirmation => &["confirm", "cancel"],
        Status::Pending => &["cancel"],
        Status::Failed | Status::Missed => &["retry", "cancel"],
        Status::Cancelled => &["retry"],
        Status::Sending | Status::Sent => &[],
    }
}

async fn outbox_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let row = match outbox::get(&state.pool, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such email").into_response(),
        Err(e) => return failed_page(e),
    };
    let audit = audit::for_target(&state.pool, &format!("outbox:{id}"))
        .await
        .unwrap_or_default();
    let attempts = outbox::attempts(&state.pool, id).await.unwrap_or_default();
    let ctx = base(&s, "outbox", &format!("{} {}", row.rule, row.subject));
    state.render(
        "outbox.html",
        context! {
            can_act => s.role == WebRole::Editor,
            actions => actions_for(row.status),
            row => row,
            audit => audit,
            attempts => attempts,
            ..ctx
        },
    )
}

async fn outbox_action(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match acting(&state, &headers, &form) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let now = Utc::now();
    let done = match action.as_str() {
        "confirm" => outbox::confirm(&state.pool, id, &s.user, now).await,
        "retry" => outbox::retry(&state.pool, id, now).await,
        "cancel" => outbox::cancel(&state.pool, id, now).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    if let Err(e) = done {
        return (StatusCode::CONFLICT, e.to_string()).into_response();
    }
    if let Err(e) = audit::record(
        &state.pool,
        now,
        &s.user,
        &action,
        &format!("outbox:{id}"),
        "",
    )
    .await
    {
        tracing::error!(error = format!("{e:#}"), "audit log not written");
    }
    state.wake.notify_one();
    Redirect::to(&format!("/outbox/{id}")).into_response()
}

async fn authorities_page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let list: Vec<_> = records
        .authorities
        .values()
        .map(|a| {
            let cases: Vec<&str> = records
                .cases
                .values()
                .filter(|c| c.authority_code == a.code)
                .map(|c| c.case_ref.as_str())
                .collect();
            context! { code => a.code, name => a.name, region => a.region.name(), cases => cases }
        })
        .collect();
    let ctx = base(&s, "authorities", "Authorities");
    state.render("authorities.html", context! { authorities => list, ..ctx })
}

async fn authority_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let settings = state.engine.borrow().settings.clone();
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let Some(authority) = records.authorities.get(&code) else {
        return (StatusCode::NOT_FOUND, "no such authority").into_response();
    };
    let items: Vec<AgendaItem> = match agenda_items(&state, Window::default()).await {
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
    let today = Utc::now().with_timezone(&settings.time_zone()).date_naive();
    let case_views: Vec<_> = cases
        .iter()
        .map(|c| {
            let vs: Vec<_> = visits
                .iter()
                .filter(|v| v.case_ref == c.case_ref)
                .map(|v| context! { visit_no => v.visit_no, starts_on => v.starts_on, cancelled => v.cancelled, audited_cases => v.audited_cases })
                .collect();
            context! { case_ref => c.case_ref, judgement => c.judgement.id(), visits => vs }
        })
        .collect();
    let seminar_views: Vec<_> = seminars
        .iter()
        .map(|s| context! { seminar_ref => s.seminar_ref, title => s.title, held_on => s.held_on })
        .collect();
    let mut audit = Vec::new();
    for target in cases.iter().map(|c| format!("case:{}", c.case_ref)).chain(
        seminars
            .iter()
            .map(|s| format!("seminar:{}", s.seminar_ref)),
    ) {
        audit.extend(
            audit::for_target(&state.pool, &target)
                .await
                .unwrap_or_default(),
        );
    }
    audit.sort_by(|a, b| b.at.cmp(&a.at));
    let ctx = base(&s, "authorities", &authority.name);
    state.render(
        "authority.html",
        context! {
            authority => context! { code => authority.code, name => authority.name },
            timeline => timeline::layout(entries, today),
            items => items,
            cases => case_views,
            seminars => seminar_views,
            can_act => s.role == WebRole::Editor,
            audit => audit,
            ..ctx
        },
    )
}

fn form_date(form: &HashMap<String, String>) -> Result<NaiveDate, Box<Response>> {
    form.get("date")
        .and_then(|d| crate::calendar::parse_date(d).ok())
        .ok_or_else(|| {
            Box::new(
                (
                    StatusCode::BAD_REQUEST,
                    "give a date (YYYY-MM-DD) from 2000 to 2100",
                )
                    .into_response(),
            )
        })
}

/// After a record change: audit it, wake the daemon, and go back to the authority.
async fn changed(
    state: &WebState,
    s: &Session,
    result: Result<(), crate::records::edit::EditError>,
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
    Redirect::to(&format!("/authorities/{back}")).into_response()
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

async fn case_action(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((case_ref, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (s, date) =
        match acting(&state, &headers, &form).and_then(|s| form_date(&form).map(|d| (s, d))) {
            Ok(both) => both,
            Err(refused) => return *refused,
        };
    let result = match action.as_str() {
        "plan-received" => records::edit::plan_received(&state.pool, &case_ref, date).await,
        "planning-event" => records::edit::set_planning_event(&state.pool, &case_ref, date).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    let back = authority_of_case(&state, &case_ref).await;
    changed(
        &state,
        &s,
        result,
        &action,
        format!("case:{case_ref}"),
        date.to_string(),
        &back,
    )
    .await
}

async fn visit_action(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((case_ref, visit_no, action)): Path<(String, u32, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match acting(&state, &headers, &form) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let (result, detail) = match action.as_str() {
        "move" => match form_date(&form) {
            Ok(d) => (
                records::edit::move_visit(&state.pool, &case_ref, visit_no, d).await,
                d.to_string(),
            ),
            Err(bad) => return *bad,
        },
        "cancel" => (
            records::edit::cancel_visit(&state.pool, &case_ref, visit_no).await,
            String::new(),
        ),
        "audited" => {
            let refs = vec![form.get("refs").cloned().unwrap_or_default()];
            (
                records::edit::set_audited(&state.pool, &case_ref, visit_no, &refs).await,
                refs.join(";"),
            )
        }
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    let back = authority_of_case(&state, &case_ref).await;
    let action = format!("visit {visit_no}: {action}");
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

async fn seminar_action(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((seminar_ref, action)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let s = match acting(&state, &headers, &form) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let result = match action.as_str() {
        "confirm" => records::edit::confirm_seminar(&state.pool, &seminar_ref).await,
        "cancel" => records::edit::cancel_seminar(&state.pool, &seminar_ref).await,
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    // The authority page the form was on; a code, nothing else.
    let back: String = form
        .get("back")
        .map(|b| {
            b.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect()
        })
        .unwrap_or_default();
    changed(
        &state,
        &s,
        result,
        &action,
        format!("seminar:{seminar_ref}"),
        String::new(),
        &back,
    )
    .await
}

async fn conversation_action(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((seminar_ref, code)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (s, date) =
        match acting(&state, &headers, &form).and_then(|s| form_date(&form).map(|d| (s, d))) {
            Ok(both) => both,
            Err(refused) => return *refused,
        };
    let result = records::edit::record_conversation(&state.pool, &seminar_ref, &code, date).await;
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

/// The email a row would send now, composed from the current records.
async fn composed(state: &WebState, id: i64) -> Result<crate::mail::Composed, Response> {
    let row = match outbox::get(&state.pool, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err((StatusCode::NOT_FOUND, "no such email").into_response()),
        Err(e) => return Err(failed_page(e)),
    };
    compose(state, row).await
}

async fn compose(
    state: &WebState,
    row: outbox::OutboxRow,
) -> Result<crate::mail::Composed, Response> {
    let engine = state.engine.borrow().clone();
    let records = crate::deliver::records_for(&state.pool, &row)
        .await
        .map_err(failed_page)?;
    crate::deliver::compose_row(&engine, &records, &row, Utc::now()).map_err(|e| {
        (
            StatusCode::CONFLICT,
            format!("the email cannot be built: {e}"),
        )
            .into_response()
    })
}

/// An email that is planned but not yet in the outbox, by rule and subject.
async fn planned_preview(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    let engine = state.engine.borrow().clone();
    let (Some(rule), Some(subject)) = (q.get("rule"), q.get("subject")) else {
        return (StatusCode::BAD_REQUEST, "give rule and subject").into_response();
    };
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let Some(planned) = plan::plan(&records, &engine.settings, &engine.calendar)
        .into_iter()
        .find(|a| a.rule_id == *rule && a.subject.to_string() == *subject)
    else {
        return (StatusCode::NOT_FOUND, "the records plan no such email").into_response();
    };
    match compose(&state, outbox::OutboxRow::from_planned(&planned)).await {
        Ok(c) => show_preview(&state, &s, 0, c),
        Err(r) => r,
    }
}

async fn preview_page(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(s) = session(&state, &headers) else {
        return to_login();
    };
    match composed(&state, id).await {
        Ok(c) => show_preview(&state, &s, id, c),
        Err(r) => r,
    }
}

fn show_preview(state: &WebState, s: &Session, id: i64, c: crate::mail::Composed) -> Response {
    let shown: Vec<(&str, String)> = ["From", "To", "Cc", "Reply-To", "Subject"]
        .into_iter()
        .filter_map(|name| Some((name, c.message.headers().get_raw(name)?.to_string())))
        .collect();
    let attachments: Vec<_> = c
        .attachments
        .iter()
        .map(|a| context! { name => a.name, size => a.bytes.len() })
        .collect();
    let ctx = base(s, "outbox", "Preview");
    state.render(
        "preview.html",
        context! {
            id => id, headers => shown, attachments => attachments,
            has_html => c.rendered.html.is_some(), text => c.rendered.text,
            ..ctx
        },
    )
}

/// Marks a response that shows an email's own HTML.
#[derive(Clone, Copy)]
struct EmailPolicy;

/// The HTML alternative as recipients see it. Its own policy allows the
/// email's inline styles and nothing else.
async fn preview_html(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if session(&state, &headers).is_none() {
        return to_login();
    }
    let c = match composed(&state, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(html) = c.rendered.html else {
        return (StatusCode::NOT_FOUND, "this email has no HTML version").into_response();
    };
    let mut response = Html(html).into_response();
    response.extensions_mut().insert(EmailPolicy);
    response
}

async fn annex_download(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path((id, n)): Path<(i64, usize)>,
) -> Response {
    if session(&state, &headers).is_none() {
        return to_login();
    }
    let c = match composed(&state, id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(a) = c.attachments.get(n) else {
        return (StatusCode::NOT_FOUND, "no such attachment").into_response();
    };
    let disposition = format!(
        "attachment; filename=\"{}\"",
        a.name.replace(['"', '\\'], "_")
    );
    (
        [
            (header::CONTENT_TYPE, a.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        a.bytes.clone(),
    )
        .into_response()
}

/// Counts and ages for a monitoring system; no login, as it holds no personal data.
async fn metrics_page(State(state): State<Shared>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are off (web.metrics)").into_response(),
    }
}

/// A calendar feed, for Outlook or Google to subscribe to: no session (the
/// address's token is the key), nothing without `web.calendar_secret`.
async fn calendar_feed(State(state): State<Shared>, Path(file): Path<String>) -> Response {
    let engine = state.engine.borrow().clone();
    let (Some(secret), Some(token)) = (
        &engine.settings.web.calendar_secret,
        file.strip_suffix(".ics"),
    ) else {
        return (StatusCode::NOT_FOUND, "no such calendar").into_response();
    };
    let records = match records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let Some(owner) = crate::ics::owner_for(&records, secret, token) else {
        return (StatusCode::NOT_FOUND, "no such calendar").into_response();
    };
    let items = match agenda_items(&state, Window::default()).await {
        Ok(items) => items,
        Err(e) => return failed_page(e),
    };
    let body = crate::ics::feed(
        "keydates",
        &owner,
        &items,
        &engine.settings.mail.message_id_domain,
        Utc::now(),
    );
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}
