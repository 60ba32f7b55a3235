//! `demo`: fictional records and their emails, whatever the date.

use std::process::ExitCode;

use anyhow::bail;
use chrono::Local;

use super::done;
use super::outln;
use crate::calendar::Direction;
use crate::config::{Settings, TransportKind};
use crate::delivery::{self, Clock, Engine};
use crate::records::demo;
use crate::records::{import, store};
use crate::{db, plan};

pub async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    if settings.mail.transport != TransportKind::File {
        bail!(
            "demo only writes mail to files: set mail.transport = \"file\" (it is {:?})",
            settings.mail.transport
        );
    }
    let pool = db::connect(&settings).await?;
    let existing = store::load(&pool).await?;
    if existing
        .authorities
        .keys()
        .any(|code| code != demo::AUTHORITY)
    {
        bail!(
            "the database {} holds real records; demo only writes to an empty or demo database",
            settings.database_location()
        );
    }
    let engine = std::sync::Arc::new(Engine::new(settings)?);
    let calendar = &engine.calendar;
    let today = Local::now().date_naive();
    let day = calendar
        .roll(today, Direction::Forward)
        .ok_or_else(|| anyhow::anyhow!("no working day after {today}"))?;
    let rules: Vec<_> = engine.settings.enabled_rules().collect();
    let files = demo::records(&rules, day, calendar);
    // Beside the database (or the mail folder, when the database is a
    // server's), where the service may write.
    let beside = match engine.settings.database_location() {
        crate::config::Location::Sqlite(path) => path,
        crate::config::Location::Postgres(_) => engine.settings.spool_dir(),
    };
    let dir = beside
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("demo");
    for (kind, path) in demo::write(&dir, &files)? {
        import::import(&pool, kind, &path).await?;
    }
    let at = plan::local_instant(
        day,
        engine.settings.schedule.send_hour,
        engine.settings.time_zone(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let report = delivery::run_pass(&engine, &pool, Clock::Fixed(at), &stop).await?;
    outln!(
        "demo records for {} written to {} and imported",
        crate::calendar::uk_long_date(day),
        dir.display()
    );
    outln!(
        "{} email(s) sent as of {at}, with their documents attached",
        report.sent
    );
    done(format!(
        "open them in any mail client: {}",
        engine.settings.spool_dir().display()
    ))
}
