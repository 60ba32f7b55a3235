//! The database: opening it (SQLite file or PostgreSQL server), migrating it,
//! the few places where the two speak differently, and explaining storage
//! errors. Used by the command line, the daemon, tests and benchmarks alike.
//!
//! Everything else talks to `Pool` through one code path: SQL written for
//! both (`$1` placeholders, text dates, integer flags) over sqlx's `Any`.

pub mod copy;
pub mod state;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::config::{Location, Settings, redact};

/// Timestamps are stored as fixed-width UTC text, so they compare as text
/// (on both backends).
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn parse_ts(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub type Pool = sqlx::AnyPool;
pub type Conn = sqlx::AnyConnection;
pub type Row = sqlx::any::AnyRow;
pub type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(pool: &Pool) -> Backend {
        match pool.connect_options().database_url.scheme() {
            "postgres" | "postgresql" => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    pub fn of_conn(conn: &Conn) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// `(…), (…)`: placeholders for `rows` rows of `columns` values, to
    /// follow `VALUES`. SQLite is given anonymous ones: it looks a numbered
    /// one up by walking all the others, which makes a statement with
    /// thousands of them quadratic.
    pub fn values_list(self, rows: usize, columns: usize) -> String {
        let mut sql = String::new();
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match self {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => sql.push_str(&format!("${}", row * columns + column + 1)),
                }
            }
            sql.push(')');
        }
        sql
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Sixteen random hex digits, as SQL: claims mint Message-IDs in the
    /// same statement that takes the row.
    pub fn random_hex(self) -> &'static str {
        match self {
            Backend::Sqlite => "lower(hex(randomblob(8)))",
            Backend::Postgres => "substr(replace(gen_random_uuid()::text, '-', ''), 1, 16)",
        }
    }

    /// What a claim's inner select adds so that several instances never
    /// take the same row: SQLite has one writer at a time already.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Opens what `database.url` names, and makes it when it is not there (a
/// SQLite file and its folder): for `run`, `import` and `demo`, which are
/// how an installation begins.
pub async fn connect(settings: &Settings) -> anyhow::Result<Pool> {
    let busy = Duration::from_secs(settings.database.busy_timeout_secs);
    // A connection for each sending worker, and for the outcome writer, the
    // planner, the console and the heartbeat beside them.
    let connections = settings.mail.smtp.pool_size.max(1) + 4;
    match settings.database_location() {
        Location::Sqlite(path) => open_sized(&path, busy, connections).await,
        Location::Postgres(url) => {
            let statements = Duration::from_secs(settings.database.statement_timeout_secs);
            open_postgres_sized(&url, busy, connections, statements).await
        }
    }
}

/// Opens what `database.url` names, and only if it is there: a mistyped
/// path is an error, not a new empty database reported as healthy.
pub async fn connect_existing(settings: &Settings) -> anyhow::Result<Pool> {
    if let Location::Sqlite(path) = settings.database_location()
        && !path.is_file()
    {
        anyhow::bail!(
            "database.url: {} does not exist; fix database.url, or start with `keydates import` or `keydates run`, which create it",
            path.display()
        );
    }
    connect(settings).await
}

fn install_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// Opens (creating if need be) the database in WAL mode, with a busy timeout so
/// the command line can change records while the daemon runs, and migrates it.
pub async fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Pool> {
    open_sized(path, busy_timeout, 4).await
}

#[tracing::instrument(skip_all, fields(path = %path.display()))]
async fn open_sized(path: &Path, busy_timeout: Duration, connections: u32) -> anyhow::Result<Pool> {
    install_drivers();
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("while creating the database folder {}", dir.display()))?;
    }
    let path = std::path::absolute(path)
        .with_context(|| format!("while resolving the database path {}", path.display()))?;
    let url = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .to_url_lossy();
    let busy_ms = busy_timeout.as_millis();
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(&*format!(
                    "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                ))
                .await?;
                Ok(())
            })
        })
        .connect(url.as_str())
        .await
        .with_context(|| format!("while opening the database {}", path.display()))?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&pool)
        .await
        .with_context(|| format!("while migrating the database {}", path.display()))?;
    Ok(pool)
}

/// Connects to a PostgreSQL database and migrates it. `acquire_timeout` is
/// how long a caller waits for a connection (the server may be restarting).
pub async fn open_postgres(url: &SecretString, acquire_timeout: Duration) -> anyhow::Result<Pool> {
    open_postgres_sized(url, acquire_timeout, 8, Duration::from_secs(60)).await
}

/// As `open_postgres`, with `connections` in the pool and every statement
/// cancelled by the server after `statement_timeout`.
#[tracing::instrument(skip_all, fields(url = %redact(url.expose_secret())))]
async fn open_postgres_sized(
    url: &SecretString,
    acquire_timeout: Duration,
    connections: u32,
    statement_timeout: Duration,
) -> anyhow::Result<Pool> {
    install_drivers();
    let shown = redact(url.expose_secret());
    // One connection first: a pool says only that it timed out, where this
    // says why (refused, unknown host, wrong password, no such database).
    let first = tokio::time::timeout(
        acquire_timeout,
        sqlx::AnyConnection::connect(url.expose_secret()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within {acquire_timeout:?}"))
    .and_then(|c| c.map_err(anyhow::Error::from))
    .with_context(|| format!("while connecting to the database {shown}"))?;
    first.close().await.ok();
    let statement_ms = statement_timeout.as_millis().max(1);
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(acquire_timeout)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(&*format!("SET statement_timeout = {statement_ms}"))
                    .await?;
                Ok(())
            })
        })
        .connect(url.expose_secret())
        .await
        .with_context(|| format!("while connecting to the database {shown}"))?;
    migrate_postgres(&pool)
        .await
        .with_context(|| format!("while migrating the database {shown}"))?;
    Ok(pool)
}

