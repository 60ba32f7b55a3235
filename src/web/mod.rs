//! The console: server-rendered pages for the people who act on the dates,
//! served by the daemon. Every page and action needs a session; every form
//! carries the session's CSRF token; editors act, viewers look. Actions call
//! the same library functions as the commands, are written to the audit log,
//! and wake the daemon so that a change is planned at once.
//!
//! A file per area: `sign_in` (sessions' doors), `today` (Today and the
//! agenda), `outbox` (one email: actions, preview, attachments),
//! `authorities` (an authority and its timeline), `records` (the forms that
//! change records), `feeds` (metrics and calendars, reached without a
//! session), `problems` (refusals as pages). `session` holds the extractors
//! every handler starts from.

pub mod auth;
mod authorities;
mod feeds;
mod import;
mod outbox;
mod problems;
mod records;
pub mod server;
pub mod session;
mod sign_in;
mod status;
pub mod timeline;
mod today;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use minijinja::{Environment, context};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::agenda::{self, AgendaItem, Window};
use crate::db::Pool;
use crate::delivery::Engine;
use auth::{Session, Sessions};

/// What every request may use.
pub struct WebState {
    pub pool: Pool,
    /// The settings, templates and mailer in force, replaced on reload.
    pub engine: watch::Receiver<Arc<Engine>>,
    /// Tells the daemon a record changed: plan now, not at the next poll.
    pub wake: Arc<Notify>,
    sessions: Sessions,
    /// Requests reached without a session (feeds, metrics), by client address.
    unsigned: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    pages: Environment<'static>,
    /// Renders `/metrics`, served while `web.metrics` is on.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// What the last change did, by session (its CSRF token), shown once on
    /// the page the change leads back to. One per session: a new one replaces it.
    notices: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

type Shared = Arc<WebState>;

fn pages(tz: chrono_tz::Tz) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("ukdate", crate::delivery::compose::templates::ukdate);
    env.add_filter("uktime", move |stored: String| local_in(tz, &stored));
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
        ("problem.html", include_str!("templates/problem.html")),
        ("confirm.html", include_str!("templates/confirm.html")),
        ("closed.html", include_str!("templates/closed.html")),
        ("status.html", include_str!("templates/status.html")),
        ("import.html", include_str!("templates/import.html")),
        ("imported.html", include_str!("templates/imported.html")),
    ] {
        env.add_template(name, source)
            .expect("the console's templates are part of the program");
    }
    env
}

/// Feed and metrics requests a client address may make a minute: calendar
/// clients poll hourly and monitors every few seconds, so this is room for
/// several of each behind one address.
const UNSIGNED_PER_MINUTE: u32 = 120;

impl WebState {
    /// Whether a request reached without a session may go ahead.
    fn unsigned_allowed(&self, from: std::net::IpAddr) -> bool {
        auth::allowed(&self.unsigned, &from)
    }

    pub fn new(
        pool: Pool,
        engine: watch::Receiver<Arc<Engine>>,
        wake: Arc<Notify>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> WebState {
        let tz = engine.borrow().settings.time_zone();
        WebState {
            pool,
            engine,
            metrics,
            wake,
            sessions: Sessions::default(),
            unsigned: governor::DefaultKeyedRateLimiter::keyed(governor::Quota::per_minute(
                std::num::NonZeroU32::new(UNSIGNED_PER_MINUTE).expect("not zero"),
            )),
            pages: pages(tz),
            notices: Default::default(),
        }
    }

    /// Today where keydates runs.
    fn today(&self) -> chrono::NaiveDate {
        Utc::now()
            .with_timezone(&self.engine.borrow().settings.time_zone())
            .date_naive()
    }

    /// After a change made through the console: written to the audit log,
    /// and the daemon woken to plan it now.
    async fn recorded(&self, s: &Session, action: &str, target: &str, detail: &str) {
        if let Err(e) =
            crate::records::audit::record(&self.pool, Utc::now(), &s.user, action, target, detail)
                .await
        {
            tracing::error!(error = format!("{e:#}"), "audit log not written");
        }
        self.wake.notify_one();
    }

    /// Keeps what a change did, for the next page this session sees.
    fn tell(&self, s: &Session, notice: String) {
        let mut notices = self.notices.lock().expect("not poisoned");
        // Sessions that never came back for theirs are bounded by the sessions.
        if notices.len() > 10_000 {
            notices.clear();
        }
        notices.insert(s.csrf.clone(), notice);
    }

    /// What the last change did, once.
    fn told(&self, s: &Session) -> Option<String> {
        self.notices.lock().expect("not poisoned").remove(&s.csrf)
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
        .route("/", get(today::today))
        .route("/agenda", get(today::agenda_page))
        .route("/outbox/{id}", get(outbox::outbox_page))
        .route("/outbox/{id}/{action}", post(outbox::outbox_action))
        .route("/outbox/{id}/preview", get(outbox::preview_page))
        .route("/preview", get(outbox::planned_preview))
        .route("/outbox/{id}/preview.html", get(outbox::preview_html))
        .route("/outbox/{id}/annex/{n}", get(outbox::annex_download))
        .route("/status", get(status::status_page))
        .route(
            "/import",
            get(import::import_page).post(import::check_file).layer(
                axum::extract::DefaultBodyLimit::max(import::MAX_FILE_BYTES + 64 * 1024),
            ),
        )
        .route(
            "/import/confirm",
            post(import::import_file)
                // The file comes back as a form field, escaped: up to six bytes a byte.
                .layer(axum::extract::DefaultBodyLimit::max(
                    6 * import::MAX_FILE_BYTES + 64 * 1024,
                )),
        )
        .route("/authorities", get(authorities::authorities_page))
        .route("/authorities/{code}", get(authorities::authority_page))
        .route("/authorities/{code}/details", post(records::details_action))
        .route("/cases/{case}/{action}", post(records::case_action))
        .route("/visits/{case}/{no}/{action}", post(records::visit_action))
        .route(
            "/seminars/{seminar}/{action}",
            post(records::seminar_action),
        )
        .route(
            "/seminars/{seminar}/conversation/{code}",
            post(records::conversation_action),
        )
        .route(
            "/login",
            get(sign_in::login_page)
                .post(sign_in::login)
                // A name and a password: anything larger is refused unread.
                .layer(axum::extract::DefaultBodyLimit::max(4096)),
        )
        .route("/logout", post(sign_in::logout))
        .route("/static/style.css", get(style))
        .route("/metrics", get(feeds::metrics_page))
        .route("/calendar/{kind}/{name}/{file}", get(feeds::calendar_feed))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            problems::as_pages,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            for_this_host,
        ))
        .with_state(state)
}

