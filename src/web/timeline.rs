//! An authority's key dates laid out along one horizontal line: where each
//! mark and label goes. Pure, so the page only draws.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// One date on the line.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub date: NaiveDate,
    pub label: String,
    /// An email's state, or "record" for a date in the records.
    pub status: String,
    pub rule: String,
    pub x: i64,
    pub y: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tick {
    pub x: i64,
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub width: i64,
    pub height: i64,
    pub left: i64,
    pub right: i64,
    pub axis: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub today_x: Option<i64>,
    pub ticks: Vec<Tick>,
    pub marks: Vec<Mark>,
}

const WIDTH: i64 = 1100;
const LEFT: i64 = 30;
const RIGHT: i64 = WIDTH - 200;
/// Label rows above the line, so that neighbours do not overwrite each other.
const ROWS: i64 = 8;
const ROW: i64 = 18;

/// Lays out `(date, label, status, rule)` entries between the first and the
/// last date, with month ticks and today's position when it falls inside.
pub fn layout(
    mut entries: Vec<(NaiveDate, String, String, String)>,
    today: NaiveDate,
) -> Option<Timeline> {
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let from = entries.first()?.0;
    let to = entries.last()?.0.max(from + chrono::Days::new(1));
    let span = (to - from).num_days().max(1);
    let x = |d: NaiveDate| LEFT + (d - from).num_days() * (RIGHT - LEFT) / span;
    let axis = 30 + ROWS * ROW + 10;
    let marks = entries
        .into_iter()
        .enumerate()
        .map(|(i, (date, label, status, rule))| Mark {
            x: x(date),
            y: 30 + (i as i64 % ROWS) * ROW,
            date,
            label,
            status,
            rule,
        })
        .collect();
    let mut ticks = Vec::new();
    let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1)?;
    while month <= to {
        if month >= from {
            ticks.push(Tick {
                x: x(month),
                label: month.format("%b %Y").to_string(),
            });
        }
        month = month.checked_add_months(chrono::Months::new(1))?;
    }
    // Many months: label every few, so the labels stay legible.
    let every = ticks.len().div_ceil(12).max(1);
    let ticks = ticks.into_iter().step_by(every).collect();
    Some(Timeline {
        width: WIDTH,
        height: axis + 30,
        left: LEFT,
        right: RIGHT,
        axis,
        from,
        to,
        today_x: (from..=to).contains(&today).then(|| x(today)),
        ticks,
        marks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_run_left_to_right_between_the_first_and_the_last() {
        let entries = vec![
            (
                d("2027-01-14"),
                "chase".into(),
                "planned".into(),
                "plan-chase".into(),
            ),
            (d("2026-11-02"), "report".into(), "record".into(), "".into()),
            (d("2026-12-08"), "visit".into(), "record".into(), "".into()),
        ];
        let t = layout(entries, d("2026-12-01")).unwrap();
        assert_eq!(t.from, d("2026-11-02"));
        assert_eq!(t.to, d("2027-01-14"));
        let xs: Vec<i64> = t.marks.iter().map(|m| m.x).collect();
        assert!(
            xs[0] == LEFT && xs[2] == RIGHT && xs[0] < xs[1] && xs[1] < xs[2],
            "{xs:?}"
        );
        let today = t.today_x.unwrap();
        assert!(xs[0] < today && today < xs[1]);
        assert_eq!(t.ticks[0].label, "Dec 2026");
        assert!(layout(Vec::new(), d("2026-12-01")).is_none());
    }
}
