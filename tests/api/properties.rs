//! Properties of planning and reconciling over random records, against a
//! real SQLite file: planning is idempotent, and no key ever has two rows.

use chrono::{Days, NaiveDate, TimeZone, Utc};
use keydates::config::Settings;
use keydates::records::Records;
use keydates::records::sample;
use keydates::{outbox, plan};
use proptest::prelude::*;

fn settings() -> Settings {
    Settings::load(&crate::helpers::shipped_config()).expect("the shipped config loads")
}

/// Sample records reshaped by the generated choices.
fn records(n: usize, shifts: &[(u8, bool, bool)]) -> Records {
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let mut r = sample::generate(n, start);
    for ((case, visit), (shift, plan_in, cancel)) in r
        .cases
        .values_mut()
        .zip(r.visits.iter_mut())
        .zip(shifts.iter().cycle())
    {
        case.report_received_on = start + Days::new(u64::from(*shift));
        case.plan_received_on = plan_in.then_some(case.report_received_on + Days::new(60));
        visit.cancelled = *cancel;
        visit.starts_on = visit.starts_on + Days::new(u64::from(*shift % 7));
    }
    r
}

/// The examples imported into a fresh database, and an engine on it.
fn examples_with_engine() -> (crate::helpers::TestApp, keydates::delivery::Engine) {
    let app = crate::helpers::TestApp::new();
    app.import_examples();
    let mut settings = settings();
    settings.database.url = app.db_path().display().to_string();
    settings.mail.spool_dir = app.spool();
    let engine = keydates::delivery::Engine::new(settings).unwrap();
    (app, engine)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn planning_is_idempotent_and_keys_stay_unique(
        n in 1usize..12,
        shifts in prop::collection::vec((0u8..200, any::<bool>(), any::<bool>()), 1..12),
        later in prop::collection::vec((0u8..200, any::<bool>(), any::<bool>()), 1..12),
        day in 0u64..300,
        horizon in 1u64..400,
    ) {
        let settings = settings();
        let calendar = settings.calendar();
        let first = records(n, &shifts);
        let planned = plan::plan(&first, &settings, &calendar);
        // The same records listed in another order plan the same actions.
        let mut reordered = first.clone();
        reordered.visits.reverse();
        reordered.delegates.reverse();
        prop_assert_eq!(&planned, &plan::plan(&reordered, &settings, &calendar), "independent of the records' order");

        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        rt.block_on(async {
            let pool = keydates::db::open(
                &dir.path().join("p.db"),
                std::time::Duration::from_secs(5),
            )
            .await
            .unwrap();
            let now = Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap()
                + chrono::Duration::days(day as i64);
            let until = now.date_naive() + Days::new(horizon);
            let reach = outbox::Reach { until, watermark: None };
            let first = outbox::reconcile(&pool, &planned, now, reach).await.unwrap();
            let again = outbox::reconcile(&pool, &planned, now, reach).await.unwrap();
            assert_eq!(
                again,
                outbox::ReconcileReport { missed_on_arrival: first.missed_on_arrival, ..Default::default() },
                "a second reconcile changes nothing"
            );

            // The records change; reconciling the new plan keeps one row per key.
            let changed = records(n, &later);
            let replanned = plan::plan(&changed, &settings, &calendar);
            outbox::reconcile(&pool, &replanned, now, reach).await.unwrap();
            let dupes: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT key FROM outbox GROUP BY key HAVING COUNT(*) > 1)",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert_eq!(dupes, 0);
            // Every planned key within reach and not already past its limit
            // is there; every pending row is planned; no row was ever out of reach.
            let rows = outbox::list(&pool, None).await.unwrap();
            let keys: std::collections::HashSet<_> = replanned.iter().map(|a| a.key.as_str()).collect();
            for a in replanned.iter().filter(|a| a.record_from <= until && a.send_until > now) {
                assert!(rows.iter().any(|r| r.key == a.key), "{} missing", a.key);
            }
            for r in rows.iter().filter(|r| r.status == outbox::Status::Pending) {
                assert!(keys.contains(r.key.as_str()), "{} pending but not planned", r.key);
            }
            let reached: std::collections::HashSet<_> = planned
                .iter()
                .chain(&replanned)
                .filter(|a| a.record_from <= until && a.send_until > now)
                .map(|a| a.key.as_str())
                .collect();
            for r in &rows {
                assert!(reached.contains(r.key.as_str()), "{} stored out of reach", r.key);
            }
            pool.close().await;
        });
    }
}

#[test]
fn a_pass_with_nothing_changed_skips_planning_and_any_edit_brings_it_back() {
    let (app, engine) = examples_with_engine();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap();
    runtime().block_on(async {
        let pool = keydates::db::open(&app.db_path(), std::time::Duration::from_secs(5))
            .await
            .unwrap();
        let first = keydates::delivery::plan_if_changed(&engine, &pool, now)
            .await
            .unwrap();
        assert!(first.is_some_and(|r| r.added > 0));
        let second = keydates::delivery::plan_if_changed(&engine, &pool, now)
            .await
            .unwrap();
        assert_eq!(second, None, "nothing changed: nothing planned");
        keydates::records::edit::move_visit(
            &pool,
            "RIV-2026-01",
            1,
            // A day earlier: its data request falls due today, in the horizon.
            NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        )
        .await
        .unwrap();
        let third = keydates::delivery::plan_if_changed(&engine, &pool, now)
            .await
            .unwrap();
        assert!(
            third.is_some_and(|r| r.cancelled > 0 && r.added > 0),
            "{third:?}"
        );
        pool.close().await;
    });
}

