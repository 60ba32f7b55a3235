//! How planning and the per-pass bookkeeping grow with the number of records:
//! time and peak memory at 1k, 10k, 100k (and, with KEYDATES_BENCH_SIZES,
//! 1M) cases against the shipped rules, through a real SQLite file.
//!
//! `cargo bench --bench scale` measures; under `cargo test` it runs once, small.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use keydates::config::{Settings, TransportKind};
use keydates::db::Pool;
use keydates::delivery::{Engine, plan_if_changed};
use keydates::records::Records;
use keydates::records::{self, sample};
use keydates::{outbox, plan};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn write_records(pool: &Pool, r: &Records) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for a in r.authorities.values() {
        sqlx::query("INSERT INTO authorities (code, name, region, dcs_name, dcs_email, coordinator_email) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&a.code)
            .bind(&a.name)
            .bind(a.region.id())
            .bind(&a.dcs_name)
            .bind(a.dcs_email.as_str())
            .bind(a.coordinator_email.as_ref().map(|e| e.as_str()))
            .execute(&mut *tx)
            .await?;
    }
    for c in r.cases.values() {
        sqlx::query("INSERT INTO cases (case_ref, authority_code, judgement, report_received_on, plan_received_on, lead_inspector_email, dfe_link_email, closed) VALUES ($1, $2, $3, $4, NULL, $5, NULL, 0)")
            .bind(&c.case_ref)
            .bind(&c.authority_code)
            .bind(c.judgement.id())
            .bind(c.report_received_on.to_string())
            .bind(c.lead_inspector_email.as_str())
            .execute(&mut *tx)
            .await?;
    }
    for v in &r.visits {
        sqlx::query("INSERT INTO visits (case_ref, visit_no, starts_on, lead_inspector_email, audited_cases, cancelled) VALUES ($1, $2, $3, $4, $5, 0)")
            .bind(&v.case_ref)
            .bind(v.visit_no as i64)
            .bind(v.starts_on.to_string())
            .bind(v.lead_inspector_email.as_str())
            .bind(v.audited_cases.join(";"))
            .execute(&mut *tx)
            .await?;
    }
    for s in r.seminars.values() {
        sqlx::query("INSERT INTO seminars (seminar_ref, title, region, held_on, venue, confirmed, cancelled) VALUES ($1, $2, $3, $4, $5, 1, 0)")
            .bind(&s.seminar_ref)
            .bind(&s.title)
            .bind(s.region.id())
            .bind(s.held_on.to_string())
            .bind(&s.venue)
            .execute(&mut *tx)
            .await?;
    }
    for d in &r.delegates {
        sqlx::query(
            "INSERT INTO delegates (seminar_ref, authority_code, name, email) VALUES ($1, $2, $3, $4)",
        )
        .bind(&d.seminar_ref)
        .bind(&d.authority_code)
        .bind(&d.name)
        .bind(d.email.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn rss_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Gives freed memory back and restarts the peak, so that the next peak is
/// the next step's own.
fn reset_peak() {
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn measure(n: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/keydates.toml"
    )))?;
    settings.database.url = dir.path().join("bench.db").display().to_string();
    settings.mail.spool_dir = dir.path().join("mail");
    settings.mail.transport = TransportKind::File;
    let db = settings.database_path();
    let engine = Engine::new(settings)?;
    let pool = keydates::db::open(&db, Duration::from_secs(30)).await?;
    // The records' reports spread over 300 days from `start`; `now` is in
    // the middle, so the outbox holds what falls due in the next week.
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let now = Utc.with_ymd_and_hms(2027, 2, 26, 7, 0, 0).unwrap();

    let records = sample::generate(n, start);
    let t = Instant::now();
    write_records(&pool, &records).await?;
    let write = t.elapsed();

    let t = Instant::now();
    let planned = plan::plan(&records, &engine.settings, &engine.calendar);
    let plan_all = t.elapsed();
    let actions = planned.len();
    drop(planned);
    let today = now.date_naive();
    let horizon = plan::Horizon {
        until: keydates::delivery::horizon_end(&engine.settings, now),
        today,
        ..plan::Horizon::default()
    };
    let t = Instant::now();
    let within = plan::plan_within(
        &records,
        &engine.settings,
        &engine.calendar,
        keydates::config::rules::RuleOn::ALL,
        Some(&horizon),
    );
    let plan_horizon = t.elapsed();
    let within_len = within.len();
    drop(within);
    drop(records);

    let t = Instant::now();
    drop(records::store::load(&pool).await?);
    let read_all = t.elapsed();
    let t = Instant::now();
    let mut kept = 0;
    keydates::delivery::plan_every_record(&engine, &pool, &horizon, async |batch| {
        kept += batch.len();
        Ok(())
    })
    .await?;
    assert_eq!(kept, within_len, "batch by batch plans what one plan does");
    let read_and_plan = t.elapsed();

    reset_peak();
    let t = Instant::now();
    plan_if_changed(&engine, &pool, now).await?;
    let first = t.elapsed();
    let first_peak = rss_mib("VmHWM:");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(&pool)
        .await?;
    // As if the due ones had gone, so that the next pass finds nothing to send.
    sqlx::query("UPDATE outbox SET status = 'sent' WHERE status = 'pending' AND send_at <= $1")
        .bind(outbox::ts(now))
        .execute(&pool)
        .await?;

    // A pass in which nothing changed: the planning check, releasing stale
    // claims, expiry, and looking for a due row. The median of five: the
    // first after a large write may also fold the write-ahead log back in.
    let mut idle = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let skipped = plan_if_changed(&engine, &pool, now).await?;
        outbox::release_interrupted(&pool, now, chrono::Duration::seconds(300)).await?;
        outbox::expire(&pool, now).await?;
        let claimed = outbox::claim(&pool, now, "bench:0", "bench.invalid").await?;
        idle.push(t.elapsed());
        assert!(skipped.is_none() && claimed.is_none());
    }
    idle.sort();
    let idle = idle[2];

    records::edit::move_visit(
        &pool,
        "C0000000",
        1,
        NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
    )
    .await?;
    let t = Instant::now();
    plan_if_changed(&engine, &pool, now).await?;
    let one_change = t.elapsed();

    // The next morning: the horizon moves on a day, and every record is
    // planned again for the day that came into reach.
    let t = Instant::now();
    plan_if_changed(&engine, &pool, now + chrono::Duration::days(1)).await?;
    let next_day = t.elapsed();

    println!(
        "| {n} | {actions} | {rows} | {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.0} |",
        ms(write),
        ms(plan_all),
        ms(plan_horizon),
        ms(read_all),
        ms(read_and_plan),
        ms(first),
        first_peak,
        ms(idle),
        ms(one_change),
        ms(next_day),
        peak_rss_mib()
    );
    pool.close().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if measuring {
        std::env::var("KEYDATES_BENCH_SIZES")
            .unwrap_or_else(|_| "1000,10000,100000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    } else {
        vec![200]
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    println!(
        "| cases | actions | outbox rows | write records ms | plan everything (pure) ms | plan the horizon (pure) ms | read every record ms | read and plan the horizon in batches ms | first pass: load+plan+reconcile ms | first pass peak RSS MiB | pass, nothing changed ms | pass after one change ms | next day's pass ms | process peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for n in sizes {
        rt.block_on(measure(n))?;
    }
    Ok(())
}
