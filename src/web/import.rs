//! `/import`: a CSV file of records imported from the console, with the
//! command line's own all-or-nothing importer: the file is first tried
//! (every check and write, then rolled back) and what it would add and
//! change is shown; a confirmation imports it. A rejected file's line,
//! column and reason are shown on the page.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;

use super::auth::Session;
use super::session::{Editing, SignedIn, cross_site, same_origin};
use super::{Shared, WebState, base};
use crate::config::WebRole;
use crate::records::import::{self, Apply, ImportFailure, Kind};

/// The largest file the page takes; a bigger one is imported on the command line.
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

const KINDS: [(&str, &str); 6] = [
    ("authorities", "Authorities"),
    ("cases", "Cases"),
    ("visits", "Monitoring visits"),
    ("seminars", "Seminars"),
    ("delegates", "Delegates"),
    ("invited", "Authorities invited to seminars"),
];

fn kind_of(name: &str) -> Option<Kind> {
    <Kind as clap::ValueEnum>::from_str(name, false).ok()
}

/// What the page shows: the form, and a problem or a preview.
fn page(
    state: &WebState,
    s: &Session,
    status: StatusCode,
    problem: minijinja::Value,
    preview: minijinja::Value,
    chosen: &str,
) -> Response {
    let title = if problem.is_none() {
        "Import records"
    } else {
        "Error: Import records"
    };
    let kinds: Vec<_> = KINDS
        .iter()
        .map(|(id, label)| context! { id => id, label => label, header => kind_of(id).map(|k| k.headers().join(",")) })
        .collect();
    let ctx = base(s, "import", title);
    let mut response = state.render(
        "import.html",
        context! {
            kinds => kinds, can_act => s.role == WebRole::Editor,
            problem => problem, preview => preview, chosen => chosen, ..ctx
        },
    );
    *response.status_mut() = status;
    response
}

pub async fn import_page(State(state): State<Shared>, SignedIn(s): SignedIn) -> Response {
    let none = minijinja::Value::from(());
    page(&state, &s, StatusCode::OK, none.clone(), none, "")
}

/// A file as the form sends it.
struct Upload {
    csrf: String,
    kind: String,
    name: String,
    bytes: Vec<u8>,
}

async fn read_upload(mut form: Multipart) -> Result<Upload, String> {
    let mut upload = Upload {
        csrf: String::new(),
        kind: String::new(),
        name: String::new(),
        bytes: Vec::new(),
    };
    while let Some(mut field) = form.next_field().await.map_err(|e| e.body_text())? {
        match field.name().unwrap_or_default() {
            "csrf" => upload.csrf = field.text().await.map_err(|e| e.body_text())?,
            "kind" => upload.kind = field.text().await.map_err(|e| e.body_text())?,
            "file" => {
                upload.name = field.file_name().unwrap_or("the file").to_string();
                while let Some(chunk) = field.chunk().await.map_err(|e| e.body_text())? {
                    if upload.bytes.len() + chunk.len() > MAX_FILE_BYTES {
                        return Err(format!(
                            "the file is larger than {} MiB: import it on the command line",
                            MAX_FILE_BYTES / 1024 / 1024
                        ));
                    }
                    upload.bytes.extend_from_slice(&chunk);
                }
            }
            _ => {}
        }
    }
    Ok(upload)
}

/// Tries the file and shows what it would do, or why it cannot.
pub async fn check_file(State(state): State<Shared>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if !same_origin(&parts.headers) {
        return cross_site();
    }
    let s = match <SignedIn as axum::extract::FromRequestParts<Shared>>::from_request_parts(
        &mut parts, &state,
    )
    .await
    {
        Ok(SignedIn(s)) => s,
        Err(r) => return r,
    };
    if s.role != WebRole::Editor {
        return (StatusCode::FORBIDDEN, "viewers cannot change anything").into_response();
    }
    let form = match Multipart::from_request(Request::from_parts(parts, body), &state).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let upload = match read_upload(form).await {
        Ok(u) => u,
        Err(why) => return problem(&state, &s, "", "file", &why),
    };
    if upload.csrf != s.csrf {
        return (
            StatusCode::FORBIDDEN,
            "the form is out of date: reload the page",
        )
            .into_response();
    }
    let Some(kind) = kind_of(&upload.kind) else {
        return problem(&state, &s, "", "kind", "Choose what the file holds");
    };
    if upload.bytes.is_empty() {
        return problem(
            &state,
            &s,
            &upload.kind,
            "file",
            "Choose a CSV file to import",
        );
    }
    match import::import_bytes(&state.pool, kind, &upload.name, &upload.bytes, Apply::Try).await {
        Ok(report) => {
            let Ok(content) = String::from_utf8(upload.bytes) else {
                return problem(
                    &state,
                    &s,
                    &upload.kind,
                    "file",
                    "The file is not UTF-8 text",
                );
            };
            let preview = context! {
                name => upload.name, kind => upload.kind, content => content,
                added => report.added, updated => report.updated,
            };
            page(&state, &s, StatusCode::OK, ().into(), preview, &upload.kind)
        }
        Err(ImportFailure::Rejected(e)) => {
            problem(&state, &s, &upload.kind, "file", &e.to_string())
        }
        Err(ImportFailure::Storage(e)) => super::failed_page(e),
    }
}

fn problem(state: &WebState, s: &Session, chosen: &str, field: &str, message: &str) -> Response {
    let field = if field == "kind" {
        "kind-authorities"
    } else {
        "file"
    };
    let problem = context! { field => field, message => message };
    page(
        state,
        s,
        StatusCode::BAD_REQUEST,
        problem,
        ().into(),
        chosen,
    )
}

/// A tried file, confirmed: its contents come back with the form.
#[derive(Deserialize)]
pub struct Confirmed {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    content: String,
}

pub async fn import_file(
    State(state): State<Shared>,
    Editing { session: s, form }: Editing<Confirmed>,
) -> Response {
    let Some(kind) = kind_of(&form.kind) else {
        return problem(&state, &s, "", "kind", "Choose what the file holds");
    };
    let report = match import::import_bytes(
        &state.pool,
        kind,
        &form.name,
        form.content.as_bytes(),
        Apply::Write,
    )
    .await
    {
        Ok(r) => r,
        // The records changed since the file was checked.
        Err(ImportFailure::Rejected(e)) => {
            return problem(&state, &s, &form.kind, "file", &e.to_string());
        }
        Err(ImportFailure::Storage(e)) => return super::failed_page(e),
    };
    let detail = format!(
        "{}: {} added, {} updated",
        form.name, report.added, report.updated
    );
    state
        .recorded(&s, "import", &format!("import:{}", form.kind), &detail)
        .await;
    let ctx = base(&s, "import", "Records imported");
    state.render(
        "imported.html",
        context! { name => form.name, added => report.added, updated => report.updated, kind => form.kind, ..ctx },
    )
}