/// One record change an admin can make.
#[derive(Debug, Clone)]
enum Edit {
    MoveVisit(usize, u64),
    CancelVisit(usize),
    PlanReceived(usize),
    CloseCase(usize),
    CancelSeminar(usize),
    ConfirmSeminar(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..3, 0u64..60).prop_map(|(v, d)| Edit::MoveVisit(v, d)),
        (0usize..3).prop_map(Edit::CancelVisit),
        (0usize..4).prop_map(Edit::PlanReceived),
        (0usize..4).prop_map(Edit::CloseCase),
        (0usize..2).prop_map(Edit::CancelSeminar),
        (0usize..2).prop_map(Edit::ConfirmSeminar),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Planning only what changed leaves the outbox exactly as planning
    /// everything would.
    #[test]
    fn planning_only_what_changed_matches_planning_everything(
        edits in prop::collection::vec(edit(), 1..8),
        day in 0u64..200,
    ) {
        let (app, engine) = examples_with_engine();
        let now = Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap() + chrono::Duration::days(day as i64);
        let cases = ["SOU-2026-01", "NOR-2026-01", "EAS-2026-01", "RIV-2026-01"];
        let visits = [("RIV-2026-01", 1), ("RIV-2026-01", 2), ("SOU-2026-01", 1)];
        let seminars = ["G2G-SW-2027-01", "G2G-NW-2027-01"];
        runtime().block_on(async {
            use keydates::records::edit as e;
            let pool = keydates::db::open(&app.db_path(), std::time::Duration::from_secs(5))
                .await
                .unwrap();
            keydates::delivery::plan_if_changed(&engine, &pool, now).await.unwrap();
            for edit in &edits {
                let base = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
                let done = match edit {
                    Edit::MoveVisit(v, d) => e::move_visit(&pool, visits[*v].0, visits[*v].1, base + Days::new(*d)).await,
                    Edit::CancelVisit(v) => e::cancel_visit(&pool, visits[*v].0, visits[*v].1).await,
                    Edit::PlanReceived(c) => e::plan_received(&pool, cases[*c], base).await,
                    Edit::CloseCase(c) => e::close_case(&pool, cases[*c]).await,
                    Edit::CancelSeminar(s) => {
                        e::cancel_seminar(&pool, seminars[*s], now.date_naive()).await
                    }
                    Edit::ConfirmSeminar(s) => e::confirm_seminar(&pool, seminars[*s]).await,
                };
                done.unwrap_or_else(|err| panic!("{edit:?}: {err}"));
                let report = keydates::delivery::plan_if_changed(&engine, &pool, now).await.unwrap();
                assert!(report.is_some(), "an edit is planned");
            }
            let all = keydates::records::store::load(&pool).await.unwrap();
            let planned = plan::plan(&all, &engine.settings, &engine.calendar);
            let until = keydates::delivery::horizon_end(&engine.settings, now);
            let reach = outbox::Reach { until, watermark: Some(until) };
            let full = outbox::reconcile(&pool, &planned, now, reach).await.unwrap();
            assert_eq!(
                full,
                outbox::ReconcileReport { missed_on_arrival: full.missed_on_arrival, ..Default::default() },
                "after {edits:?}"
            );
            pool.close().await;
        });
    }
}

/// Runs `plan_if_changed` on these days, one after another, against a fresh
/// copy of the examples; then expires what passed its limit by the last day.
/// Gives each key with its status.
fn outbox_after_passes(days: &[chrono::DateTime<Utc>]) -> Vec<(String, outbox::Status)> {
    let (app, engine) = examples_with_engine();
    runtime().block_on(async {
        let pool = keydates::db::open(&app.db_path(), std::time::Duration::from_secs(5))
            .await
            .unwrap();
        for day in days {
            keydates::delivery::plan_if_changed(&engine, &pool, *day)
                .await
                .unwrap();
        }
        outbox::expire(&pool, *days.last().unwrap()).await.unwrap();
        let mut rows: Vec<_> = outbox::list(&pool, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.status))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        pool.close().await;
        rows
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// A daemon stopped for any stretch catches up to the outbox a daemon
    /// that ran every day would have: every email that fell due meanwhile is
    /// there, as missed if its limit has passed, and nothing beyond the horizon.
    #[test]
    fn catching_up_after_a_stop_matches_running_every_day(
        start in 0i64..200,
        stopped in 1i64..60,
    ) {
        let first = Utc.with_ymd_and_hms(2026, 9, 1, 8, 0, 0).unwrap() + chrono::Duration::days(start);
        let every_day: Vec<_> = (0..=stopped).map(|d| first + chrono::Duration::days(d)).collect();
        let ran = outbox_after_passes(&every_day);
        let caught_up = outbox_after_passes(&[first, *every_day.last().unwrap()]);
        prop_assert_eq!(ran, caught_up);
    }
}
