//! Working days in England and Wales.
//!
//! A working day is any day but a Saturday, a Sunday or a bank holiday. The dates
//! GOV.UK published for 2015-2027 are built in; other years follow the usual
//! rules; admins add or remove one-off dates in config.

pub mod offset;

use std::collections::BTreeSet;

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// Bank holidays in England and Wales as published, including the one-offs
/// (VE Day 2020, the Platinum Jubilee and State Funeral in 2022, the Coronation in 2023).
const PUBLISHED: &[(i32, &[(u32, u32)])] = &[
    (
        2015,
        &[
            (1, 1),
            (4, 3),
            (4, 6),
            (5, 4),
            (5, 25),
            (8, 31),
            (12, 25),
            (12, 28),
        ],
    ),
    (
        2016,
        &[
            (1, 1),
            (3, 25),
            (3, 28),
            (5, 2),
            (5, 30),
            (8, 29),
            (12, 26),
            (12, 27),
        ],
    ),
    (
        2017,
        &[
            (1, 2),
            (4, 14),
            (4, 17),
            (5, 1),
            (5, 29),
            (8, 28),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2018,
        &[
            (1, 1),
            (3, 30),
            (4, 2),
            (5, 7),
            (5, 28),
            (8, 27),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2019,
        &[
            (1, 1),
            (4, 19),
            (4, 22),
            (5, 6),
            (5, 27),
            (8, 26),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2020,
        &[
            (1, 1),
            (4, 10),
            (4, 13),
            (5, 8),
            (5, 25),
            (8, 31),
            (12, 25),
            (12, 28),
        ],
    ),
    (
        2021,
        &[
            (1, 1),
            (4, 2),
            (4, 5),
            (5, 3),
            (5, 31),
            (8, 30),
            (12, 27),
            (12, 28),
        ],
    ),
    (
        2022,
        &[
            (1, 3),
            (4, 15),
            (4, 18),
            (5, 2),
            (6, 2),
            (6, 3),
            (8, 29),
            (9, 19),
            (12, 26),
            (12, 27),
        ],
    ),
    (
        2023,
        &[
            (1, 2),
            (4, 7),
            (4, 10),
            (5, 1),
            (5, 8),
            (5, 29),
            (8, 28),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2024,
        &[
            (1, 1),
            (3, 29),
            (4, 1),
            (5, 6),
            (5, 27),
            (8, 26),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2025,
        &[
            (1, 1),
            (4, 18),
            (4, 21),
            (5, 5),
            (5, 26),
            (8, 25),
            (12, 25),
            (12, 26),
        ],
    ),
    (
        2026,
        &[
            (1, 1),
            (4, 3),
            (4, 6),
            (5, 4),
            (5, 25),
            (8, 31),
            (12, 25),
            (12, 28),
        ],
    ),
    (
        2027,
        &[
            (1, 1),
            (3, 26),
            (3, 29),
            (5, 3),
            (5, 31),
            (8, 30),
            (12, 27),
            (12, 28),
        ],
    ),
];

/// Years for which holidays are worked out up front; others are computed when asked.
const PRECOMPUTED: std::ops::RangeInclusive<i32> = 1990..=2100;

/// The working-day calendar in force: built-in dates plus the admin's changes.
#[derive(Debug, Clone)]
pub struct Calendar {
    holidays: BTreeSet<NaiveDate>,
    added: BTreeSet<NaiveDate>,
    removed: BTreeSet<NaiveDate>,
    index: WorkingDayIndex,
}

/// Every day of the precomputed years, so that any working-day offset there
/// is two array lookups instead of a walk day by day.
#[derive(Debug, Clone)]
struct WorkingDayIndex {
    first: NaiveDate,
    /// Per day: the number of working days from `first` up to it, inclusive.
    counted: Vec<u32>,
    /// The days (as offsets from `first`) that are working days, in order.
    working: Vec<u32>,
}

impl WorkingDayIndex {
    fn new(is_working: impl Fn(NaiveDate) -> bool) -> WorkingDayIndex {
        let first = NaiveDate::from_ymd_opt(*PRECOMPUTED.start(), 1, 1).expect("a valid date");
        let last = NaiveDate::from_ymd_opt(*PRECOMPUTED.end(), 12, 31).expect("a valid date");
        let mut counted = Vec::new();
        let mut working = Vec::new();
        let mut n = 0u32;
        for (i, day) in (0u32..).zip(first.iter_days().take_while(|d| *d <= last)) {
            if is_working(day) {
                n += 1;
                working.push(i);
            }
            counted.push(n);
        }
        WorkingDayIndex {
            first,
            counted,
            working,
        }
    }

    fn offset(&self, date: NaiveDate) -> Option<usize> {
        let i = usize::try_from((date - self.first).num_days()).ok()?;
        (i < self.counted.len()).then_some(i)
    }

    /// Whether a day in the index is a working day; `None` outside it.
    fn is_working(&self, date: NaiveDate) -> Option<bool> {
        let i = self.offset(date)?;
        Some(if i == 0 {
            self.counted[0] == 1
        } else {
            self.counted[i] != self.counted[i - 1]
        })
    }

    /// `Calendar::add_working_days` inside the index, or `None` outside it.
    fn add(&self, date: NaiveDate, n: i64) -> Option<NaiveDate> {
        let i = self.offset(date)?;
        if n == 0 {
            return Some(date);
        }
        let upto = i64::from(self.counted[i]);
        let is_working = self.is_working(date)?;
        // The position (1-based) among all working days of the one wanted.
        let k = if n >= 0 {
            upto + n
        } else {
            upto - i64::from(is_working) + n + 1
        };
        let at = *self.working.get(usize::try_from(k - 1).ok()?)?;
        self.first.checked_add_days(Days::new(u64::from(at)))
    }
}

impl Default for Calendar {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl Calendar {
    /// The built-in calendar with one-off dates `added` and `removed`.
    pub fn new(added: &[NaiveDate], removed: &[NaiveDate]) -> Self {
        let added: BTreeSet<_> = added.iter().copied().collect();
        let removed: BTreeSet<_> = removed.iter().copied().collect();
        let mut holidays = BTreeSet::new();
        for year in PRECOMPUTED {
            holidays.extend(built_in_holidays(year));
        }
        holidays.extend(added.iter().copied());
        for d in &removed {
            holidays.remove(d);
        }
        let index = WorkingDayIndex::new(|d| {
            !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&d)
        });
        Calendar {
            holidays,
            added,
            removed,
            index,
        }
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        if PRECOMPUTED.contains(&date.year()) {
            self.holidays.contains(&date)
        } else {
            !self.removed.contains(&date)
                && (self.added.contains(&date) || built_in_holidays(date.year()).contains(&date))
        }
    }

    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.index.is_working(date).unwrap_or_else(|| {
            !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(date)
        })
    }

    /// The bank holidays of one year, in date order.
    pub fn holidays_in(&self, year: i32) -> Vec<NaiveDate> {
        if PRECOMPUTED.contains(&year) {
            let (Some(start), Some(end)) = (
                NaiveDate::from_ymd_opt(year, 1, 1),
                NaiveDate::from_ymd_opt(year, 12, 31),
            ) else {
                return Vec::new();
            };
            return self.holidays.range(start..=end).copied().collect();
        }
        let mut days: BTreeSet<_> = built_in_holidays(year).into_iter().collect();
        days.extend(self.added.iter().filter(|d| d.year() == year));
        days.retain(|d| !self.removed.contains(d));
        days.into_iter().collect()
    }

    /// The `n`th working day after `date` (before it when `n` is negative),
    /// not counting `date` itself. `n == 0` gives `date` unchanged.
    pub fn add_working_days(&self, date: NaiveDate, n: i64) -> Option<NaiveDate> {
        // "0 working days" from a weekend or holiday is the next working day.
        if n == 0 {
            return self.roll(date, Direction::Forward);
        }
        if let Some(d) = self.index.add(date, n) {
            return Some(d);
        }
        // Outside the precomputed years: a walk, day by day.
        let mut d = date;
        for _ in 0..n.unsigned_abs() {
            loop {
                d = if n >= 0 { d.succ_opt()? } else { d.pred_opt()? };
                if self.is_working_day(d) {
                    break;
                }
            }
        }
        Some(d)
    }

    /// The last working day of the week holding `date` (Monday to Sunday),
    /// never before `date`: "by the end of that week" (001 §42). When no
    /// working day is left in that week, the next working day.
    pub fn end_of_week(&self, date: NaiveDate) -> Option<NaiveDate> {
        let days_to_sunday = 6 - u64::from(date.weekday().num_days_from_monday());
        let mut d = date.checked_add_days(Days::new(days_to_sunday))?;
        while d > date && !self.is_working_day(d) {
            d = d.pred_opt()?;
        }
        self.roll(d, Direction::Forward)
    }

    /// `date` if it is a working day, else the nearest working day in `direction`.
    pub fn roll(&self, date: NaiveDate, direction: Direction) -> Option<NaiveDate> {
        let mut d = date;
        while !self.is_working_day(d) {
            d = match direction {
                Direction::Forward => d.succ_opt()?,
                Direction::Back => d.pred_opt()?,
            };
        }
        Some(d)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Back,
}

/// The bank holidays of `year`: as published where the year is built in, else by rule.
fn built_in_holidays(year: i32) -> Vec<NaiveDate> {
    if let Some((_, days)) = PUBLISHED.iter().find(|(y, _)| *y == year) {
        return days
            .iter()
            .filter_map(|&(m, d)| NaiveDate::from_ymd_opt(year, m, d))
            .collect();
    }
    rule_holidays(year)
}

/// Holidays by the usual rules: New Year's Day, Good Friday, Easter Monday, the
/// first and last Mondays of May, the last Monday of August, Christmas and Boxing
/// Day; a fixed-date holiday on a weekend moves to the next free weekday.
pub fn rule_holidays(year: i32) -> Vec<NaiveDate> {
    let Some(easter) = easter_sunday(year) else {
        return Vec::new();
    };
    let mut days = Vec::with_capacity(8);
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d);
    if let Some(new_year) = ymd(1, 1) {
        days.push(next_weekday(new_year));
    }
    days.extend(easter.checked_sub_days(Days::new(2)));
    days.extend(easter.checked_add_days(Days::new(1)));
    days.extend(NaiveDate::from_weekday_of_month_opt(
        year,
        5,
        Weekday::Mon,
        1,
    ));
    days.extend(last_monday(year, 5));
    days.extend(last_monday(year, 8));
    if let (Some(christmas), Some(boxing)) = (ymd(12, 25), ymd(12, 26)) {
        let christmas = next_weekday(christmas);
        let mut boxing = next_weekday(boxing);
        if boxing <= christmas {
            boxing = next_weekday(christmas + Days::new(1));
        }
        days.push(christmas);
        days.push(boxing);
    }
    days.sort();
    days
}

fn next_weekday(mut d: NaiveDate) -> NaiveDate {
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d + Days::new(1);
    }
    d
}

fn last_monday(year: i32, month: u32) -> Option<NaiveDate> {
    (1..=5)
        .rev()
        .find_map(|n| NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, n))
}

/// Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// The years a date in a record or command may fall in: wider than any
/// inspection needs, narrow enough to catch a typed 1900 or 9999.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// Why a date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("`{0}` is not a date in the form YYYY-MM-DD")]
    NotADate(String),
    #[error("`{0}` is outside the years {first} to {last}", first = YEARS.start(), last = YEARS.end())]
    OutOfYears(String),
}

/// Parses an ISO date (`YYYY-MM-DD`) in [`YEARS`], with an error that says
/// what was expected.
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| DateError::NotADate(s.to_string()))?;
    if !YEARS.contains(&date.year()) {
        return Err(DateError::OutOfYears(s.to_string()));
    }
    Ok(date)
}

