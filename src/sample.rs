//! Fictional records: one of each kind for `check-config` to render every rule
//! against, and a generator of many for benchmarks.

use chrono::{Days, NaiveDate};

use crate::domain::{EmailAddress, Judgement, Region};
use crate::records::{Authority, Case, Delegate, Records, Seminar, Visit};

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("sample addresses are valid")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("sample dates are valid")
}

/// One authority with a case, a visit, a seminar and a delegate.
pub fn records() -> Records {
    generate(1, date(2026, 11, 2))
}

/// `n` authorities, each with an inadequate case, two visits, and a delegate at
/// one of `n / 5 + 1` seminars; dates spread from `start`.
pub fn generate(n: usize, start: NaiveDate) -> Records {
    let mut r = Records::default();
    let seminars = n / 5 + 1;
    for s in 0..seminars {
        let held_on = start + Days::new(60 + (s % 200) as u64);
        r.seminars.insert(
            format!("SEM{s:06}"),
            Seminar {
                seminar_ref: format!("SEM{s:06}"),
                title: format!("Getting to good: practice seminar {s}"),
                region: Region::ALL[s % 8],
                held_on,
                venue: "Regional office".into(),
                confirmed: true,
                cancelled: false,
            },
        );
    }
    for i in 0..n {
        let code = format!("LA{i:06}");
        let region = Region::ALL[i % 8];
        r.authorities.insert(
            code.clone(),
            Authority {
                code: code.clone(),
                name: format!("Sampleshire {i}"),
                region,
                dcs_name: "Alex Director".into(),
                dcs_email: email(&format!("dcs{i}@sampleshire.example.org")),
                coordinator_email: Some(email(&format!("coord{i}@sampleshire.example.org"))),
            },
        );
        let case_ref = format!("C{i:06}");
        let report = start + Days::new((i % 300) as u64);
        r.cases.insert(
            case_ref.clone(),
            Case {
                case_ref: case_ref.clone(),
                authority_code: code.clone(),
                judgement: if i % 2 == 0 {
                    Judgement::Inadequate
                } else {
                    Judgement::RequiresImprovement
                },
                report_received_on: report,
                plan_received_on: None,
                lead_inspector_email: email("lead.inspector@ofsted.example.org"),
                dfe_link_email: None,
                closed: false,
            },
        );
        for v in 1..=2u32 {
            r.visits.push(Visit {
                case_ref: case_ref.clone(),
                visit_no: v,
                starts_on: report + Days::new(120 + 91 * u64::from(v)),
                lead_inspector_email: email("lead.inspector@ofsted.example.org"),
                audited_cases: vec!["AC-1".into(), "AC-2".into()],
                cancelled: false,
            });
        }
        r.delegates.push(Delegate {
            seminar_ref: format!("SEM{:06}", i % seminars),
            authority_code: code,
            name: format!("Delegate {i}"),
            email: email(&format!("delegate{i}@sampleshire.example.org")),
        });
    }
    r
}
