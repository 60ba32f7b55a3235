//! What is reached without a session: `/metrics` for monitoring, and the
//! calendar feeds, whose address's token is the key.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::{Shared, agenda_items, failed_page};
use crate::agenda::Window;
use crate::records;

/// Counts and ages for a monitoring system; no login, as it holds no personal data.
pub async fn metrics_page(State(state): State<Shared>) -> Response {
    let on = state.engine.borrow().settings.web.metrics;
    match state.metrics.as_ref().filter(|_| on) {
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
pub async fn calendar_feed(State(state): State<Shared>, Path(file): Path<String>) -> Response {
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
    let Some(owner) = crate::agenda::feed::owner_for(&records, secret, token) else {
        return (StatusCode::NOT_FOUND, "no such calendar").into_response();
    };
    let items = match agenda_items(&state, Window::default()).await {
        Ok(items) => items,
        Err(e) => return failed_page(e),
    };
    let body = crate::agenda::feed::feed(
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
