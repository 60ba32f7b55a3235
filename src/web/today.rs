//! Today (what goes today, what waits for a person, what went wrong) and
//! the agenda with its filters.

use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use minijinja::context;
use serde::Deserialize;

use super::session::SignedIn;
use super::{Shared, agenda_items, base, failed_page};
use crate::agenda::{AgendaStatus, Window};
use crate::records;

pub async fn today(State(state): State<Shared>, SignedIn(s): SignedIn) -> Response {
    let today = state.today();
    let items = match agenda_items(&state, Window::default()).await {
        Ok(items) => items,
        Err(e) => return failed_page(e),
    };
    let recent = today - Duration::days(30);
    let settings = state.engine.borrow().settings.clone();
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
    let counts: Vec<_> = match crate::outbox::counts(&state.pool).await {
        Ok(counts) => counts
            .into_iter()
            .map(|(st, n)| context! { key => st.as_str(), state => st.as_str().replace('_', " "), n => n })
            .collect(),
        Err(e) => return failed_page(e),
    };
    let ctx = base(&s, "today", "Today");
    state.render(
        "today.html",
        context! {
            today => today, waiting => super::for_people(waiting, &settings),
            today_items => super::for_people(today_items, &settings),
            problems => super::for_people(problems, &settings), counts => counts, ..ctx
        },
    )
}

pub async fn agenda_page(
    State(state): State<Shared>,
    SignedIn(s): SignedIn,
    Query(q): Query<AgendaFilter>,
) -> Response {
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
                .map(|a| a.code.to_string())
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
        context! {
            items => super::for_people(&items, &state.engine.borrow().settings),
            filters => filters, ..ctx
        },
    )
}

/// The agenda's filters, as the form sends them.
#[derive(Deserialize)]
pub struct AgendaFilter {
    authority: Option<String>,
    region: Option<String>,
    rule: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl AgendaFilter {
    fn get(&self, key: &str) -> Option<&String> {
        match key {
            "authority" => self.authority.as_ref(),
            "region" => self.region.as_ref(),
            "rule" => self.rule.as_ref(),
            "status" => self.status.as_ref(),
            "from" => self.from.as_ref(),
            "to" => self.to.as_ref(),
            _ => None,
        }
    }
}