/// Answers only requests for this console's own names (`web.public_url`,
/// loopback on its port): a page whose name was pointed here afterwards
/// (DNS rebinding) reaches nothing.
async fn for_this_host(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if state.engine.borrow().settings.web.serves_host(host) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "not a name of this console",
        )
            .into_response()
    }
}

async fn security_headers(mut response: Response) -> Response {
    let csp = if response.extensions().get::<outbox::EmailPolicy>().is_some() {
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    };
    let h = response.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(csp));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Serves the console until `stop` is cancelled, within the limits the
/// process's file limit allows.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Shared,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let limits = server::Limits::from_file_limit();
    tracing::debug!(?limits, "console limits");
    server::serve(listener, router(state), limits, stop).await
}

/// What every page's layout needs.
fn base(s: &Session, page: &str, title: &str) -> minijinja::Value {
    context! {
        user => s.user, role => <&str>::from(s.role), csrf => s.csrf,
        page => page, title => title, notice => (),
    }
}

async fn style() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("templates/style.css"),
    )
}

/// Agenda lines as the console shows them: a line waiting for a date says
/// what it waits for and links to the form on the authority's page that
/// records it, instead of naming a command (people have the forms).
fn for_people<'a>(
    items: impl IntoIterator<Item = &'a AgendaItem>,
    settings: &crate::config::Settings,
) -> Vec<minijinja::Value> {
    use crate::config::rules::Anchor;
    items
        .into_iter()
        .map(|i| {
            let awaited = match (i.status, &i.authority) {
                (agenda::AgendaStatus::Waiting, Some(code)) => settings
                    .rules
                    .iter()
                    .find(|r| r.id == i.rule)
                    .and_then(|r| Some((r.anchor, r.anchor.awaited()?.0, code))),
                _ => None,
            };
            let Some((anchor, what, code)) = awaited else {
                return context! { form => (), ..minijinja::Value::from_serialize(i) };
            };
            let (form, label) = match anchor {
                Anchor::ConversationOn => ("talk", "Record the conversation about"),
                _ => ("event", "Record the planning event for"),
            };
            let subject = i.subject.to_string();
            let form = context! {
                href => format!("/authorities/{}#{form}-{subject}-day", path_part(code)),
                label => format!("{label} {subject}"),
            };
            context! { detail => what, form => form, ..minijinja::Value::from_serialize(i) }
        })
        .collect()
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

/// A stored instant as people read it: the day and the time on the clock
/// where keydates runs ("2 December 2026, 09:00"); as stored when unreadable.
fn local_time(settings: &crate::config::Settings, stored: &str) -> String {
    local_in(settings.time_zone(), stored)
}

fn local_in(tz: chrono_tz::Tz, stored: &str) -> String {
    match crate::outbox::parse_ts(stored) {
        Some(t) => t.with_timezone(&tz).format("%-d %B %Y, %H:%M").to_string(),
        None => stored.to_string(),
    }
}

/// A value placed in a URL path, percent-encoded so that no record field can
/// change where a link or form goes.
fn path_part(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}
