//! The console's doors: the sign-in page, signing in and signing out.

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use serde::Deserialize;

use super::Shared;
use super::auth::{COOKIE, SignIn};
use super::session::ClientAddr;
use super::session::{Posted, token};
use axum::http::{HeaderValue, StatusCode, header};

#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
}

pub async fn login_page(State(state): State<Shared>, Query(q): Query<LoginQuery>) -> Response {
    state.render(
        "login.html",
        context! { user => (), page => "login", title => "Sign in", notice => (), failed => q.failed.is_some(), busy => false },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// A name as the log shows it: cut short and escaped, so a sign-in attempt
/// cannot fill the journal or forge a line in it.
fn as_logged(name: &str) -> String {
    let mut shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        shown.push('…');
    }
    shown
}

fn session_cookie(value: String) -> Cookie<'static> {
    Cookie::build((COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

pub async fn login(
    State(state): State<Shared>,
    ClientAddr(from): ClientAddr,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let users = state.engine.borrow().settings.web.users.clone();
    let name = as_logged(&form.name);
    match state
        .sessions
        .login(&users, from, &form.name, &form.password)
        .await
    {
        SignIn::Welcome(token) => {
            tracing::info!(user = name, "console sign-in");
            (jar.add(session_cookie(token)), Redirect::to("/")).into_response()
        }
        SignIn::Refused => {
            tracing::warn!(user = name, %from, "console sign-in refused");
            Redirect::to("/login?failed").into_response()
        }
        SignIn::Busy => {
            let mut page = state.render(
                "login.html",
                context! { user => (), page => "login", title => "Sign in", notice => (), failed => false, busy => true },
            );
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            page
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutForm {}

/// Ends the session on the server and clears the cookie; a post without the
/// session's token does neither.
pub async fn logout(
    State(state): State<Shared>,
    jar: CookieJar,
    posted: Result<Posted<LogoutForm>, Response>,
) -> Response {
    match (token(&jar), posted) {
        (Some(t), Ok(_)) => {
            state.sessions.logout(&t);
            (
                jar.remove(Cookie::build(COOKIE).path("/")),
                Redirect::to("/login"),
            )
                .into_response()
        }
        _ => Redirect::to("/").into_response(),
    }
}
