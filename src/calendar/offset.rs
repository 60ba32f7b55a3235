//! The offset grammar rules are written in: "50 working days", "-2 weeks",
//! "6 months then 7 days". Every offset names its unit, because the source
//! documents are loose about units.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, Months, NaiveDate};
use serde_with::{DeserializeFromStr, SerializeDisplay};

use crate::calendar::{Calendar, Direction};

/// The unit an offset counts in. The source documents are loose about units, so
/// every offset in config names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    WorkingDays,
    Weeks,
    Months,
    /// To the last working day of the week reached so far ("then end of week").
    EndOfWeek,
}

/// One signed step such as `-8 working days` or `6 months`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub amount: i64,
    pub unit: Unit,
}

/// An offset from an anchor date: one step, or several joined by `then`
/// (`6 months then 7 days`).
#[derive(Debug, Clone, PartialEq, Eq, DeserializeFromStr, SerializeDisplay)]
pub struct Offset {
    steps: Vec<Step>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not an offset: {reason} (write e.g. \"50 working days\", \"-2 weeks\", \"6 months\", \"3 days\", \"-2 weeks then end of week\")"
)]
pub struct OffsetError {
    pub input: String,
    pub reason: String,
}

/// Offsets beyond this many units are certainly typos, and would make date
/// arithmetic run for a long time.
const MAX_AMOUNT: i64 = 10_000;

impl FromStr for Offset {
    type Err = OffsetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut steps = Vec::new();
        for part in input.split(" then ") {
            steps.push(parse_step(part).map_err(|reason| OffsetError {
                input: input.to_string(),
                reason,
            })?);
        }
        Ok(Offset {
            steps,
            text: input.trim().to_string(),
        })
    }
}

