//! The database: opening it (WAL, busy timeout, foreign keys), migrating it,
//! and explaining storage errors. Used by the command line, the daemon,
//! tests and benchmarks alike.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::Settings;

/// Opens the database the settings name.
pub async fn connect(settings: &Settings) -> anyhow::Result<SqlitePool> {
    open(
        &settings.database_path(),
        Duration::from_secs(settings.database.busy_timeout_secs),
    )
    .await
}

/// Opens (creating if need be) the database in WAL mode, with a busy timeout so
/// the command line can change records while the daemon runs, and migrates it.
#[tracing::instrument(skip_all, fields(path = %path.display()))]
pub async fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<SqlitePool> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the database folder {}", dir.display()))?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(busy_timeout)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .with_context(|| format!("while opening the database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .with_context(|| format!("while migrating the database {}", path.display()))?;
    Ok(pool)
}

/// The error as one line, with a hint when SQLite says the disk is full,
/// read-only or failing, which its own messages leave unclear.
pub fn explain(e: &anyhow::Error) -> String {
    let storage = e
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                // SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
                .is_some_and(|code| matches!(code & 0xff, 8 | 10 | 13 | 14)),
            Some(sqlx::Error::Io(_)) => true,
            _ => false,
        });
    let text = format!("{e:#}");
    if storage {
        format!("{text} (is the disk holding the database full, or its folder read-only?)")
    } else {
        text
    }
}
