//! The console's doors: the sign-in page, signing in and signing out.

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use minijinja::context;
use serde::Deserialize;

use super::Shared;
use super::auth::SignIn;
use super::session::ClientAddr;
use super::session::{Posted, token};
use axum::http::{HeaderValue, StatusCode, header};

#[derive(Deserialize)]
pub struct LoginQuery {
    failed: Option<String>,
}

/// The sign-in form's own token, before there is a session: the form
/// carries it and so does a cookie only this site's pages can set, so a page
/// elsewhere cannot sign a visitor in as someone else.
pub const SIGN_IN_COOKIE: &str = "keydates_signin";

/// What the sign-in page may say above its form.
#[derive(Default, Clone, Copy)]
struct Notice {
    failed: bool,
    busy: bool,
    stale: bool,
}

/// The sign-in page with a form token, set in the cookie too (the one the
/// browser holds, when it holds a well-formed one).
fn sign_in_page(state: &Shared, jar: CookieJar, notice: Notice) -> Response {
    let held = jar
        .get(SIGN_IN_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
    let form_token = held.unwrap_or_else(super::auth::new_token);
    let cookie = Cookie::build((SIGN_IN_COOKIE, form_token.clone()))
        .secure(state.engine.borrow().settings.web.secure_cookies())
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/login")
        .build();
    let page = state.render(
        "login.html",
        context! { user => (), page => "login", title => "Sign in", notice => (),
        failed => notice.failed, busy => notice.busy, stale => notice.stale,
        signin => form_token },
    );
    (jar.add(cookie), page).into_response()
}

pub async fn login_page(
    State(state): State<Shared>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    let notice = Notice {
        failed: q.failed.is_some(),
        ..Notice::default()
    };
    sign_in_page(&state, jar, notice)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// The form's token, matched against the cookie.
    #[serde(default)]
    signin: String,
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

fn session_cookie(state: &Shared, value: String) -> Cookie<'static> {
    let web = &state.engine.borrow().settings.web;
    Cookie::build((web.session_cookie(), value))
        .secure(web.secure_cookies())
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

pub async fn login(
    State(state): State<Shared>,
    ClientAddr(from): ClientAddr,
    headers: axum::http::HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    if !super::session::same_origin(&headers) {
        return super::session::cross_site();
    }
    let held = jar.get(SIGN_IN_COOKIE).map(|c| c.value().to_string());
    if held.is_none_or(|t| t.is_empty() || t != form.signin) {
        let notice = Notice {
            stale: true,
            ..Notice::default()
        };
        let mut page = sign_in_page(&state, jar, notice);
        *page.status_mut() = StatusCode::FORBIDDEN;
        return page;
    }
    let users = state.engine.borrow().settings.web.users.clone();
    let name = as_logged(&form.name);
    match state
        .sessions
        .login(&state.pool, &users, from, &form.name, &form.password)
        .await
    {
        SignIn::Welcome(token) => {
            tracing::info!(user = name, "console sign-in");
            (jar.add(session_cookie(&state, token)), Redirect::to("/")).into_response()
        }
        SignIn::Refused => {
            tracing::warn!(user = name, %from, "console sign-in refused");
            Redirect::to("/login?failed").into_response()
        }
        SignIn::Busy => {
            let notice = Notice {
                busy: true,
                ..Notice::default()
            };
            let mut page = sign_in_page(&state, jar, notice);
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
    match (token(&state, &jar), posted) {
        (Some(t), Ok(_)) => {
            state.sessions.logout(&state.pool, &t).await;
            (
                jar.remove(
                    Cookie::build(state.engine.borrow().settings.web.session_cookie()).path("/"),
                ),
                Redirect::to("/login"),
            )
                .into_response()
        }
        _ => Redirect::to("/").into_response(),
    }
}
