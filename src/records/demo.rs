//! Fictional records dated from today, for a first look at keydates: for
//! each enabled rule, a record whose date makes that rule fall due on the
//! given working day. They are written as the import CSV files, so they are
//! also examples of the import format.

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};

use clap::ValueEnum;

use crate::calendar::Calendar;
use crate::config::rules::{Anchor, Condition, Rule, RuleOn};
use crate::records::import::Kind;

/// The authority every demo record belongs to; its code marks demo data.
pub const AUTHORITY: &str = "DEMO";

/// The anchor date that makes `rule` fall due on `day`, if there is one
/// within a year and a half either side.
fn anchor_for(rule: &Rule, day: NaiveDate, calendar: &Calendar) -> Option<NaiveDate> {
    let start = day.checked_sub_days(Days::new(550))?;
    start
        .iter_days()
        .take(1100)
        .find(|a| rule.offset.apply(*a, calendar) == Some(day))
}

/// The CSV files' rows, kind by kind, in import order.
#[derive(Debug, Default)]
pub struct DemoFiles {
    pub cases: Vec<[String; 7]>,
    pub visits: Vec<[String; 6]>,
    pub seminars: Vec<[String; 6]>,
    pub delegates: Vec<[String; 4]>,
}

/// Records that make each of `rules` fall due on `day`.
pub fn records(rules: &[&Rule], day: NaiveDate, calendar: &Calendar) -> DemoFiles {
    let mut files = DemoFiles::default();
    let lead = "lead.inspector@ofsted.example.org".to_string();
    for (n, rule) in (1..).zip(rules) {
        let Some(anchor) = anchor_for(rule, day, calendar) else {
            continue;
        };
        let inadequate = !rule.when.contains(&Condition::JudgementRequiresImprovement);
        let judgement = if inadequate {
            "inadequate"
        } else {
            "requires_improvement"
        };
        let case_ref = format!("DEMO-{n:02}");
        let before = |days: u64| anchor.checked_sub_days(Days::new(days)).unwrap_or(anchor);
        let mut case = |report: NaiveDate, plan: Option<NaiveDate>| {
            files.cases.push([
                case_ref.clone(),
                AUTHORITY.into(),
                judgement.into(),
                report.to_string(),
                plan.map(|d| d.to_string()).unwrap_or_default(),
                lead.clone(),
                "dfe.link@education.example.org".into(),
            ]);
        };
        match (rule.on, rule.anchor) {
            (RuleOn::Case, Anchor::PlanReceivedOn) => case(before(60), Some(anchor)),
            (RuleOn::Case, _) => case(anchor, None),
            (RuleOn::Visit, Anchor::StartsOn) => {
                case(before(120), None);
                files.visits.push([
                    case_ref.clone(),
                    "1".into(),
                    anchor.to_string(),
                    lead.clone(),
                    "AC-101;AC-102;AC-103".into(),
                    "false".into(),
                ]);
            }
            (RuleOn::Visit, _) => continue,
            (
                RuleOn::Seminar
                | RuleOn::Delegate
                | RuleOn::SeminarAuthority
                | RuleOn::InvitedAuthority,
                _,
            ) => {
                let seminar_ref = format!("DEMO-SEM-{n:02}");
                files.seminars.push([
                    seminar_ref.clone(),
                    "Getting to good: help and protection".into(),
                    "london".into(),
                    anchor.to_string(),
                    "Demo venue, 1 Example Street, London".into(),
                    "true".into(),
                ]);
                files.delegates.push([
                    seminar_ref,
                    AUTHORITY.into(),
                    "Sam Delegate".into(),
                    "sam.delegate@demoshire.example.gov.uk".into(),
                ]);
            }
        }
    }
    files
}

/// Writes the five CSV files into `dir` and returns them in import order.
pub fn write(dir: &Path, files: &DemoFiles) -> anyhow::Result<Vec<(Kind, PathBuf)>> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let authorities = [[
        AUTHORITY,
        "Demoshire County Council",
        "london",
        "Alex Director",
        "dcs@demoshire.example.gov.uk",
        "visits@demoshire.example.gov.uk",
    ]
    .map(String::from)];
    let mut written = Vec::new();
    let mut file = |kind: Kind, rows: Vec<Vec<String>>| {
        let name = kind.to_possible_value().expect("every kind has a name");
        let path = dir.join(format!("{}.csv", name.get_name()));
        let mut w = csv::Writer::from_path(&path)
            .with_context(|| format!("while writing {}", path.display()))?;
        w.write_record(kind.headers())?;
        for row in rows {
            w.write_record(row)?;
        }
        w.flush()?;
        written.push((kind, path));
        anyhow::Ok(())
    };
    file(
        Kind::Authorities,
        authorities.iter().map(|r| r.to_vec()).collect(),
    )?;
    file(
        Kind::Cases,
        files.cases.iter().map(|r| r.to_vec()).collect(),
    )?;
    file(
        Kind::Visits,
        files.visits.iter().map(|r| r.to_vec()).collect(),
    )?;
    file(
        Kind::Seminars,
        files.seminars.iter().map(|r| r.to_vec()).collect(),
    )?;
    file(
        Kind::Delegates,
        files.delegates.iter().map(|r| r.to_vec()).collect(),
    )?;
    Ok(written)
}
