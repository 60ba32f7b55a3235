//! Planning and working-day arithmetic at growing sizes. Run with
//! `cargo bench --bench planning`; figures go in BENCHMARKS.md.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keydates::calendar::Calendar;
use keydates::calendar::offset::Offset;
use keydates::config::Settings;
use keydates::plan;
use keydates::records::sample;

fn settings() -> Settings {
    Settings::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/keydates.toml"
    )))
    .expect("the shipped config loads")
}

fn planning(c: &mut Criterion) {
    let settings = settings();
    let calendar = settings.calendar();
    let start = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    for n in [1_000usize, 10_000, 100_000] {
        let records = sample::generate(n, start);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &records, |b, r| {
            b.iter(|| plan::plan(black_box(r), &settings, &calendar).len())
        });
    }
    group.finish();

    // What a pass plans: only the actions due in the next seven days, seen
    // from the middle of the records' dates, with no open rows to follow.
    let mut group = c.benchmark_group("plan-horizon");
    group.sample_size(10);
    let today = start + chrono::Days::new(180);
    let horizon = plan::Horizon {
        until: today + chrono::Days::new(7),
        today,
        watermark: Some(today + chrono::Days::new(6)),
        ..plan::Horizon::default()
    };
    for n in [100_000usize, 1_000_000] {
        let records = sample::generate(n, start);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &records, |b, r| {
            b.iter(|| {
                plan::plan_within(
                    black_box(r),
                    &settings,
                    &calendar,
                    keydates::config::rules::RuleOn::ALL,
                    Some(&horizon),
                )
                .len()
            })
        });
    }
    group.finish();
}

fn working_days(c: &mut Criterion) {
    let calendar = Calendar::default();
    let start = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    let mut group = c.benchmark_group("offset");
    for text in ["50 working days", "-8 working days", "-2 weeks", "6 months"] {
        let offset: Offset = text.parse().unwrap();
        group.throughput(Throughput::Elements(1));
        group.bench_function(text, |b| {
            b.iter(|| offset.apply(black_box(start), &calendar))
        });
    }
    group.finish();
}

criterion_group!(benches, planning, working_days);
criterion_main!(benches);
