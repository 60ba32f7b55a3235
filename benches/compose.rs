//! Composing one email per rule kind, with its annexes, from the shipped
//! config and templates. Run with `cargo bench --bench compose`; figures go
//! in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keydates::config::Settings;
use keydates::delivery::Engine;
use keydates::delivery::compose::Draft;
use keydates::plan;
use keydates::records::sample;

fn compose(c: &mut Criterion) {
    let settings = Settings::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/keydates.toml"
    )))
    .expect("the shipped config loads");
    let engine = Engine::new(settings).expect("the shipped templates load");
    let records = sample::records();
    let now = chrono::DateTime::parse_from_rfc3339("2027-01-06T09:00:00Z")
        .unwrap()
        .to_utc();
    let mut group = c.benchmark_group("compose");
    // One rule of each kind, each with what it attaches.
    for id in [
        "planning-invitation",
        "child-data-request",
        "audited-case-notice",
        "seminar-invitation",
        "dcs-conversation",
    ] {
        let rule = engine
            .settings
            .rules
            .iter()
            .find(|r| r.id == id)
            .expect("a shipped rule");
        let everyone = plan::involved(&records, rule.on);
        let involved = everyone.first().expect("a sample record of each kind");
        let recipients = involved.recipients(rule, &engine.settings);
        let anchor_on = involved.anchor(rule.anchor).expect("a dated sample");
        let due_on = rule.offset.apply(anchor_on, &engine.calendar).unwrap();
        let dates = involved.key_dates(
            &engine.calendar,
            &engine.settings.child_level_data.late_return,
            rule,
            anchor_on,
            due_on,
            due_on,
        );
        let composer = engine.composer();
        group.bench_function(id, |b| {
            b.iter(|| {
                composer
                    .compose(black_box(&Draft {
                        rule,
                        involved,
                        anchor_on,
                        due_on,
                        dates,
                        recipients: &recipients,
                        message_id: "<bench@keydates.example.org>",
                        now,
                    }))
                    .expect("composes")
                    .attachments
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compose);
criterion_main!(benches);
