//! One email: its page, what an editor may do to it, its preview as the
//! recipient will see it, and its attachments.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::auth::Session;
use super::session::{Editing, SignedIn};
use super::{Shared, WebState, base, failed_page};
use crate::config::WebRole;
use crate::outbox::{self, Status};
use crate::plan;
use crate::records::{self, audit};

/// An action on an email: for a confirmation, the role confirming.
#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    role: Option<String>,
    /// Confirms a cancellation.
    #[serde(default)]
    sure: String,
}

/// An email the records plan, by rule and subject.
#[derive(Deserialize)]
pub struct PlannedQuery {
    rule: Option<String>,
    subject: Option<String>,
}

/// What an editor may do to an email, as named in its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
enum Action {
    Confirm,
    Retry,
    Cancel,
}

/// What an editor may do to a row in its state.
fn actions_for(status: Status) -> &'static [Action] {
    match status {
        Status::AwaitingConfirmation => &[Action::Confirm, Action::Cancel],
        Status::Pending => &[Action::Cancel],
        Status::Failed | Status::Missed => &[Action::Retry, Action::Cancel],
        Status::Cancelled => &[Action::Retry],
        Status::Sending | Status::Sent => &[],
    }
}

pub async fn outbox_page(
    State(state): State<Shared>,
    SignedIn(s): SignedIn,
    Path(id): Path<i64>,
) -> Response {
    let row = match outbox::get(&state.pool, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return (StatusCode::NOT_FOUND, "no such email").into_response(),
        Err(e) => return failed_page(e),
    };
    let audit = audit::for_target(&state.pool, &format!("outbox:{id}"))
        .await
        .unwrap_or_default();
    let attempts = outbox::attempts(&state.pool, id).await.unwrap_or_default();
    let confirmations = outbox::confirmations(&state.pool, id)
        .await
        .unwrap_or_default();
    let asked = outbox::asked_of(&state.engine.borrow().settings.rules, &row.rule);
    let waiting_for: Vec<&String> = asked
        .iter()
        .filter(|r| !confirmations.iter().any(|c| &c.role == *r))
        .collect();
    // Titled by its subject line as it goes now; by its rule and subject
    // when it can no longer be built (the page says why elsewhere).
    let heading = match compose(&state, row.clone()).await {
        Ok(composed) => composed.rendered.subject,
        Err(_) => format!("{} {}", row.rule, row.subject),
    };
    let ctx = base(&s, "outbox", &heading);
    state.render(
        "outbox.html",
        context! {
            heading => heading,
            can_act => s.role == WebRole::Editor,
            actions => actions_for(row.status),
            row => row,
            audit => audit,
            attempts => attempts,
            confirmations => confirmations,
            waiting_for => waiting_for,
            notice => state.told(&s),
            ..ctx
        },
    )
}

pub async fn outbox_action(
    State(state): State<Shared>,
    Path((id, action)): Path<(i64, String)>,
    Editing {
        session: s,
        form: ActionForm { role, sure },
    }: Editing<ActionForm>,
) -> Response {
    let now = Utc::now();
    let Ok(action) = action.parse::<Action>() else {
        return (StatusCode::NOT_FOUND, "no such action").into_response();
    };
    if matches!(action, Action::Cancel) && sure != "yes" {
        let question = format!("Cancel email {id}?");
        let ctx = base(&s, "today", &question);
        return state.render(
            "confirm.html",
            context! {
                question => question,
                consequence => "It will not be sent.",
                action => format!("/outbox/{id}/cancel"), button => format!("Yes, cancel email {id}"),
                back => (), return_to => format!("/outbox/{id}"),
                ..ctx
            },
        );
    }
    let rules = state.engine.borrow().settings.rules.clone();
    let done = match action {
        Action::Confirm => outbox::confirm(&state.pool, id, role.as_deref(), &rules, &s.user, now)
            .await
            .map(|_| ()),
        Action::Retry => outbox::retry(&state.pool, id, now).await,
        Action::Cancel => outbox::cancel(&state.pool, id, now).await,
    };
    if let Err(e) = done {
        return (StatusCode::CONFLICT, e.to_string()).into_response();
    }
    state
        .recorded(
            &s,
            action.into(),
            &format!("outbox:{id}"),
            role.as_deref()
                .map_or(String::new(), |r| format!("as {r}"))
                .as_str(),
        )
        .await;
    state.tell(
        &s,
        match action {
            Action::Confirm => match &role {
                Some(r) => format!(
                    "Confirmed as {}. It goes once every role asked has confirmed.",
                    r.replace('_', " ")
                ),
                None => "Confirmed. It goes at the next pass.".to_string(),
            },
            Action::Retry => "It goes again at the next pass.".to_string(),
            Action::Cancel => "Cancelled: it will not be sent.".to_string(),
        },
    );
    Redirect::to(&format!("/outbox/{id}")).into_response()
}

/// The email a row would send now, composed from the current records.
pub async fn composed(
    state: &WebState,
    id: i64,
) -> Result<crate::delivery::compose::Composed, Response> {
    let row = match outbox::get(&state.pool, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err((StatusCode::NOT_FOUND, "no such email").into_response()),
        Err(e) => return Err(failed_page(e)),
    };
    compose(state, row).await
}

pub async fn compose(
    state: &WebState,
    row: outbox::OutboxRow,
) -> Result<crate::delivery::compose::Composed, Response> {
    let engine = state.engine.borrow().clone();
    let records = crate::delivery::records_for(&state.pool, &row)
        .await
        .map_err(failed_page)?;
    crate::delivery::compose_row(&engine, &records, &row, Utc::now()).map_err(|e| {
        (
            StatusCode::CONFLICT,
            format!("the email cannot be built: {e}"),
        )
            .into_response()
    })
}

/// An email that is planned but not yet in the outbox, by rule and subject.
pub async fn planned_preview(
    State(state): State<Shared>,
    SignedIn(s): SignedIn,
    Query(q): Query<PlannedQuery>,
) -> Response {
    let engine = state.engine.borrow().clone();
    let (Some(rule), Some(subject)) = (&q.rule, &q.subject) else {
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

pub async fn preview_page(
    State(state): State<Shared>,
    SignedIn(s): SignedIn,
    Path(id): Path<i64>,
) -> Response {
    match composed(&state, id).await {
        Ok(c) => show_preview(&state, &s, id, c),
        Err(r) => r,
    }
}

fn show_preview(
    state: &WebState,
    s: &Session,
    id: i64,
    c: crate::delivery::compose::Composed,
) -> Response {
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
pub struct EmailPolicy;

/// The HTML alternative as recipients see it. Its own policy allows the
/// email's inline styles and nothing else.
pub async fn preview_html(
    State(state): State<Shared>,
    _: SignedIn,
    Path(id): Path<i64>,
) -> Response {
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

pub async fn annex_download(
    State(state): State<Shared>,
    _: SignedIn,
    Path((id, n)): Path<(i64, usize)>,
) -> Response {
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
