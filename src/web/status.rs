//! `/status`: what `keydates status` says, for people: whether all is well,
//! the last pass and the next, the emails in each state, the relay, the
//! daemons heard from, and where each calendar feed is.

use axum::extract::State;
use axum::response::Response;
use chrono::Utc;
use minijinja::context;

use super::session::SignedIn;
use super::{Shared, base, failed_page, local_time};
use crate::agenda::feed;

pub async fn status_page(State(state): State<Shared>, SignedIn(s): SignedIn) -> Response {
    let settings = state.engine.borrow().settings.clone();
    let health = match crate::delivery::health::check(&state.pool, &settings, Utc::now()).await {
        Ok(h) => h,
        Err(e) => return failed_page(e),
    };
    let records = match crate::records::store::load(&state.pool).await {
        Ok(r) => r,
        Err(e) => return failed_page(e),
    };
    let feeds: Vec<_> = feed::owners(&records)
        .iter()
        .filter_map(|o| {
            feed::address(&settings, o)
                .map(|address| context! { owner => feed::owner_label(o), address => address })
        })
        .collect();
    let instances: Vec<_> = health
        .instances
        .iter()
        .map(|i| {
            context! {
                name => i.name, here => i.host == health.host,
                started => local_time(&settings, &i.started_at),
                seen => local_time(&settings, &i.seen_at),
            }
        })
        .collect();
    let counts: Vec<_> = health
        .counts
        .iter()
        .map(|(state, n)| context! { state => state.replace('_', " "), key => state, n => n })
        .collect();
    let ctx = base(&s, "status", "Status");
    state.render(
        "status.html",
        context! {
            healthy => health.healthy,
            database => format!("{} ({})", health.database, health.backend),
            last_pass => health.last_pass_at.as_deref().map(|t| local_time(&settings, t)),
            next => health.next,
            counts => counts,
            problems => health.problems,
            instances => instances,
            feeds => feeds,
            feeds_on => settings.web.calendar_secret.is_some(),
            ..ctx
        },
    )
}
