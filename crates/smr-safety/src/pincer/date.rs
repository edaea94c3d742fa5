//! Calendar dates for the PINCER windows: "N months before the reference date" is calendar
//! arithmetic (OpenSAFELY's `index_date - 3 months`), not a count of days.

use std::fmt;

/// A calendar date (proleptic Gregorian), stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The date, when it exists (`2026-02-30` does not).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days(self) -> i32 {
        self.0
    }

    pub fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// Reads the date part of a FHIR `date`/`dateTime`/`instant` (`2026`, `2026-05`,
    /// `2026-05-01`, `2026-05-01T10:00:00+01:00`). A partial date reads as its first day:
    /// the record says no more, and the earliest day is what "recorded at least N months ago"
    /// can rely on. The time and offset are ignored: the date is the one written.
    pub fn parse(text: &str) -> Option<Date> {
        let date = text.split('T').next()?;
        let mut parts = date.split('-');
        let year: i32 = parse_digits(parts.next()?, 4)?;
        let month: u32 = match parts.next() {
            Some(m) => parse_digits(m, 2)?,
            None => 1,
        };
        let day: u32 = match parts.next() {
            Some(d) => parse_digits(d, 2)?,
            None => 1,
        };
        if parts.next().is_some() {
            return None;
        }
        Date::from_ymd(year, month, day)
    }

    /// The same day `n` calendar months earlier, clamped to the end of a shorter month
    /// (31 May minus 3 months is 28 or 29 February).
    pub fn months_before(self, n: u32) -> Date {
        let (y, m, d) = self.ymd();
        let total = y * 12 + (m as i32 - 1) - n as i32;
        let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        let day = d.min(days_in_month(year, month));
        Date(days_from_civil(year, month, day))
    }

    /// Whole years from `birth` to `self` (the age on this date: a birthday counts on the day;
    /// someone born on 29 February is a year older on 1 March in other years).
    pub fn years_since(self, birth: Date) -> i32 {
        let (by, bm, bd) = birth.ymd();
        let (y, m, d) = self.ymd();
        let mut age = y - by;
        if (m, d) < (bm, bd) {
            age -= 1;
        }
        age
    }

    /// The first day of `YYYY-MM`.
    pub fn parse_month(text: &str) -> Option<Date> {
        let (y, m) = text.split_once('-')?;
        if m.contains('-') {
            return None;
        }
        Date::from_ymd(parse_digits(y, 4)?, parse_digits(m, 2)?, 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn parse_digits<T: std::str::FromStr>(s: &str, len: usize) -> Option<T> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap_or_else(|| panic!("{s}"))
    }

    #[test]
    fn dates_round_trip_and_parse_partial_forms() {
        for s in ["1970-01-01", "2000-02-29", "2026-12-07", "1899-12-31"] {
            assert_eq!(d(s).to_string(), s);
        }
        assert_eq!(d("2026").to_string(), "2026-01-01");
        assert_eq!(d("2026-05").to_string(), "2026-05-01");
        assert_eq!(d("2026-05-03T23:30:00+01:00").to_string(), "2026-05-03");
        assert!(Date::parse("2026-02-30").is_none());
        assert!(Date::parse("26-01-01").is_none());
        assert!(Date::parse("2026-1-01").is_none());
        assert_eq!(Date::parse_month("2026-06"), Some(d("2026-06-01")));
        assert!(Date::parse_month("2026-13").is_none());
        assert!(Date::parse_month("2026-06-01").is_none());
    }

    #[test]
    fn months_are_calendar_months_clamped_to_month_end() {
        assert_eq!(d("2026-05-31").months_before(3), d("2026-02-28"));
        assert_eq!(d("2024-05-31").months_before(3), d("2024-02-29"));
        assert_eq!(d("2026-01-15").months_before(15), d("2024-10-15"));
        assert_eq!(d("2026-06-01").months_before(0), d("2026-06-01"));
    }

    #[test]
    fn age_counts_the_birthday_on_the_day() {
        assert_eq!(d("2026-06-01").years_since(d("1961-06-01")), 65);
        assert_eq!(d("2026-06-01").years_since(d("1961-06-02")), 64);
        assert_eq!(d("2025-02-28").years_since(d("2008-02-29")), 16);
        assert_eq!(d("2025-03-01").years_since(d("2008-02-29")), 17);
    }
}
