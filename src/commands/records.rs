//! Commands that change the records: imports and the everyday edits.

use std::path::Path;
use std::process::ExitCode;

use chrono::{Local, NaiveDate};

use super::done;
use crate::calendar::Calendar;
use crate::config::Settings;
use crate::db;
use crate::plan;
use crate::records::{Case, edit, import, store};

pub async fn import(
    settings: &Settings,
    kind: import::Kind,
    file: &Path,
) -> anyhow::Result<ExitCode> {
    let pool = db::connect(settings).await?;
    let report = import::import(&pool, kind, file).await?;
    if kind == import::Kind::Cases {
        let calendar = settings.calendar();
        for case in store::load(&pool).await?.cases.values() {
            warn_outside_window(&calendar, case);
        }
    }
    done(format!(
        "{}: {} added, {} updated",
        file.display(),
        report.added,
        report.updated
    ))
}

/// A planning event recorded outside the 25-35 working-day window is
/// accepted (the handbooks say "normally"), with a warning on stderr.
fn warn_outside_window(calendar: &Calendar, case: &Case) {
    let Some(on) = case.planning_event_on else {
        return;
    };
    let Some((from, to)) = plan::planning_window(calendar, case.report_received_on) else {
        return;
    };
    if on < from || on > to {
        eprintln!(
            "warning: case {}: the planning event on {on} is outside the usual window, {from} to {to} (25 to 35 working days after the report)",
            case.case_ref
        );
    }
}

pub async fn set_planning_event(
    settings: &Settings,
    case_ref: &str,
    on: NaiveDate,
) -> anyhow::Result<ExitCode> {
    let pool = db::connect_existing(settings).await?;
    edit::set_planning_event(&pool, case_ref, on).await?;
    if let Some(case) = store::load_subjects(&pool, &[case_ref.to_string()], &[])
        .await?
        .cases
        .get(case_ref)
    {
        warn_outside_window(&settings.calendar(), case);
    }
    done(format!("case {case_ref}: planning event on {on}"))
}

pub async fn record_conversation(
    settings: &Settings,
    seminar_ref: &str,
    authority_code: &str,
    on: NaiveDate,
) -> anyhow::Result<ExitCode> {
    let pool = db::connect_existing(settings).await?;
    edit::record_conversation(&pool, seminar_ref, authority_code, on).await?;
    done(format!(
        "seminar {seminar_ref}, {authority_code}: conversation with the DCS held on {on}"
    ))
}

pub async fn plan_received(
    settings: &Settings,
    case_ref: &str,
    on: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let on = on.unwrap_or_else(|| Local::now().date_naive());
    edit::plan_received(&db::connect_existing(settings).await?, case_ref, on).await?;
    done(format!("case {case_ref}: plan received on {on}"))
}

pub async fn close_case(settings: &Settings, case_ref: &str) -> anyhow::Result<ExitCode> {
    edit::close_case(&db::connect_existing(settings).await?, case_ref).await?;
    done(format!("case {case_ref}: closed"))
}

pub async fn move_visit(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
    starts_on: NaiveDate,
) -> anyhow::Result<ExitCode> {
    edit::move_visit(
        &db::connect_existing(settings).await?,
        case_ref,
        visit_no,
        starts_on,
    )
    .await?;
    done(format!(
        "visit {case_ref}#{visit_no}: now starts {starts_on}"
    ))
}

pub async fn cancel_visit(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
) -> anyhow::Result<ExitCode> {
    edit::cancel_visit(&db::connect_existing(settings).await?, case_ref, visit_no).await?;
    done(format!("visit {case_ref}#{visit_no}: cancelled"))
}

pub async fn set_audited(
    settings: &Settings,
    case_ref: &str,
    visit_no: u32,
    refs: &[String],
) -> anyhow::Result<ExitCode> {
    edit::set_audited(
        &db::connect_existing(settings).await?,
        case_ref,
        visit_no,
        refs,
    )
    .await?;
    done(format!("visit {case_ref}#{visit_no}: audited cases set"))
}

pub async fn confirm_seminar(settings: &Settings, seminar_ref: &str) -> anyhow::Result<ExitCode> {
    edit::confirm_seminar(&db::connect_existing(settings).await?, seminar_ref).await?;
    done(format!("seminar {seminar_ref}: confirmed"))
}

pub async fn cancel_seminar(
    settings: &Settings,
    seminar_ref: &str,
    on: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let on = on.unwrap_or_else(|| Local::now().date_naive());
    edit::cancel_seminar(&db::connect_existing(settings).await?, seminar_ref, on).await?;
    done(format!("seminar {seminar_ref}: cancelled"))
}