/// Several instances may start at once: the migration runs under a lock of
/// its own (sqlx takes one), so each sees the schema whole.
async fn migrate_postgres(pool: &Pool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations/postgres").run(pool).await?;
    Ok(())
}

/// A write transaction. On SQLite it takes the write lock at once, so two
/// writers queue instead of one failing at its first write.
pub async fn begin(pool: &Pool) -> anyhow::Result<Tx<'static>> {
    let tx = match Backend::of(pool) {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    };
    tx.context("while starting a transaction")
}

/// Work that one instance at a time may do, when several share a database.
#[derive(Debug, Clone, Copy)]
pub enum Job {
    /// Planning and reconciling the outbox.
    Planning = 1,
    /// Deciding whether today's digest has gone, and sending it.
    Digest = 2,
}

/// Held while doing a `Job`. On PostgreSQL it is a session advisory lock on
/// a connection of its own, so an instance that dies lets go with its
/// connection; SQLite's single writer already keeps such work apart.
struct Exclusive(Option<sqlx::pool::PoolConnection<sqlx::Any>>, i64);

/// Chosen once, so that these locks keep clear of any other application's
/// advisory locks in a shared database.
const LOCK_BASE: i64 = 0x6b65_7964_6174_0000; // "keydat"

/// Does `work` once no other instance is doing `job`, holding it meanwhile.
pub async fn exclusively<T>(
    pool: &Pool,
    job: Job,
    work: impl AsyncFnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let lock = exclusive(pool, job).await?;
    let done = work().await?;
    lock.release().await?;
    Ok(done)
}

/// Waits until no other instance is doing `job`, then holds it.
async fn exclusive(pool: &Pool, job: Job) -> anyhow::Result<Exclusive> {
    let key = LOCK_BASE + job as i64;
    match Backend::of(pool) {
        Backend::Sqlite => Ok(Exclusive(None, key)),
        Backend::Postgres => {
            let mut conn = pool.acquire().await?;
            // Tried, not waited on: a wait would hold a statement open past
            // statement_timeout, and another instance's long plan is no
            // reason to hang. This pass gives way; the next tries again.
            let deadline = tokio::time::Instant::now() + LOCK_WAIT;
            loop {
                let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await
                    .with_context(|| format!("while asking for the {job:?} lock"))?;
                if held {
                    return Ok(Exclusive(Some(conn), key));
                }
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "another instance has been doing {job:?} for over {}s; this pass gives way",
                        LOCK_WAIT.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// How long an instance waits for another's `Job` before giving this pass up.
const LOCK_WAIT: Duration = Duration::from_secs(120);

impl Exclusive {
    async fn release(mut self) -> anyhow::Result<()> {
        if let Some(mut conn) = self.0.take() {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.1)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for Exclusive {
    /// Not released (an error on the way): the connection is closed rather
    /// than returned to the pool, which ends the lock with it.
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(conn.detach());
        }
    }
}

/// The channel on which a change that another instance should act on now
/// (a record edited, an email retried or confirmed) is announced.
pub const CHANGES_CHANNEL: &str = "keydates_changes";

/// Tells the other instances something changed; SQLite has no others.
pub async fn announce(pool: &Pool) -> Result<(), sqlx::Error> {
    if Backend::of(pool) == Backend::Postgres {
        sqlx::query("SELECT 1 FROM pg_notify($1, '')")
            .bind(CHANGES_CHANNEL)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Calls `wake` whenever another instance announces a change, until the
/// process ends; nothing on SQLite. A lost connection is made again (a
/// change announced meanwhile waits for the next poll).
pub async fn listen_for_changes(
    pool: &Pool,
    wake: impl Fn() + Send + 'static,
) -> anyhow::Result<()> {
    if Backend::of(pool) != Backend::Postgres {
        return Ok(());
    }
    let url = pool.connect_options().database_url.to_string();
    let mut listener = sqlx::postgres::PgListener::connect(&url)
        .await
        .with_context(|| format!("while listening on {}", redact(&url)))?;
    listener.listen(CHANGES_CHANNEL).await?;
    tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wake(),
                // The connection was lost and will be made again; what was
                // announced meanwhile is looked for at once.
                Ok(None) => wake(),
                Err(e) => {
                    tracing::warn!(error = %e, "not hearing other instances' changes; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    });
    Ok(())
}

/// The error as one line, with a hint when SQLite says the disk is full,
/// read-only or failing, which its own messages leave unclear.
pub fn explain(e: &anyhow::Error) -> String {
    let storage = e
        .chain()
        .any(|cause| match cause.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db))
                if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() =>
            {
                db.code()
                    .and_then(|c| c.parse::<i32>().ok())
                    // SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
                    .is_some_and(|code| matches!(code & 0xff, 8 | 10 | 13 | 14))
            }
            // A file that cannot be written, not a server that cannot be reached.
            Some(sqlx::Error::Io(io)) => !matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::NotConnected
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::UnexpectedEof
            ),
            _ => false,
        });
    let text = format!("{e:#}");
    if storage {
        format!("{text} (is the disk holding the database full, or its folder read-only?)")
    } else {
        text
    }
}

// References are stored as text and read back through their parser, so a
// reference changed by hand into something unsafe reads as a damaged row.
impl<DB: sqlx::Database> sqlx::Type<DB> for crate::domain::Reference
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for crate::domain::Reference
where
    String: sqlx::Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, DB>>::encode_by_ref(&self.as_str().to_string(), buf)
    }
}

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for crate::domain::Reference
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(
        value: <DB as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
        crate::domain::Reference::parse(&text).map_err(|e| format!("`{text}` {e}").into())
    }
}
