//! Commands that change the records: imports and the everyday edits.

use std::path::Path;
use std::process::ExitCode;

use chrono::{Local, NaiveDate};

use super::done;
use crate::config::Settings;
use crate::db;
use crate::records::{edit, import};

pub async fn import(
    settings: &Settings,
    kind: import::Kind,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let pool = db::connect(settings).await?;
    let report = import::import(&pool, kind, file).await?;
    done(format!(
        "{}: {} added, {} updated",
        file.display(),
        report.added,
        report.updated
    ))
}

pub async fn plan_received(
    settings: &Settings,
    case_ref: &str,
    on: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let on = on.unwrap_or_else(|| Local::now().date_naive());
    edit::plan_received(&db::connect(settings).await?, case_ref, on).await?;
    done(format!("case {case_ref}: plan received on {on}"))
}

pub async fn close_case(settings: &Settings, case_ref: &str) -> anyhow::Result<ExitCode> {
    edit::close_case(&db::connect(settings).await?, case_ref).await?;
    done(format!("case {case_ref}: closed"))
}

pub async fn move_visit(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
    starts_on: NaiveDate,
) -> anyhow::Result<ExitCode> {
    edit::move_visit(&db::connect(settings).await?, case_ref, visit_no, starts_on).await?;
    done(format!(
        "visit {case_ref}#{visit_no}: now starts {starts_on}"
    ))
}

pub async fn cancel_visit(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
) -> anyhow::Result<ExitCode> {
    edit::cancel_visit(&db::connect(settings).await?, case_ref, visit_no).await?;
    done(format!("visit {case_ref}#{visit_no}: cancelled"))
}

pub async fn set_audited(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
    refs: &[String],
) -> anyhow::Result<ExitCode> {
    edit::set_audited(&db::connect(settings).await?, case_ref, visit_no, refs).await?;
    done(format!("visit {case_ref}#{visit_no}: audited cases set"))
}

pub async fn confirm_seminar(settings: &Settings, seminar_ref: &str) -> anyhow::Result<ExitCode> {
    edit::confirm_seminar(&db::connect(settings).await?, seminar_ref).await?;
    done(format!("seminar {seminar_ref}: confirmed"))
}

pub async fn cancel_seminar(settings: &Settings, seminar_ref: &str) -> anyhow::Result<ExitCode> {
    edit::cancel_seminar(&db::connect(settings).await?, seminar_ref).await?;
    done(format!("seminar {seminar_ref}: cancelled"))
}
