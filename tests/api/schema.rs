//! One schema, two dialects: the SQLite and PostgreSQL migrations must reach
//! the same tables, columns, keys, constraints and triggers, or a database
//! moved with `migrate-db` (or code tested on one backend) behaves otherwise
//! on the other.

use std::collections::BTreeSet;
use std::time::Duration;

use keydates::db::{self, Pool};
use secrecy::SecretString;
use sqlx::Row;

use crate::pg;

/// One fact about a schema, in words common to both dialects.
type Facts = BTreeSet<String>;

/// `INTEGER`, `BIGINT` and `BIGSERIAL` hold the same values here; so do `TEXT`
/// and `character varying`.
fn kind(declared: &str) -> &'static str {
    let d = declared.to_ascii_lowercase();
    if d.contains("int") || d.contains("serial") {
        "integer"
    } else {
        "text"
    }
}

/// A default as written, without PostgreSQL's casts; a sequence is no default
/// (SQLite numbers an `INTEGER PRIMARY KEY` itself).
fn default(value: Option<String>) -> String {
    match value {
        None => "none".into(),
        Some(v) if v.starts_with("nextval(") => "none".into(),
        Some(v) => v
            .split("::")
            .next()
            .unwrap_or_default()
            .trim_matches('\'')
            .to_string(),
    }
}

/// The values a `CHECK (column IN (...))` allows, as `table.column in {..}`.
fn allowed(table: &str, column: &str, text: &str) -> String {
    let values: BTreeSet<&str> = text.split('\'').skip(1).step_by(2).collect();
    format!("check {table}.{column} in {values:?}")
}

