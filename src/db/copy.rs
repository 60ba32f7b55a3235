//! Moving an installation from its SQLite file to PostgreSQL: every table,
//! history included, into a database that holds nothing yet, in one
//! transaction, so a failure leaves the target as empty as it was.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use sqlx::Row;

use crate::db::{self, Backend, Pool};

/// Every table keydates keeps, parents before children. `instances` is left
/// out: it says which daemons run now, and none runs on the new database yet;
/// so is `web_sessions`: after a move, people sign in again.
const TABLES: &[&str] = &[
    "authorities",
    "cases",
    "visits",
    "seminars",
    "delegates",
    "invited_authorities",
    "conversations",
    "outbox",
    "confirmations",
    "attempts",
    "audit_log",
    "daemon_state",
    "record_changes",
];

/// Tables whose numbering continues after the copied rows.
const SERIALS: &[(&str, &str)] = &[
    ("outbox", "id"),
    ("attempts", "id"),
    ("audit_log", "id"),
    ("record_changes", "seq"),
];

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("--from {0}: no such file")]
    NoSource(String),
    #[error("--from {0}: not a keydates database ({1})")]
    NotKeydates(String, String),
    #[error(
        "--to: `{0}` is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )]
    NotPostgres(String),
    #[error(
        "--to {url}: the database is not empty ({table} has {rows} rows); \
         migrate-db writes only into a new, empty database"
    )]
    NotEmpty {
        url: String,
        table: &'static str,
        rows: i64,
    },
}

/// What was copied: each table with its row count.
pub type Copied = Vec<(&'static str, i64)>;

/// Copies the SQLite database at `from` into the empty PostgreSQL database
/// at `to`, creating its tables first.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    timeout: Duration,
) -> anyhow::Result<Copied> {
    if !from.is_file() {
        return Err(CopyError::NoSource(from.display().to_string()).into());
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(CopyError::NotPostgres(crate::config::redact(to)).into());
    }
    is_keydates(from).await?;
    let source = db::open(from, timeout).await?;
    let target = db::open_postgres(&SecretString::from(to.to_owned()), timeout).await?;
    for &table in TABLES {
        let rows = count(&target, table).await?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                url: crate::config::redact(to),
                table,
                rows,
            }
            .into());
        }
    }
    // One read transaction: the copy is of one moment, even if something
    // still writes to the file.
    let mut snapshot = source.begin().await?;
    let mut tx = target.begin().await?;
    let mut copied = Vec::new();
    for &table in TABLES {
        if table == "record_changes" {
            // Copying the records noted each of them as changed; what was
            // still to plan is what the source had noted.
            sqlx::query("DELETE FROM record_changes")
                .execute(&mut *tx)
                .await?;
        }
        let n = copy_table(&mut snapshot, &mut tx, table)
            .await
            .with_context(|| format!("while copying {table}"))?;
        copied.push((table, n));
    }
    for (table, column) in SERIALS {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                           COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    snapshot.rollback().await?;
    for &(table, rows) in &copied {
        let there = count(&target, table).await?;
        anyhow::ensure!(
            there == rows,
            "{table}: {rows} rows read but {there} in the new database"
        );
    }
    source.close().await;
    target.close().await;
    Ok(copied)
}

/// Looks before opening: opening brings a database's schema up to date,
/// which must not happen to some other program's file given by mistake.
async fn is_keydates(from: &Path) -> anyhow::Result<()> {
    use sqlx::{ConnectOptions, sqlite::SqliteConnectOptions};
    let shown = from.display().to_string();
    let not = |why: String| CopyError::NotKeydates(shown.clone(), why);
    // Neither created nor written: only read.
    let mut conn = SqliteConnectOptions::new()
        .filename(from)
        .connect()
        .await
        .map_err(|e| not(e.to_string()))?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('outbox', 'cases', '_sqlx_migrations')",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| not(e.to_string()))?;
    if tables < 3 {
        return Err(not("it has no outbox, cases or migrations table".into()).into());
    }
    Ok(())
}

async fn count(pool: &Pool, table: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await?)
}

#[derive(Clone, Copy)]
enum Kind {
    Integer,
    Text,
}

/// Rows read from the source at a time: a large outbox is copied without
/// holding it all in memory.
const ROWS_PER_READ: i64 = 10_000;

/// Copies one table, column by column as the target defines them, in
/// SQLite's row order, a few thousand rows to a statement.
async fn copy_table(
    source: &mut db::Conn,
    tx: &mut db::Conn,
    table: &'static str,
) -> anyhow::Result<i64> {
    debug_assert_eq!(Backend::of_conn(source), Backend::Sqlite);
    let columns: Vec<(String, Kind)> = sqlx::query(
        "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| {
        let kind = match r.get::<String, _>("type").as_str() {
            "bigint" | "integer" | "smallint" => Kind::Integer,
            _ => Kind::Text,
        };
        (r.get::<String, _>("name"), kind)
    })
    .collect();
    // A column the target lacks would be dropped in the copy: refuse instead.
    let source_columns: Vec<String> =
        sqlx::query(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .fetch_all(&mut *source)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<Result<_, _>>()?;
    if let Some(missing) = source_columns
        .iter()
        .find(|c| !columns.iter().any(|(name, _)| name == *c))
    {
        anyhow::bail!(
            "the PostgreSQL database has no column {table}.{missing}, which the SQLite one holds: \
             nothing was copied; bring both to the same keydates version first"
        );
    }
    let list = columns
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let read =
        format!("SELECT rowid, {list} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT $2");
    // PostgreSQL takes at most 65,535 parameters to a statement.
    let per_statement = (60_000 / columns.len().max(1)).max(1);
    let mut after = i64::MIN;
    let mut copied = 0;
    loop {
        let rows = sqlx::query(&read)
            .bind(after)
            .bind(ROWS_PER_READ)
            .fetch_all(&mut *source)
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get(0)?;
        for chunk in rows.chunks(per_statement) {
            let sql = format!(
                "INSERT INTO {table} ({list}) VALUES {}",
                Backend::Postgres.values_list(chunk.len(), columns.len())
            );
            let mut insert = sqlx::query(&sql);
            for row in chunk {
                // Column 0 is the rowid.
                for (i, (_, kind)) in columns.iter().enumerate() {
                    insert = match kind {
                        Kind::Integer => insert.bind(row.try_get::<Option<i64>, _>(i + 1)?),
                        Kind::Text => insert.bind(row.try_get::<Option<String>, _>(i + 1)?),
                    };
                }
            }
            insert.execute(&mut *tx).await?;
        }
        copied += rows.len() as i64;
    }
    Ok(copied)
}