/// A date the way people read it in a letter: "Tuesday 12 January 2027".
pub fn uk_long_date(date: NaiveDate) -> String {
    date.format("%A %-d %B %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn published_one_offs_are_holidays_and_the_moved_dates_are_not() {
        let cal = Calendar::default();
        assert!(cal.is_holiday(d("2020-05-08")), "VE Day 2020");
        assert!(!cal.is_holiday(d("2020-05-04")), "early May moved in 2020");
        assert!(cal.is_holiday(d("2022-06-02")));
        assert!(cal.is_holiday(d("2022-06-03")), "Platinum Jubilee");
        assert!(cal.is_holiday(d("2022-09-19")), "State Funeral");
        assert!(
            !cal.is_holiday(d("2022-05-30")),
            "spring holiday moved in 2022"
        );
        assert!(cal.is_holiday(d("2023-05-08")), "Coronation");
    }

    #[test]
    fn rules_reproduce_every_ordinary_published_year() {
        let one_off_years = [2020, 2022, 2023];
        for (year, days) in PUBLISHED {
            if one_off_years.contains(year) {
                continue;
            }
            let published: Vec<_> = days
                .iter()
                .map(|&(m, dd)| NaiveDate::from_ymd_opt(*year, m, dd).unwrap())
                .collect();
            assert_eq!(rule_holidays(*year), published, "year {year}");
        }
    }

    #[test]
    fn easter_matches_known_dates() {
        assert_eq!(easter_sunday(2024), Some(d("2024-03-31")));
        assert_eq!(easter_sunday(2027), Some(d("2027-03-28")));
        assert_eq!(easter_sunday(2028), Some(d("2028-04-16")));
        assert_eq!(easter_sunday(2038), Some(d("2038-04-25")));
    }

    #[test]
    fn rule_years_are_used_beyond_the_published_list() {
        let cal = Calendar::default();
        assert_eq!(
            cal.holidays_in(2028),
            [
                "2028-01-03",
                "2028-04-14",
                "2028-04-17",
                "2028-05-01",
                "2028-05-29",
                "2028-08-28",
                "2028-12-25",
                "2028-12-26"
            ]
            .map(d)
        );
    }

    #[test]
    fn admins_can_add_and_remove_dates() {
        let cal = Calendar::new(&[d("2028-06-05")], &[d("2027-05-31")]);
        assert!(cal.is_holiday(d("2028-06-05")));
        assert!(!cal.is_holiday(d("2027-05-31")));
        assert!(cal.holidays_in(2028).contains(&d("2028-06-05")));
        let far = Calendar::new(&[d("2150-06-03")], &[d("2150-12-25")]);
        assert!(far.is_holiday(d("2150-06-03")));
        assert!(!far.is_holiday(d("2150-12-25")));
    }

    #[test]
    fn one_working_day_after_a_friday_skips_the_weekend_and_bank_holiday() {
        let cal = Calendar::default();
        assert_eq!(
            cal.add_working_days(d("2026-11-20"), 1),
            Some(d("2026-11-23"))
        );
        // Friday before the late May bank holiday 2027.
        assert_eq!(
            cal.add_working_days(d("2027-05-28"), 1),
            Some(d("2027-06-01"))
        );
        // Counting from a Saturday does not count the Saturday.
        assert_eq!(
            cal.add_working_days(d("2026-11-21"), 1),
            Some(d("2026-11-23"))
        );
        assert_eq!(
            cal.add_working_days(d("2026-11-23"), -1),
            Some(d("2026-11-20"))
        );
    }

    #[test]
    fn the_index_agrees_with_a_walk_day_by_day() {
        let cal = Calendar::new(&[d("2027-06-07")], &[d("2027-05-31")]);
        let walk = |date: NaiveDate, n: i64| {
            let mut x = date;
            while n == 0 && !cal.is_working_day(x) {
                x = x.succ_opt().unwrap();
            }
            for _ in 0..n.unsigned_abs() {
                loop {
                    x = if n >= 0 {
                        x.succ_opt().unwrap()
                    } else {
                        x.pred_opt().unwrap()
                    };
                    if cal.is_working_day(x) {
                        break;
                    }
                }
            }
            x
        };
        let mut date = d("2026-11-01");
        while date < d("2028-03-01") {
            for n in [-70, -15, -8, -3, -1, 0, 1, 3, 8, 15, 50, 70, 71] {
                assert_eq!(
                    cal.add_working_days(date, n),
                    Some(walk(date, n)),
                    "{date} {n}"
                );
            }
            date = date.succ_opt().unwrap();
        }
        // At the edges of the index the walk takes over.
        assert_eq!(
            cal.add_working_days(d("2100-12-31"), 5),
            Some(walk(d("2100-12-31"), 5))
        );
        assert_eq!(
            cal.add_working_days(d("1990-01-01"), -5),
            Some(walk(d("1990-01-01"), -5))
        );
    }

    #[test]
    fn the_end_of_a_week_is_its_last_working_day() {
        let cal = Calendar::default();
        // Monday 23 November 2026: Friday the 27th.
        assert_eq!(cal.end_of_week(d("2026-11-23")), Some(d("2026-11-27")));
        // Christmas week 2026: Friday the 25th is a holiday, so Thursday the 24th.
        assert_eq!(cal.end_of_week(d("2026-12-21")), Some(d("2026-12-24")));
        // Easter week 2027: Good Friday the 26th March; Thursday the 25th.
        assert_eq!(cal.end_of_week(d("2027-03-22")), Some(d("2027-03-25")));
    }

    #[test]
    fn dates_outside_the_window_are_refused_with_the_window() {
        assert!(parse_date("2026-11-24").is_ok());
        for bad in ["1900-01-01", "9999-12-31", "2101-01-01"] {
            let e = parse_date(bad).unwrap_err();
            assert!(e.to_string().contains("2000 to 2100"), "{bad}: {e}");
        }
    }

    #[test]
    fn uk_dates_read_naturally() {
        assert_eq!(uk_long_date(d("2027-01-12")), "Tuesday 12 January 2027");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_date() -> impl Strategy<Value = NaiveDate> {
            (0i64..365 * 40).prop_map(|n| d("2010-01-01") + chrono::Duration::days(n))
        }

        proptest! {
            #[test]
            fn adding_then_subtracting_working_days_returns_to_a_working_start(
                start in any_date(), n in 0i64..400
            ) {
                let cal = Calendar::default();
                let start = cal.roll(start, Direction::Forward).unwrap();
                let there = cal.add_working_days(start, n).unwrap();
                prop_assert_eq!(cal.add_working_days(there, -n), Some(start));
            }

            #[test]
            fn working_day_results_are_working_days_and_count_exactly(
                start in any_date(), n in 1i64..200
            ) {
                let cal = Calendar::default();
                let end = cal.add_working_days(start, n).unwrap();
                prop_assert!(cal.is_working_day(end));
                let counted = start.iter_days().skip(1).take_while(|x| *x <= end)
                    .filter(|x| cal.is_working_day(*x)).count() as i64;
                prop_assert_eq!(counted, n);
            }

        }
    }
}
