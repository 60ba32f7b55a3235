//! Error pages: every refusal a person can meet in the console comes back as
//! a page in the layout, saying what happened and the way back. Calendar
//! feeds and metrics, read by programs, keep their plain answers.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::Shared;

/// The most of a plain refusal read to put on its page: they are one sentence.
const MESSAGE_BYTES: usize = 4096;

pub async fn as_pages(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let for_programs = path.starts_with("/calendar/") || path == "/metrics";
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if for_programs || !plain || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let message = axum::body::to_bytes(body, MESSAGE_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (heading, fallback) = words(status);
    let message = if message.is_empty() {
        fallback.to_string()
    } else {
        sentence(&message)
    };
    let ctx = context! {
        user => (), role => (), csrf => (), page => "", notice => (),
        title => heading, heading => heading, message => message,
    };
    let mut page = state.render("problem.html", ctx);
    *page.status_mut() = status;
    // A rate limit's wait, and the like, still reach the browser.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            page.headers_mut().insert(name.clone(), value.clone());
        }
    }
    page.into_response()
}

/// The page's heading, and what it says when the refusal came without words.
fn words(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => (
            "That could not be used",
            "The form held a value that cannot be used.",
        ),
        StatusCode::FORBIDDEN => ("You cannot do that", "This needs another role."),
        StatusCode::NOT_FOUND => ("Page not found", "There is no page at this address."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Page not found",
            "This address does not take that kind of request.",
        ),
        StatusCode::CONFLICT => (
            "That cannot be done now",
            "The record changed since the page was shown.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("That is too large", "The form sent too much."),
        StatusCode::TOO_MANY_REQUESTS => ("Too many requests", "Wait a minute, then try again."),
        StatusCode::MISDIRECTED_REQUEST => (
            "Not this console",
            "This console does not answer to that name.",
        ),
        _ => (
            "Sorry, something went wrong",
            "The page could not be built. Try again; if it goes on, tell the administrator.",
        ),
    }
}

/// A refusal as a sentence: a capital first letter and a full stop.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}
