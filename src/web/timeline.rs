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
    /// Its shape, so that the state does not rest on colour alone.
    pub shape: Shape,
    pub x: i64,
    pub y: i64,
}

/// How a mark is drawn: one shape per kind of state, named in the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumIter)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Sent: a filled circle.
    Sent,
    /// To come: a hollow circle.
    ToCome,
    /// Waiting for a person: a diamond.
    Waiting,
    /// Failed or missed: a triangle.
    Problem,
    /// Cancelled: a cross.
    Cancelled,
    /// A date in the records: a square.
    Record,
}

impl Shape {
    pub fn of(status: &str) -> Shape {
        match status {
            "sent" => Shape::Sent,
            "awaiting_confirmation" | "waiting" => Shape::Waiting,
            "failed" | "missed" => Shape::Problem,
            "cancelled" => Shape::Cancelled,
            "record" => Shape::Record,
            _ => Shape::ToCome,
        }
    }

    /// What the legend says it means.
    pub fn meaning(self) -> &'static str {
        match self {
            Shape::Sent => "sent",
            Shape::ToCome => "to come",
            Shape::Waiting => "waiting for a person",
            Shape::Problem => "failed or missed",
            Shape::Cancelled => "cancelled",
            Shape::Record => "a date in the records",
        }
    }
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
const RIGHT: i64 = WIDTH - 220;
const ROW: i64 = 18;
const TOP: i64 = 30;
/// About how wide a label's character is at the timeline's 13 px.
const CHAR: i64 = 7;

/// Lays out `(date, label, status, rule)` entries between the first and the
/// last date, with month ticks and today's position when it falls inside.
/// Each label takes the first row above the line where it overlaps no other.
pub fn layout(
    mut entries: Vec<(NaiveDate, String, String, String)>,
    today: NaiveDate,
) -> Option<Timeline> {
    entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let from = entries.first()?.0;
    let to = entries.last()?.0.max(from + chrono::Days::new(1));
    let span = (to - from).num_days().max(1);
    let x = |d: NaiveDate| LEFT + (d - from).num_days() * (RIGHT - LEFT) / span;
    // Where each row's last label ends.
    let mut ends: Vec<i64> = Vec::new();
    let mut placed = Vec::with_capacity(entries.len());
    for (date, label, status, rule) in entries {
        let at = x(date);
        let end = at + 4 + CHAR * label.chars().count() as i64 + CHAR;
        let row = match ends.iter().position(|&e| e < at) {
            Some(r) => r,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[row] = end;
        placed.push((row, date, label, status, rule, at));
    }
    let rows = ends.len() as i64;
    let axis = TOP + rows * ROW + 10;
    let marks = placed
        .into_iter()
        .map(|(row, date, label, status, rule, at)| Mark {
            x: at,
            // The first row sits nearest the line.
            y: TOP + (rows - 1 - row as i64) * ROW,
            shape: Shape::of(&status),
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

    #[test]
    fn labels_on_one_row_never_overlap_and_each_state_has_its_own_shape() {
        let day = d("2026-12-01");
        let entries: Vec<_> = (0..20)
            .map(|i| {
                (
                    day + chrono::Days::new(i / 3),
                    format!("an email with a long label {i}"),
                    ["sent", "failed", "record"][i as usize % 3].to_string(),
                    String::new(),
                )
            })
            .chain([(
                d("2027-06-01"),
                "far".into(),
                "planned".into(),
                String::new(),
            )])
            .collect();
        let t = layout(entries, day).unwrap();
        for a in &t.marks {
            for b in &t.marks {
                let width = |m: &Mark| CHAR * m.label.chars().count() as i64;
                if a.x < b.x && a.y == b.y {
                    assert!(
                        a.x + 4 + width(a) < b.x,
                        "{} runs into {}",
                        a.label,
                        b.label
                    );
                }
            }
            assert!(a.y < t.axis);
        }
        let shapes: std::collections::BTreeSet<_> =
            t.marks.iter().map(|m| format!("{:?}", m.shape)).collect();
        assert_eq!(shapes.len(), 4, "{shapes:?}");
    }
}
