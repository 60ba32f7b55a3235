//! What each command does: the wiring between the command line and the modules.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, Local, NaiveDate, Utc};
use serde::Serialize;
use sqlx::SqlitePool;

use crate::calendar::{Offset, parse_date};
use crate::cli::{Cli, Command, Format};
use crate::config::Settings;
use crate::deliver::{self, Clock, Engine};
use crate::mail::Draft;
use crate::mail::transport::Mailer;
use crate::outbox::{self, OutboxRow, Status};
use crate::plan;
use crate::records::{edit, import, store};

pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.clone();
    match cli.command {
        Command::CheckConfig => check_config(settings),
        Command::Holidays { year, format } => holidays(&settings, year, format),
        Command::Date { anchor, offset } => {
            let anchor = parse_date(&anchor).map_err(anyhow::Error::msg)?;
            let offset: Offset = offset.parse()?;
            let date = offset
                .apply(anchor, &settings.calendar())
                .context("the date is out of range")?;
            println!("{date}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Import { kind, file } => {
            let pool = open(&settings).await?;
            let report = import::import(&pool, kind, &file).await?;
            println!(
                "{}: {} added, {} updated",
                file.display(),
                report.added,
                report.updated
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::PlanReceived { case_ref, on } => {
            let on = match on {
                Some(d) => parse_date(&d).map_err(anyhow::Error::msg)?,
                None => Local::now().date_naive(),
            };
            let pool = open(&settings).await?;
            edit::plan_received(&pool, &case_ref, on).await?;
            done(format!("case {case_ref}: plan received on {on}"))
        }
        Command::CloseCase { case_ref } => {
            edit::close_case(&open(&settings).await?, &case_ref).await?;
            done(format!("case {case_ref}: closed"))
        }
        Command::MoveVisit {
            case_ref,
            visit_no,
            starts_on,
        } => {
            let starts_on = parse_date(&starts_on).map_err(anyhow::Error::msg)?;
            edit::move_visit(&open(&settings).await?, &case_ref, visit_no, starts_on).await?;
            done(format!(
                "visit {case_ref}#{visit_no}: now starts {starts_on}"
            ))
        }
        Command::CancelVisit { case_ref, visit_no } => {
            edit::cancel_visit(&open(&settings).await?, &case_ref, visit_no).await?;
            done(format!("visit {case_ref}#{visit_no}: cancelled"))
        }
        Command::SetAudited {
            case_ref,
            visit_no,
            refs,
        } => {
            edit::set_audited(&open(&settings).await?, &case_ref, visit_no, &refs).await?;
            done(format!("visit {case_ref}#{visit_no}: audited cases set"))
        }
        Command::ConfirmSeminar { seminar_ref } => {
            edit::confirm_seminar(&open(&settings).await?, &seminar_ref).await?;
            done(format!("seminar {seminar_ref}: confirmed"))
        }
        Command::CancelSeminar { seminar_ref } => {
            edit::cancel_seminar(&open(&settings).await?, &seminar_ref).await?;
            done(format!("seminar {seminar_ref}: cancelled"))
        }
        Command::Run { once, now, dry_run } => {
            let clock = match &now {
                Some(t) => Clock::Fixed(parse_now(t, &settings)?),
                None => Clock::System,
            };
            if dry_run {
                return dry_run_pass(settings, clock).await;
            }
            if once {
                let pool = open(&settings).await?;
                let engine = Engine::new(settings)?;
                let (stop, _) = crate::daemon::stop_on_signals()?;
                let report = deliver::run_pass(&engine, &pool, clock, &stop, || {}).await?;
                println!(
                    "pass: {} new, {} updated, {} cancelled, {} sent, {} retrying, {} failed, {} missed",
                    report.reconcile.added + report.reconcile.revived,
                    report.reconcile.updated,
                    report.reconcile.cancelled,
                    report.sent,
                    report.retrying,
                    report.failed,
                    report.expired + report.reconcile.missed_on_arrival as u64,
                );
                return Ok(ExitCode::SUCCESS);
            }
            crate::daemon::run(config_path, settings, clock).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agenda {
            from,
            to,
            now,
            format,
        } => {
            let from = from
                .map(|d| parse_date(&d).map_err(anyhow::Error::msg))
                .transpose()?;
            let to = to
                .map(|d| parse_date(&d).map_err(anyhow::Error::msg))
                .transpose()?;
            let now = match now {
                Some(t) => parse_now(&t, &settings)?,
                None => Utc::now(),
            };
            agenda(settings, from, to, now, format).await
        }
        Command::Outbox { status, format } => {
            let pool = open(&settings).await?;
            let rows = outbox::list(&pool, status).await?;
            print_rows(&rows, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { id } => {
            outbox::retry(&open(&settings).await?, id, Utc::now()).await?;
            done(format!("outbox row {id}: pending again"))
        }
        Command::Cancel { id } => {
            outbox::cancel(&open(&settings).await?, id, Utc::now()).await?;
            done(format!("outbox row {id}: cancelled"))
        }
        Command::SendTest { to } => send_test(settings, &to).await,
        Command::Preview {
            id,
            rule,
            subject,
            eml,
        } => preview(settings, id, rule, subject, eml.as_deref()).await,
        Command::Status { format } => status(settings, format).await,
    }
}

fn done(message: String) -> anyhow::Result<ExitCode> {
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

pub async fn open(settings: &Settings) -> anyhow::Result<SqlitePool> {
    store::open(
        &settings.database_path(),
        Duration::from_secs(settings.database.busy_timeout_secs),
    )
    .await
}

/// `--now`: RFC 3339, or a date meaning that day at the sending hour.
pub fn parse_now(s: &str, settings: &Settings) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = parse_date(s).map_err(|_| {
        anyhow::anyhow!("--now `{s}` is neither RFC 3339 (2027-01-15T09:00:00Z) nor YYYY-MM-DD")
    })?;
    Ok(plan::local_instant(
        date,
        settings.schedule.send_hour,
        settings.time_zone(),
    ))
}

fn check_config(settings: Settings) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(settings)?;
    let s = &engine.settings;
    // Render every rule once against sample records so that a template that
    // parses but fails on use shows now.
    let sample = crate::sample::records();
    for rule in s.enabled_rules() {
        let subjects = plan::subjects(&sample, rule.on);
        let Some(subject) = subjects.first() else {
            continue;
        };
        let recipients = subject.recipients(rule, s);
        engine
            .composer()
            .compose(&Draft {
                rule,
                subject,
                anchor_on: "2027-01-11",
                due_on: "2027-01-11",
                recipients: &recipients,
                message_id: "<check@keydates.invalid>",
            })
            .map_err(|e| anyhow::anyhow!("rules ({}): {e}", rule.id))?;
    }
    println!("config: ok");
    println!("database: {}", s.database_path().display());
    println!("transport: {}", Mailer::describe(s));
    println!("templates: {}", s.templates_dir().display());
    println!(
        "sending: {:02}:00 {} on working days; poll \"{}\"",
        s.schedule.send_hour, s.schedule.time_zone, s.schedule.poll
    );
    println!(
        "regions: {}",
        s.regions.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    let enabled = s.enabled_rules().count();
    println!("rules: {enabled} enabled of {}", s.rules.len());
    for rule in &s.rules {
        println!(
            "  {:<22} {:<17} {:<18} from {:<18} {}",
            rule.id,
            rule.on.name(),
            rule.offset.to_string(),
            rule.anchor.name(),
            if rule.enabled { "" } else { "(disabled)" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn holidays(settings: &Settings, year: Option<i32>, format: Format) -> anyhow::Result<ExitCode> {
    let calendar = settings.calendar();
    let years: Vec<i32> = match year {
        Some(y) => vec![y],
        None => {
            let this = Local::now().date_naive().year_ce().1 as i32;
            (this - 1..=this + 2).collect()
        }
    };
    let days: Vec<NaiveDate> = years
        .iter()
        .flat_map(|y| calendar.holidays_in(*y))
        .collect();
    match format {
        Format::Json => {
            let list: Vec<String> = days.iter().map(|d| d.to_string()).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Table => {
            for d in days {
                println!("{d}  {}", d.format("%A %-d %B %Y"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of the agenda.
#[derive(Debug, Serialize)]
struct AgendaItem {
    id: Option<i64>,
    rule: String,
    subject: String,
    authority: Option<String>,
    delegate: Option<String>,
    due_on: String,
    send_at: String,
    to: Vec<String>,
    cc: Vec<String>,
    status: String,
    detail: Option<String>,
}

async fn agenda(
    settings: Settings,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let pool = open(&settings).await?;
    let records = store::load(&pool).await?;
    let calendar = settings.calendar();
    let tz = settings.time_zone();
    let local = |s: &str| {
        outbox::parse_ts(s)
            .map(|t| t.with_timezone(&tz).to_rfc3339())
            .unwrap_or_else(|| s.to_string())
    };
    let rows = outbox::list(&pool, None).await?;
    let by_key: HashMap<&str, &OutboxRow> = rows.iter().map(|r| (r.key.as_str(), r)).collect();
    let mut items: Vec<AgendaItem> = rows
        .iter()
        .map(|r| AgendaItem {
            id: Some(r.id),
            rule: r.rule.clone(),
            subject: r.subject.clone(),
            authority: r.authority.clone(),
            delegate: r.delegate.clone(),
            due_on: r.due_on.clone(),
            send_at: local(&r.send_at),
            to: r.recipients.to.clone(),
            cc: r.recipients.cc.clone(),
            status: r.status.as_str().to_string(),
            detail: r.last_error.clone().or(r.server_reply.clone()),
        })
        .collect();
    for a in plan::plan(&records, &settings, &calendar) {
        if by_key.contains_key(a.key.as_str()) {
            continue;
        }
        items.push(AgendaItem {
            id: None,
            rule: a.rule_id,
            subject: a.subject,
            authority: a.authority,
            delegate: a.delegate,
            due_on: a.due_on.to_string(),
            send_at: a.send_at.with_timezone(&tz).to_rfc3339(),
            to: a.recipients.to,
            cc: a.recipients.cc,
            status: if a.send_until <= now {
                "missed"
            } else {
                "planned"
            }
            .to_string(),
            detail: None,
        });
    }
    items.retain(|i| {
        let due = parse_date(&i.due_on).ok();
        from.is_none_or(|f| due.is_some_and(|d| d >= f))
            && to.is_none_or(|t| due.is_some_and(|d| d <= t))
    });
    items.sort_by(|a, b| (&a.send_at, &a.rule, &a.subject).cmp(&(&b.send_at, &b.rule, &b.subject)));
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&items)?),
        Format::Table => {
            let table: Vec<Vec<String>> = items
                .iter()
                .map(|i| {
                    vec![
                        i.due_on.clone(),
                        i.status.clone(),
                        i.rule.clone(),
                        i.subject.clone(),
                        i.authority.clone().unwrap_or_default(),
                        i.to.join(", "),
                    ]
                })
                .collect();
            print_table(
                &["due", "status", "rule", "subject", "authority", "to"],
                &table,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_rows(rows: &[OutboxRow], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.status.as_str().to_string(),
                        r.due_on.clone(),
                        r.rule.clone(),
                        r.subject.clone(),
                        r.attempts.to_string(),
                        r.last_error
                            .clone()
                            .or(r.server_reply.clone())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(
                &["id", "status", "due", "rule", "subject", "tries", "detail"],
                &table,
            );
        }
    }
    Ok(())
}

/// A plain aligned table for people; scripts use `--format json`.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn dry_run_pass(settings: Settings, clock: Clock) -> anyhow::Result<ExitCode> {
    let pool = open(&settings).await?;
    let engine = Engine::new(settings)?;
    let now = clock.now();
    let records = store::load(&pool).await?;
    let planned = plan::plan(&records, &engine.settings, &engine.calendar);
    let rows = outbox::list(&pool, None).await?;
    let status: HashMap<&str, Status> = rows.iter().map(|r| (r.key.as_str(), r.status)).collect();
    let mut would = 0;
    for a in &planned {
        let open_row = status
            .get(a.key.as_str())
            .is_none_or(|s| *s == Status::Pending);
        if !(open_row && a.send_at <= now && now < a.send_until) {
            continue;
        }
        would += 1;
        let mut row = OutboxRow::from_planned(a);
        row.message_id = Some(format!(
            "<dry-run@{}>",
            engine.settings.mail.message_id_domain
        ));
        match deliver::compose_row(&engine, &records, &row) {
            Ok(c) => println!(
                "would send {} {} to {} ({}; {} attachment(s))",
                a.rule_id,
                a.subject,
                a.recipients.to.join(", "),
                c.rendered.subject,
                c.attachments.len()
            ),
            Err(e) => println!("would fail {} {}: {e}", a.rule_id, a.subject),
        }
    }
    println!("dry run: {would} email(s) due; nothing sent or recorded");
    Ok(ExitCode::SUCCESS)
}

async fn send_test(settings: Settings, to: &str) -> anyhow::Result<ExitCode> {
    let mailer = Mailer::from_settings(&settings)?;
    let message = lettre::Message::builder()
        .from(settings.mail.from.parse()?)
        .to(to
            .parse()
            .map_err(|e| anyhow::anyhow!("--to `{to}` is not an address: {e}"))?)
        .subject("keydates: test message")
        .message_id(Some(format!(
            "<keydates.test.{:016x}@{}>",
            fastrand::u64(..),
            settings.mail.message_id_domain
        )))
        .body(format!(
            "This is a test message from keydates, sent through {}.\n",
            Mailer::describe(&settings)
        ))?;
    match mailer.send(&message).await {
        Ok(reply) => done(format!("sent: {reply}")),
        Err(e) => bail!("not sent: {e}"),
    }
}

async fn preview(
    settings: Settings,
    id: Option<i64>,
    rule: Option<String>,
    subject: Option<String>,
    eml: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let pool = open(&settings).await?;
    let engine = Engine::new(settings)?;
    let records = store::load(&pool).await?;
    let row = match (id, rule, subject) {
        (Some(id), _, _) => outbox::get(&pool, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no outbox row {id}"))?,
        (None, Some(rule), Some(subject)) => {
            let planned = plan::plan(&records, &engine.settings, &engine.calendar);
            let a = planned
                .into_iter()
                .find(|a| a.rule_id == rule && a.subject == subject)
                .ok_or_else(|| {
                    anyhow::anyhow!("rule `{rule}` plans nothing for `{subject}` from the records")
                })?;
            OutboxRow::from_planned(&a)
        }
        _ => bail!("give an outbox id, or --rule and --subject"),
    };
    let mut row = row;
    if row.message_id.is_none() {
        row.message_id = Some(format!(
            "<preview@{}>",
            engine.settings.mail.message_id_domain
        ));
    }
    let composed = deliver::compose_row(&engine, &records, &row).map_err(anyhow::Error::msg)?;
    if let Some(path) = eml {
        std::fs::write(path, composed.message.formatted())
            .with_context(|| format!("while writing {}", path.display()))?;
        return done(format!("written to {}", path.display()));
    }
    print!("{}", composed.message.headers());
    println!();
    println!("{}", composed.rendered.text);
    for (name, content_type, size) in &composed.attachments {
        println!("[attachment] {name} ({content_type}, {size} bytes)");
    }
    if composed.rendered.html.is_some() {
        println!("[alternative] text/html");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct Health {
    healthy: bool,
    database: String,
    last_pass_at: Option<String>,
    next: String,
    counts: HashMap<&'static str, i64>,
    problems: Vec<String>,
}

async fn status(settings: Settings, format: Format) -> anyhow::Result<ExitCode> {
    let pool = open(&settings).await?;
    let engine = Engine::new(settings)?;
    let counts = outbox::counts(&pool).await?;
    let last = outbox::get_state(&pool, "last_pass_at").await?;
    let mut problems = Vec::new();
    let stale = engine.settings.schedule.stale_after_secs as i64;
    match last.as_deref().and_then(outbox::parse_ts) {
        None => problems.push("no pass has run yet".to_string()),
        Some(t) if (Utc::now() - t).num_seconds() > stale => {
            problems.push(format!("the last pass was at {t}, more than {stale}s ago"))
        }
        Some(_) => {}
    }
    let failed = counts
        .iter()
        .find(|(s, _)| *s == Status::Failed)
        .map(|c| c.1)
        .unwrap_or(0);
    if failed > 0 {
        problems.push(format!("{failed} failed (keydates outbox --status failed)"));
    }
    let health = Health {
        healthy: problems.is_empty(),
        database: "reachable".to_string(),
        last_pass_at: last,
        next: deliver::status_line(&pool, &engine).await?,
        counts: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
        problems,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&health)?),
        Format::Table => {
            println!("healthy: {}", if health.healthy { "yes" } else { "no" });
            println!("database: {}", health.database);
            println!(
                "last pass: {}",
                health.last_pass_at.as_deref().unwrap_or("never")
            );
            println!("{}", health.next);
            for (s, n) in &counts {
                println!("{:<10} {n}", s.as_str());
            }
            for p in &health.problems {
                println!("problem: {p}");
            }
        }
    }
    Ok(if health.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