/// One step of an offset, or why it is not one (the reason alone; the
/// caller adds the whole offset).
fn parse_step(part: &str) -> Result<Step, String> {
    if part.split_whitespace().collect::<Vec<_>>() == ["end", "of", "week"] {
        return Ok(Step {
            amount: 0,
            unit: Unit::EndOfWeek,
        });
    }
    let mut words = part.split_whitespace();
    let number = words.next().ok_or("it is empty")?;
    let amount: i64 = number
        .strip_prefix('+')
        .unwrap_or(number)
        .parse()
        .map_err(|_| format!("`{number}` is not a whole number"))?;
    if amount.unsigned_abs() > MAX_AMOUNT.unsigned_abs() {
        return Err(format!("{amount} is more than {MAX_AMOUNT}"));
    }
    let unit_words: Vec<&str> = words.collect();
    let unit = match unit_words.as_slice() {
        ["day" | "days"] => Unit::Days,
        ["working", "day" | "days"] => Unit::WorkingDays,
        ["week" | "weeks"] => Unit::Weeks,
        ["month" | "months"] => Unit::Months,
        [] => return Err("it names no unit".to_string()),
        other => {
            return Err(format!(
                "`{}` is not a unit (days, working days, weeks or months)",
                other.join(" ")
            ));
        }
    };
    Ok(Step { amount, unit })
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Offset {
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether the offset points before its anchor (a reminder ahead of an event).
    pub fn is_before(&self) -> bool {
        self.steps.first().is_some_and(|s| s.amount < 0)
    }

    /// The date this offset gives from `anchor`. A calendar-day, week or month
    /// offset that lands on a non-working day rolls back when the offset points
    /// before the anchor (so the notice promised is still given) and forward
    /// otherwise. `None` only when the date would leave chrono's range.
    pub fn apply(&self, anchor: NaiveDate, calendar: &Calendar) -> Option<NaiveDate> {
        let mut date = anchor;
        let mut needs_roll = false;
        let direction = if self.is_before() {
            Direction::Back
        } else {
            Direction::Forward
        };
        for step in &self.steps {
            // A step counts from a working day, as the email it names would
            // go on one: "-2 weeks then end of week" is the end of the week
            // of the day the request actually goes.
            if needs_roll {
                date = calendar.roll(date, direction)?;
            }
            date = match step.unit {
                Unit::WorkingDays => {
                    needs_roll = false;
                    calendar.add_working_days(date, step.amount)?
                }
                Unit::Days => {
                    needs_roll = true;
                    shift_days(date, step.amount)?
                }
                Unit::Weeks => {
                    needs_roll = true;
                    shift_days(date, step.amount * 7)?
                }
                Unit::EndOfWeek => {
                    needs_roll = false;
                    calendar.end_of_week(date)?
                }
                Unit::Months => {
                    needs_roll = true;
                    let months = Months::new(u32::try_from(step.amount.unsigned_abs()).ok()?);
                    if step.amount >= 0 {
                        date.checked_add_months(months)?
                    } else {
                        date.checked_sub_months(months)?
                    }
                }
            };
        }
        if needs_roll {
            calendar.roll(date, direction)
        } else {
            Some(date)
        }
    }
}

fn shift_days(date: NaiveDate, n: i64) -> Option<NaiveDate> {
    if n >= 0 {
        date.checked_add_days(Days::new(n.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(n.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_date;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn off(s: &str) -> Offset {
        s.parse().unwrap()
    }

    #[test]
    fn fifty_working_days_over_christmas() {
        let cal = Calendar::default();
        assert_eq!(
            off("50 working days").apply(d("2026-11-02"), &cal),
            Some(d("2027-01-14"))
        );
    }

    #[test]
    fn calendar_offsets_roll_the_right_way() {
        let cal = Calendar::default();
        // 2027-01-02 is a Saturday: after-offsets go to Monday, before-offsets to Friday.
        assert_eq!(
            off("3 days").apply(d("2026-12-30"), &cal),
            Some(d("2027-01-04"))
        );
        assert_eq!(
            off("-2 weeks").apply(d("2027-01-16"), &cal),
            Some(d("2026-12-31"))
        );
        // Two weeks before a visit on Monday 2027-01-11 is Monday 2026-12-28, a
        // bank holiday, so the request goes on the previous working day.
        assert_eq!(
            off("-2 weeks").apply(d("2027-01-11"), &cal),
            Some(d("2026-12-24"))
        );
    }

    #[test]
    fn months_keep_the_day_or_take_the_month_end() {
        let cal = Calendar::default();
        // 31 August 2027 + 6 months = 29 February 2028 (a Tuesday).
        assert_eq!(
            off("6 months").apply(d("2027-08-31"), &cal),
            Some(d("2028-02-29"))
        );
        // 2026-08-31 + 6 months = 2027-02-28, a Sunday: rolls to Monday 1 March.
        assert_eq!(
            off("6 months").apply(d("2026-08-31"), &cal),
            Some(d("2027-03-01"))
        );
        assert_eq!(
            off("6 months then 7 days").apply(d("2026-05-14"), &cal),
            Some(d("2026-11-23"))
        );
    }

    #[test]
    fn end_of_week_steps_to_the_weeks_last_working_day() {
        let cal = Calendar::default();
        // A visit on Monday 7 December 2026: the data request goes on Monday
        // 23 November, and the data is due by Friday the 27th.
        assert_eq!(
            off("-2 weeks then end of week").apply(d("2026-12-07"), &cal),
            Some(d("2026-11-27"))
        );
        assert_eq!(off("end of week").to_string(), "end of week");
    }

    #[test]
    fn offset_grammar_rejects_nonsense_with_a_reason() {
        for bad in [
            "",
            "50",
            "fifty working days",
            "5 fortnights",
            "1 working",
            "99999 days",
        ] {
            let e = bad.parse::<Offset>().unwrap_err();
            assert!(e.to_string().contains("is not an offset"), "{bad}: {e}");
        }
        assert_eq!(off("+5 working days").steps()[0].amount, 5);
        assert!(off("-8 working days").is_before());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_date() -> impl Strategy<Value = NaiveDate> {
            (0i64..365 * 40).prop_map(|n| d("2010-01-01") + chrono::Duration::days(n))
        }

        proptest! {
            #[test]
            fn calendar_offsets_land_on_working_days_on_the_promised_side(
                start in any_date(), n in 1i64..60, unit in 0..3usize
            ) {
                let cal = Calendar::default();
                let unit = ["days", "weeks", "months"][unit];
                let before: Offset = format!("-{n} {unit}").parse().unwrap();
                let after: Offset = format!("{n} {unit}").parse().unwrap();
                let b = before.apply(start, &cal).unwrap();
                let a = after.apply(start, &cal).unwrap();
                prop_assert!(cal.is_working_day(b) && b < start);
                prop_assert!(cal.is_working_day(a) && a > start);
            }

            #[test]
            fn any_text_parses_or_errors_without_panic(s in "\\PC{0,40}") {
                let _ = s.parse::<Offset>();
            }
        }
    }
}