async fn sqlite_facts(pool: &Pool) -> Facts {
    let mut facts = Facts::new();
    let tables: Vec<(String, String)> = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    for (table, sql) in &tables {
        facts.insert(format!("table {table}"));
        let columns = sqlx::query(&format!(
            "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        let mut key: Vec<(i64, String)> = Vec::new();
        for c in &columns {
            let name: String = c.get(0);
            let pk: i64 = c.get(4);
            let not_null = c.get::<i64, _>(2) == 1 || pk > 0;
            facts.insert(format!(
                "column {table}.{name} {} {} default {}",
                kind(&c.get::<String, _>(1)),
                if not_null { "not null" } else { "null" },
                default(c.get(3)),
            ));
            if pk > 0 {
                key.push((pk, name));
            }
        }
        key.sort();
        let key: Vec<String> = key.into_iter().map(|(_, n)| n).collect();
        facts.insert(format!("primary key {table} ({})", key.join(", ")));
        for fk in sqlx::query(&format!(
            "SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{table}')"
        ))
        .fetch_all(pool)
        .await
        .unwrap()
        {
            facts.insert(format!(
                "foreign key {table}.{} -> {}.{}",
                fk.get::<String, _>(0),
                fk.get::<String, _>(1),
                fk.get::<String, _>(2)
            ));
        }
        for index in sqlx::query(&format!(
            "SELECT name, \"unique\", origin FROM pragma_index_list('{table}')"
        ))
        .fetch_all(pool)
        .await
        .unwrap()
        {
            if index.get::<String, _>(2) == "pk" {
                continue;
            }
            let name: String = index.get(0);
            let columns: Vec<String> = sqlx::query(&format!(
                "SELECT name FROM pragma_index_info('{name}') ORDER BY seqno"
            ))
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
            facts.insert(format!(
                "{} {table} ({})",
                if index.get::<i64, _>(1) == 1 {
                    "unique"
                } else {
                    "index"
                },
                columns.join(", ")
            ));
        }
        // Each CHECK here is `column IN (...)`, written beside its column.
        for line in sql.lines() {
            if let Some((before, check)) = line.split_once("CHECK (") {
                let column = check
                    .split_whitespace()
                    .next()
                    .filter(|w| *w != "(")
                    .map(str::to_string)
                    .or_else(|| before.split_whitespace().next().map(str::to_string))
                    .unwrap();
                facts.insert(allowed(table, &column, check));
            }
        }
    }
    for t in sqlx::query("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'")
        .fetch_all(pool)
        .await
        .unwrap()
    {
        let table: String = t.get(0);
        let sql: String = t.get(1);
        for event in ["INSERT", "UPDATE", "DELETE"] {
            if sql
                .split(" ON ")
                .next()
                .is_some_and(|head| head.contains(event))
            {
                facts.insert(format!("trigger after {event} on {table}"));
            }
        }
    }
    facts
}

async fn postgres_facts(pool: &Pool) -> Facts {
    let mut facts = Facts::new();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    for table in &tables {
        facts.insert(format!("table {table}"));
        for c in sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            facts.insert(format!(
                "column {table}.{} {} {} default {}",
                c.get::<String, _>(0),
                kind(&c.get::<String, _>(1)),
                if c.get::<String, _>(2) == "NO" {
                    "not null"
                } else {
                    "null"
                },
                default(c.get(3)),
            ));
        }
        // Keys, uniques and indexes from the catalogue, columns in order.
        for index in sqlx::query(
            "SELECT i.indisprimary::int::int8, i.indisunique::int::int8,
                    (SELECT string_agg(a.attname::text, ', ' ORDER BY k.n)
                     FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            let columns: String = index.get(2);
            let what = if index.get::<i64, _>(0) == 1 {
                "primary key"
            } else if index.get::<i64, _>(1) == 1 {
                "unique"
            } else {
                "index"
            };
            facts.insert(format!("{what} {table} ({columns})"));
        }
        for con in sqlx::query(
            "SELECT c.contype::text, pg_get_constraintdef(c.oid),
                    (SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = c.conrelid AND a.attnum = c.conkey[1]),
                    (SELECT r.relname::text FROM pg_class r WHERE r.oid = c.confrelid),
                    (SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = c.confrelid AND a.attnum = c.confkey[1])
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
             WHERE t.relname = $1 AND c.contype IN ('c', 'f')",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            let column: String = con.get(2);
            if con.get::<String, _>(0) == "c" {
                facts.insert(allowed(table, &column, &con.get::<String, _>(1)));
            } else {
                facts.insert(format!(
                    "foreign key {table}.{column} -> {}.{}",
                    con.get::<String, _>(3),
                    con.get::<String, _>(4)
                ));
            }
        }
    }
    for t in sqlx::query(
        "SELECT DISTINCT event_object_table::text, event_manipulation::text, action_orientation::text
         FROM information_schema.triggers WHERE trigger_schema = current_schema()",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    {
        let (table, event): (String, String) = (t.get(0), t.get(1));
        // PostgreSQL alone announces changes to other instances (LISTEN/NOTIFY).
        if table == "record_changes" && t.get::<String, _>(2) == "STATEMENT" {
            continue;
        }
        facts.insert(format!("trigger after {event} on {table}"));
    }
    facts
}

#[test]
fn sqlite_and_postgresql_migrations_reach_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = pg::shared().new_database();
    let (sqlite, postgres) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let timeout = Duration::from_secs(10);
            let sqlite = db::open(&dir.path().join("keydates.db"), timeout)
                .await
                .unwrap();
            let postgres = db::open_postgres(&SecretString::from(url), timeout)
                .await
                .unwrap();
            (sqlite_facts(&sqlite).await, postgres_facts(&postgres).await)
        });
    assert!(
        sqlite.len() > 80,
        "the comparison sees the schema: {sqlite:#?}"
    );
    assert!(
        sqlite
            .iter()
            .any(|f| f.starts_with("check outbox.status in")),
        "{sqlite:#?}"
    );
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in SQLite: {only_sqlite:#?}\nonly in PostgreSQL: {only_postgres:#?}"
    );
}
