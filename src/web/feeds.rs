//! What is reached without a session: `/metrics` for monitoring, and the
//! calendar feeds, whose address's token is the key.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::session::ClientAddr;
use super::{Shared, failed_page};
use crate::agenda::{self, feed, feed::Owner};

/// Counts and ages for a monitoring system; no login, as it holds no personal data.
pub async fn metrics_page(State(state): State<Shared>, ClientAddr(from): ClientAddr) -> Response {
    if !state.unsigned_allowed(from) {
        return (StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
    }
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
/// address's token is the key), nothing without `web.calendar_secret`. The
/// token is checked before anything is read, and then only the owner's
/// records are.
pub async fn calendar_feed(
    State(state): State<Shared>,
    ClientAddr(from): ClientAddr,
    Path((kind, name, file)): Path<(String, String, String)>,
) -> Response {
    if !state.unsigned_allowed(from) {
        return (StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
    }
    let engine = state.engine.borrow().clone();
    let no_such = || (StatusCode::NOT_FOUND, "no such calendar").into_response();
    let (Some(secret), Some(token), Some(owner)) = (
        &engine.settings.web.calendar_secret,
        file.strip_suffix(".ics"),
        Owner::from_address(&kind, &name),
    ) else {
        return no_such();
    };
    if !feed::verify(secret, &owner, token) {
        return no_such();
    }
    let (items, records) =
        match agenda::for_owner(&state.pool, &engine.settings, Utc::now(), &owner).await {
            Ok(found) => found,
            Err(e) => return failed_page(e),
        };
    let body = feed::feed(&owner, &items, &records, &engine.settings, Utc::now());
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}
