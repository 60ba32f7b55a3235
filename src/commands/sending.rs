//! Commands that run passes or show what would be sent.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{done, instant};
use super::{out, outln};
use crate::cli::Now;
use crate::config::Settings;
use crate::db;
use crate::delivery::transport::Mailer;
use crate::delivery::{self, Clock, Engine};
use crate::domain::{EmailAddress, Subject};
use crate::outbox::{self, OutboxRow};
use crate::plan;
use crate::records::store;

pub async fn run(
    settings: Settings,
    config_path: PathBuf,
    once: bool,
    now: Option<Now>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let clock = match now {
        Some(_) => Clock::Fixed(instant(now, &settings)),
        None => Clock::System,
    };
    let pool = db::connect(&settings).await?;
    let engine = std::sync::Arc::new(Engine::new(settings)?);
    if dry_run {
        let due = delivery::dry_run(&engine, &pool, clock.now()).await?;
        for (row, composed) in &due {
            match composed {
                Ok(c) => outln!(
                    "would send {} {} to {} ({}; {} attachment(s))",
                    row.rule,
                    row.subject,
                    plan::joined(&row.recipients.to),
                    c.rendered.subject,
                    c.attachments.len()
                ),
                Err(e) => outln!("would fail {} {}: {e}", row.rule, row.subject),
            }
        }
        return done(format!(
            "dry run: {} email(s) due; nothing sent or recorded",
            due.len()
        ));
    }
    let stop = crate::service::stop_on_signals()?;
    if !once {
        crate::service::run(pool, engine, config_path, clock, stop).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = delivery::run_pass(&engine, &pool, clock, &stop).await?;
    if let Some(fault) = crate::delivery::relay_fault::current(&pool).await? {
        outln!(
            "pass: {} sent; the mail relay cannot be used, emails wait: {}",
            report.sent,
            fault.error
        );
        return Ok(ExitCode::from(2));
    }
    done(format!(
        "pass: {} new, {} updated, {} cancelled, {} sent, {} retrying, {} failed, {} missed",
        report.reconcile.added + report.reconcile.revived,
        report.reconcile.updated,
        report.reconcile.cancelled,
        report.sent,
        report.retrying,
        report.failed,
        report.expired + report.reconcile.missed_while_stopped as u64,
    ))
}

pub async fn send_test(settings: Settings, to: &EmailAddress) -> anyhow::Result<ExitCode> {
    let mailer = Mailer::from_settings(&settings)?;
    let message = crate::delivery::compose::builder(&settings)
        .to(to.mailbox())
        .subject("keydates: test message")
        .message_id(Some(crate::domain::message_id(
            "test",
            &settings.mail.message_id_domain,
        )))
        .body(format!(
            "This is a test message from keydates, sent through {}.\n",
            Mailer::describe(&settings)
        ))?;
    match mailer.send(&message, &[]).await.into_result() {
        Ok(reply) => done(format!("sent: {reply}")),
        Err(e) => bail!("not sent: {e}"),
    }
}

pub async fn preview(
    settings: Settings,
    id: Option<i64>,
    rule: Option<String>,
    subject: Option<String>,
    eml: Option<&Path>,
    now: Option<Now>,
) -> anyhow::Result<ExitCode> {
    let now = instant(now, &settings);
    let pool = db::connect_existing(&settings).await?;
    let engine = Engine::new(settings)?;
    let records = store::load(&pool).await?;
    let row = match (id, rule, subject) {
        (Some(id), _, _) => outbox::get(&pool, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no outbox row {id}"))?,
        (None, Some(rule), Some(subject)) => {
            let kind = engine
                .settings
                .rules
                .iter()
                .find(|r| r.id == rule)
                .ok_or_else(|| anyhow::anyhow!("--rule: no rule `{rule}` in the config"))?
                .on;
            let key = Subject::parse(kind.subject_type(), &subject)
                .map_err(|e| anyhow::anyhow!("--subject: {e}"))?;
            let planned = plan::plan(&records, &engine.settings, &engine.calendar);
            let a = planned
                .into_iter()
                .find(|a| a.rule_id == rule && a.subject == key)
                .ok_or_else(|| {
                    anyhow::anyhow!("rule `{rule}` plans nothing for `{subject}` from the records")
                })?;
            OutboxRow::from_planned(&a)
        }
        _ => bail!("give an outbox id, or --rule and --subject"),
    };
    let composed = delivery::compose_row(&engine, &records, &row, now)?;
    if let Some(path) = eml {
        std::fs::write(path, composed.message.formatted())
            .with_context(|| format!("while writing {}", path.display()))?;
        return done(format!("written to {}", path.display()));
    }
    out!("{}", composed.message.headers());
    outln!();
    outln!("{}", composed.rendered.text);
    for a in &composed.attachments {
        outln!(
            "[attachment] {} ({}, {} bytes)",
            a.name,
            a.content_type,
            a.bytes.len()
        );
    }
    if composed.rendered.html.is_some() {
        outln!("[alternative] text/html");
    }
    Ok(ExitCode::SUCCESS)
}
