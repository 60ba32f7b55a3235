//! What each command does: parse what the command line gave, call the
//! library, print. No domain rules here.

mod demo;
mod records;
mod sending;
mod setup;
mod views;

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};

use crate::cli::{Cli, Command, Now};
use crate::config::Settings;
use crate::plan;

/// The commands that need no settings, so that they work while the config
/// is being mended: `None` for every other.
pub fn without_config(cli: &Cli) -> Option<ExitCode> {
    match cli.command {
        Command::Ics {
            new_secret: true, ..
        } => {
            outln!("{}", crate::web::auth::new_token());
            Some(ExitCode::SUCCESS)
        }
        _ => None,
    }
}

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.clone();
    match cli.command {
        Command::CheckConfig => setup::check_config(settings),
        Command::Demo => demo::run(settings).await,
        Command::HashPassword => setup::hash_password(),
        Command::Ics {
            inspector,
            authority,
            ..
        } => views::ics(&settings, inspector, authority).await,
        Command::Holidays { year, format } => setup::holidays(&settings, year, format),
        Command::Date { anchor, offset } => setup::date(&settings, anchor, &offset),
        Command::Import { kind, file } => records::import(&settings, kind, &file).await,
        Command::PlanReceived { case_ref, on } => {
            records::plan_received(&settings, &case_ref, on).await
        }
        Command::CloseCase { case_ref } => records::close_case(&settings, &case_ref).await,
        Command::SetPlanningEvent { case_ref, on } => {
            records::set_planning_event(&settings, &case_ref, on).await
        }
        Command::RecordConversation {
            seminar_ref,
            authority_code,
            on,
        } => records::record_conversation(&settings, &seminar_ref, &authority_code, on).await,
        Command::Confirm { id, role } => views::confirm(&settings, id, role.as_deref()).await,
        Command::MoveVisit {
            case_ref,
            visit_no,
            starts_on,
        } => records::move_visit(&settings, &case_ref, visit_no, starts_on).await,
        Command::CancelVisit { case_ref, visit_no } => {
            records::cancel_visit(&settings, &case_ref, visit_no).await
        }
        Command::SetAudited {
            case_ref,
            visit_no,
            refs,
        } => records::set_audited(&settings, &case_ref, visit_no, &refs).await,
        Command::ConfirmSeminar { seminar_ref } => {
            records::confirm_seminar(&settings, &seminar_ref).await
        }
        Command::CancelSeminar { seminar_ref, on } => {
            records::cancel_seminar(&settings, &seminar_ref, on).await
        }
        Command::Run { once, now, dry_run } => {
            sending::run(settings, config_path, once, now, dry_run).await
        }
        Command::Agenda {
            from,
            to,
            now,
            format,
        } => views::agenda(settings, from, to, now, format).await,
        Command::Outbox { status, format } => views::outbox(&settings, status, format).await,
        Command::Retry { id } => views::retry(&settings, id).await,
        Command::Cancel { id } => views::cancel(&settings, id).await,
        Command::SendTest { to } => sending::send_test(settings, &to).await,
        Command::Preview {
            id,
            rule,
            subject,
            eml,
            now,
        } => sending::preview(settings, id, rule, subject, eml.as_deref(), now).await,
        Command::Status { format } => views::status(settings, format).await,
        Command::MigrateDb { from, to } => setup::migrate_db(&settings, &from, &to).await,
    }
}

/// Prints on standard output. A reader that stops early (`keydates agenda |
/// head`) ends the command quietly, as for any command-line tool. SIGPIPE
/// stays ignored, as Rust leaves it: a write to a closed socket (a relay, the
/// database) is then an error to handle, never the end of the process.
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::write_out(format_args!($($arg)*), false) };
}
macro_rules! outln {
    () => { $crate::commands::write_out(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::commands::write_out(format_args!($($arg)*), true) };
}
pub(crate) use {out, outln};

pub(crate) fn write_out(args: std::fmt::Arguments, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                stdout.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

fn done(message: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    outln!("{message}");
    Ok(ExitCode::SUCCESS)
}

/// `--now` as an instant: a date means that day at the sending hour.
fn instant(now: Option<Now>, settings: &Settings) -> DateTime<Utc> {
    match now {
        None => Utc::now(),
        Some(Now::Instant(t)) => t,
        Some(Now::Date(d)) => {
            plan::local_instant(d, settings.schedule.send_hour, settings.time_zone())
        }
    }
}

/// A plain table for people; scripts use `--format json`.
fn print_table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(headers);
    for row in rows {
        table.add_row(row);
    }
    outln!("{table}");
}
