//! Fictional records: one of each kind for `check-config` to render every rule
//! against, and a generator of many for benchmarks.

use chrono::{Days, NaiveDate};

use crate::domain::{EmailAddress, Judgement, Reference, Region};
use crate::records::{Authority, Case, Delegate, Records, Seminar, Visit};

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("sample addresses are valid")
}

fn reference(s: String) -> Reference {
    Reference::parse(&s).expect("sample references are valid")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("sample dates are valid")
}

/// The regions in turn.
fn region(i: usize) -> Region {
    let all: Vec<Region> = <Region as strum::IntoEnumIterator>::iter().collect();
    all[i % all.len()]
}

/// One authority with a case, a visit, a seminar and a delegate, with every
/// date that can be recorded recorded, so that each template meets a value.
pub fn records() -> Records {
    let mut r = generate(1, date(2026, 11, 2));
    for case in r.cases.values_mut() {
        case.planning_event_on = Some(case.report_received_on + Days::new(40));
    }
    let conversations: Vec<_> = r
        .delegates
        .iter()
        .filter_map(|d| {
            let held = r.seminars.get(&d.seminar_ref)?.held_on;
            Some((
                (d.seminar_ref.clone(), d.authority_code.clone()),
                held + Days::new(183),
            ))
        })
        .collect();
    r.conversations.extend(conversations);
    r
}

/// `n` cases, with records in proportion: an authority per ten cases, a
/// monitoring visit per inadequate case (every other one), a seminar per
/// hundred cases and a delegate per authority. Dates spread from `start`.
pub fn generate(n: usize, start: NaiveDate) -> Records {
    let mut r = Records::default();
    let authorities = n / 10 + 1;
    let seminars = n / 100 + 1;
    for s in 0..seminars {
        let held_on = start + Days::new(60 + (s % 200) as u64);
        let seminar_ref = reference(format!("SEM{s:06}"));
        r.seminars.insert(
            seminar_ref.clone(),
            Seminar {
                seminar_ref,
                title: format!("Getting to good: practice seminar {s}"),
                region: region(s),
                held_on,
                venue: "Regional office".into(),
                confirmed: true,
                cancelled: false,
                timetable: crate::records::Timetable::parse(
                    "10:00 Welcome; 10:15 The inspection findings; 12:45 Close",
                )
                .expect("a valid timetable"),
                sequence: 0,
                cancelled_on: None,
                confirmed_on: None,
            },
        );
    }
    for a in 0..authorities {
        let code = reference(format!("LA{a:06}"));
        r.authorities.insert(
            code.clone(),
            Authority {
                code: code.clone(),
                name: format!("Sampleshire {a}"),
                region: region(a),
                dcs_name: "Alex Director".into(),
                dcs_email: email(&format!("dcs{a}@sampleshire.example.org")),
                coordinator_email: Some(email(&format!("coord{a}@sampleshire.example.org"))),
            },
        );
        r.delegates.push(Delegate {
            seminar_ref: reference(format!("SEM{:06}", a % seminars)),
            authority_code: code,
            name: format!("Delegate {a}"),
            email: email(&format!("delegate{a}@sampleshire.example.org")),
        });
    }
    for i in 0..n {
        let case_ref = reference(format!("C{i:07}"));
        let report = start + Days::new((i % 300) as u64);
        let inadequate = i % 2 == 0;
        r.cases.insert(
            case_ref.clone(),
            Case {
                case_ref: case_ref.clone(),
                authority_code: reference(format!("LA{:06}", i % authorities)),
                judgement: if inadequate {
                    Judgement::Inadequate
                } else {
                    Judgement::RequiresImprovement
                },
                report_received_on: report,
                plan_received_on: None,
                lead_inspector_email: email("lead.inspector@ofsted.example.org"),
                dfe_link_email: None,
                closed: false,
                planning_event_on: None,
            },
        );
        if inadequate {
            r.visits.push(Visit {
                case_ref,
                visit_no: 1,
                starts_on: report + Days::new(120),
                lead_inspector_email: email("lead.inspector@ofsted.example.org"),
                audited_cases: vec!["AC-1".into(), "AC-2".into()],
                cancelled: false,
            });
        }
    }
    r
}
