//! Commands about the settings and the calendar.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{Datelike, Local, NaiveDate};

use super::done;
use super::outln;
use crate::calendar::offset::Offset;
use crate::cli::Format;
use crate::config::Settings;
use crate::delivery::Engine;
use crate::delivery::transport::Mailer;

pub fn check_config(settings: Settings) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(settings)?;
    crate::delivery::compose::check_rules(&engine.composer())?;
    let s = &engine.settings;
    outln!("config: ok");
    outln!("database: {}", s.database_location());
    outln!("transport: {}", Mailer::describe(s));
    outln!("templates: {}", s.templates_dir().display());
    match s.web.address() {
        Some(addr) => outln!("console: http://{addr}/ ({} users)", s.web.users.len()),
        _ => outln!("console: off"),
    }
    outln!(
        "sending: {:02}:00 {} on working days; poll \"{}\"",
        s.schedule.send_hour,
        s.time_zone(),
        s.schedule.poll
    );
    outln!(
        "regions: {}",
        s.regions.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    let enabled = s.enabled_rules().count();
    outln!("rules: {enabled} enabled of {}", s.rules.len());
    super::print_table(
        &["rule", "on", "offset", "from", ""],
        s.rules.iter().map(|rule| {
            vec![
                rule.id.clone(),
                rule.on.name().to_string(),
                rule.offset.to_string(),
                rule.anchor.name().to_string(),
                match (rule.enabled, rule.held) {
                    (false, _) => "(disabled)".to_string(),
                    (true, true) => "(held until confirmed)".to_string(),
                    (true, false) => String::new(),
                },
            ]
        }),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn hash_password() -> anyhow::Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("while reading the password on standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    done(crate::web::auth::hash_password(password)?)
}

pub fn holidays(
    settings: &Settings,
    year: Option<i32>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let calendar = settings.calendar();
    let years: Vec<i32> = match year {
        Some(y) => vec![y],
        None => {
            let this = Local::now().date_naive().year();
            (this - 1..=this + 2).collect()
        }
    };
    let days: Vec<NaiveDate> = years
        .iter()
        .flat_map(|y| calendar.holidays_in(*y))
        .collect();
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&days)?),
        Format::Table => {
            for d in days {
                outln!("{d}  {}", crate::calendar::uk_long_date(d));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn date(settings: &Settings, anchor: NaiveDate, offset: &Offset) -> anyhow::Result<ExitCode> {
    let date = offset
        .apply(anchor, &settings.calendar())
        .ok_or_else(|| anyhow::anyhow!("the date is out of range"))?;
    done(date)
}

pub async fn migrate_db(
    settings: &Settings,
    from: &std::path::Path,
    to: &str,
) -> anyhow::Result<ExitCode> {
    let timeout = std::time::Duration::from_secs(settings.database.busy_timeout_secs);
    let copied = crate::db::copy::sqlite_to_postgres(from, to, timeout).await?;
    for (table, rows) in &copied {
        outln!("{table:<15} {rows}");
    }
    outln!(
        "copied {} into {}; now set database.url to it (or KEYDATES__DATABASE__URL) and start keydates",
        from.display(),
        crate::config::redact(to)
    );
    Ok(ExitCode::SUCCESS)
}
