//! FHIR date, dateTime and instant values as half-open ranges of microseconds since the Unix
//! epoch (UTC).
//!
//! Plain proleptic-Gregorian arithmetic rather than the `time` crate: FHIR values carry a
//! precision (year, month, day, second, fraction) that decides the width of the range, which
//! `time`'s parsers do not expose, and the grammar is small enough to check by hand exactly as
//! the R4 regular expressions (http://hl7.org/fhir/R4/datatypes.html) state it.

/// Why a date text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid FHIR date/dateTime '{text}': {reason}")]
pub struct DateError {
    pub text: String,
    pub reason: String,
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
const MICROS_PER_DAY: i64 = SECONDS_PER_DAY * MICROS_PER_SECOND;

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm(:ss(.fff…))?(Z|±hh:mm)` into the
/// half-open range `[low, high)` it denotes at its precision. A dateTime without a zone is taken
/// as UTC (FHIR says it SHALL have one when time is given; we are lenient on search input).
pub fn parse_range(text: &str) -> Result<(i64, i64), DateError> {
    let parsed = Parsed::read(text).map_err(|reason| err(text, reason))?;
    Ok(parsed.range())
}

/// Parses an exact instant (`YYYY-MM-DDThh:mm:ss(.fff…)?(Z|±hh:mm)`, the R4 `instant` type,
/// seconds and zone required) into microseconds since the epoch. Digits beyond microseconds
/// are truncated. Used for `meta.lastUpdated`.
pub fn parse_instant_micros(text: &str) -> Result<i64, DateError> {
    let parsed = Parsed::read(text).map_err(|reason| err(text, reason))?;
    if !parsed.is_instant() {
        return Err(err(
            text,
            "an instant needs date, time with seconds, and a zone",
        ));
    }
    Ok(parsed.range().0)
}

/// The R4 `date` type: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, and a real calendar date.
pub fn is_valid_date(text: &str) -> bool {
    Parsed::read(text).is_ok_and(|p| p.time.is_none())
}

/// The R4 `dateTime` type: a `date`, or a full date with `Thh:mm:ss(.f+)?` and a zone
/// (`Z` or `±hh:mm`, at most ±14:00). Minutes-only times and zone-less times are not valid
/// resource content, even though [`parse_range`] accepts them on search input.
pub fn is_valid_datetime(text: &str) -> bool {
    Parsed::read(text).is_ok_and(|p| match &p.time {
        None => true,
        Some(t) => t.second.is_some() && p.offset_minutes.is_some(),
    })
}

/// The R4 `instant` type: full date, time with seconds, and a zone.
pub fn is_valid_instant(text: &str) -> bool {
    Parsed::read(text).is_ok_and(|p| p.is_instant())
}

/// Formats microseconds since the epoch as a FHIR `instant` (`2024-01-02T03:04:05.678901Z`).
/// Always six fraction digits, so the text sorts like the number. Values outside years
/// 0001–9999 (which no parsed FHIR value produces) are clamped to that span rather than
/// printing a year FHIR cannot read back.
pub fn format_instant(micros: i64) -> String {
    let micros = micros.clamp(MIN_MICROS, MAX_MICROS);
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let secs = in_day / MICROS_PER_SECOND;
    let frac = in_day % MICROS_PER_SECOND;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// 0001-01-01T00:00:00Z.
const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SECOND;
/// 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

fn err(text: &str, reason: &str) -> DateError {
    DateError {
        text: text.to_owned(),
        reason: reason.to_owned(),
    }
}

#[derive(Debug)]
struct Time {
    hour: u32,
    minute: u32,
    second: Option<u32>,
    /// Fraction of a second in microseconds (truncated), and how many digits were written.
    micros: i64,
    frac_digits: u32,
}

#[derive(Debug)]
struct Parsed {
    year: i32,
    month: Option<u32>,
    day: Option<u32>,
    time: Option<Time>,
    offset_minutes: Option<i32>,
}

impl Parsed {
    /// Reads the lenient search form; callers narrow it to the R4 types. Every field is range
    /// checked here, so all that follows is infallible arithmetic.
    fn read(text: &str) -> Result<Parsed, &'static str> {
        let mut c = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        let year = c.digits(4).ok_or("expected a four-digit year")?;
        if year == 0 {
            return Err("year 0000 is not allowed");
        }
        let mut p = Parsed {
            year: year as i32,
            month: None,
            day: None,
            time: None,
            offset_minutes: None,
        };
        if c.eat(b'-') {
            let month = c.digits(2).ok_or("expected a two-digit month")?;
            if !(1..=12).contains(&month) {
                return Err("month out of range");
            }
            p.month = Some(month);
            if c.eat(b'-') {
                let day = c.digits(2).ok_or("expected a two-digit day")?;
                if day < 1 || day > days_in_month(p.year, month) {
                    return Err("day out of range for the month");
                }
                p.day = Some(day);
                if c.eat(b'T') {
                    p.time = Some(read_time(&mut c)?);
                    p.offset_minutes = read_offset(&mut c)?;
                }
            }
        }
        if !c.at_end() {
            return Err("unexpected text after the value");
        }
        Ok(p)
    }

    fn is_instant(&self) -> bool {
        self.time.as_ref().is_some_and(|t| t.second.is_some()) && self.offset_minutes.is_some()
    }

    fn range(&self) -> (i64, i64) {
        let month = self.month.unwrap_or(1);
        let day = self.day.unwrap_or(1);
        let start_day = days_from_civil(self.year, month, day);
        let Some(t) = &self.time else {
            let end_day = match (self.month, self.day) {
                (None, _) => days_from_civil(self.year + 1, 1, 1),
                (Some(12), None) => days_from_civil(self.year + 1, 1, 1),
                (Some(m), None) => days_from_civil(self.year, m + 1, 1),
                (Some(_), Some(_)) => start_day + 1,
            };
            return (start_day * MICROS_PER_DAY, end_day * MICROS_PER_DAY);
        };
        let offset = i64::from(self.offset_minutes.unwrap_or(0)) * 60 * MICROS_PER_SECOND;
        // A leap second (`:60`, allowed by the R4 regex) lands on the next minute's first second.
        let secs =
            i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second.unwrap_or(0));
        let low = start_day * MICROS_PER_DAY + secs * MICROS_PER_SECOND + t.micros - offset;
        let width = match t.second {
            None => 60 * MICROS_PER_SECOND,
            // Digits past microseconds cannot be told apart: one microsecond wide.
            Some(_) => 10_i64.pow(6 - t.frac_digits.min(6)),
        };
        (low, low + width)
    }
}

fn read_time(c: &mut Cursor<'_>) -> Result<Time, &'static str> {
    let hour = c.digits(2).ok_or("expected a two-digit hour")?;
    if hour > 23 {
        return Err("hour out of range");
    }
    if !c.eat(b':') {
        return Err("expected ':' after the hour");
    }
    let minute = c.digits(2).ok_or("expected two-digit minutes")?;
    if minute > 59 {
        return Err("minutes out of range");
    }
    let mut t = Time {
        hour,
        minute,
        second: None,
        micros: 0,
        frac_digits: 0,
    };
    if c.eat(b':') {
        let second = c.digits(2).ok_or("expected two-digit seconds")?;
        if second > 60 {
            return Err("seconds out of range");
        }
        t.second = Some(second);
        if c.eat(b'.') {
            let mut digits = 0u32;
            while let Some(d) = c.digit() {
                if digits < 6 {
                    t.micros = t.micros * 10 + i64::from(d);
                }
                digits += 1;
            }
            if digits == 0 {
                return Err("expected digits after the decimal point");
            }
            t.micros *= 10_i64.pow(6 - digits.min(6));
            t.frac_digits = digits;
        }
    }
    Ok(t)
}

fn read_offset(c: &mut Cursor<'_>) -> Result<Option<i32>, &'static str> {
    if c.eat(b'Z') {
        return Ok(Some(0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Ok(None);
    };
    let hours = c.digits(2).ok_or("expected a two-digit zone hour")?;
    if !c.eat(b':') {
        return Err("expected ':' in the zone offset");
    }
    let minutes = c.digits(2).ok_or("expected two-digit zone minutes")?;
    // R4: (0[0-9]|1[0-3]):[0-5][0-9] | 14:00
    if minutes > 59 || hours > 14 || (hours == 14 && minutes != 0) {
        return Err("zone offset out of range");
    }
    Ok(Some(sign * (hours as i32 * 60 + minutes as i32)))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digit(&mut self) -> Option<u32> {
        let b = *self.s.get(self.i)?;
        if b.is_ascii_digit() {
            self.i += 1;
            Some(u32::from(b - b'0'))
        } else {
            None
        }
    }

    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = v * 10 + self.digit()?;
        }
        Some(v)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn at_end(&self) -> bool {
        self.i == self.s.len()
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3600 * MICROS_PER_SECOND;

    fn at(text: &str) -> i64 {
        parse_instant_micros(text).unwrap()
    }

    #[test]
    fn year_month_day_ranges() {
        assert_eq!(parse_range("1970").unwrap(), (0, 365 * MICROS_PER_DAY));
        assert_eq!(
            parse_range("2020").unwrap(),
            (at("2020-01-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-02").unwrap(),
            (at("2020-02-01T00:00:00Z"), at("2020-03-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-12").unwrap(),
            (at("2020-12-01T00:00:00Z"), at("2021-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-03-04").unwrap(),
            (at("2020-03-04T00:00:00Z"), at("2020-03-05T00:00:00Z"))
        );
        assert_eq!(
            parse_range("2020-02-29").unwrap().1 - parse_range("2020-02-29").unwrap().0,
            MICROS_PER_DAY
        );
    }

    #[test]
    fn datetime_ranges_and_offsets() {
        let (lo, hi) = parse_range("2020-03-04T10:20:30Z").unwrap();
        assert_eq!(format_instant(lo), "2020-03-04T10:20:30.000000Z");
        assert_eq!(hi - lo, MICROS_PER_SECOND);
        let (lo, hi) = parse_range("2020-03-04T10:20:30.5+01:00").unwrap();
        assert_eq!(format_instant(lo), "2020-03-04T09:20:30.500000Z");
        assert_eq!(hi - lo, 100_000);
        let (lo, hi) = parse_range("2020-03-04T10:20:30.123456789-05:30").unwrap();
        assert_eq!(format_instant(lo), "2020-03-04T15:50:30.123456Z");
        assert_eq!(hi - lo, 1);
        // Minutes only and no zone: search input leniency, UTC.
        let (lo, hi) = parse_range("2020-03-04T10:20").unwrap();
        assert_eq!(format_instant(lo), "2020-03-04T10:20:00.000000Z");
        assert_eq!(hi - lo, 60 * MICROS_PER_SECOND);
        assert_eq!(at("2020-01-01T00:00:00+14:00"), at("2019-12-31T10:00:00Z"));
        assert_eq!(
            at("2020-01-01T00:00:00-01:00") - at("2020-01-01T00:00:00Z"),
            H
        );
    }

    #[test]
    fn bounds_of_the_year_range() {
        assert_eq!(parse_range("0001").unwrap().0, MIN_MICROS);
        assert_eq!(parse_range("9999").unwrap().1, MAX_MICROS + 1);
        assert_eq!(format_instant(i64::MIN), "0001-01-01T00:00:00.000000Z");
        assert_eq!(format_instant(i64::MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "",
            "20",
            "0000",
            "2020-13",
            "2020-00",
            "2020-02-30",
            "2019-02-29",
            "1900-02-29",
            "2020-04-31",
            "2020-1-01",
            "2020-01-01T24:00:00Z",
            "2020-01-01T10:60:00Z",
            "2020-01-01T10:00:61Z",
            "2020-01-01T10",
            "2020-01-01T10:00:00.Z",
            "2020-01-01T10:00:00+14:30",
            "2020-01-01T10:00:00+15:00",
            "2020-01-01T10:00:00+0100",
            "2020-01-01 10:00:00Z",
            "2020-01-01T10:00:00Zx",
            " 2020",
            "2020-01-01T",
            "２０２０",
        ] {
            assert!(parse_range(bad).is_err(), "{bad:?} accepted");
            assert!(!is_valid_datetime(bad), "{bad:?} valid dateTime");
        }
        let e = parse_range("2020-02-30").unwrap_err();
        assert_eq!(e.text, "2020-02-30");
        assert!(e.to_string().contains("day out of range"));
    }

    #[test]
    fn r4_type_checks() {
        assert!(is_valid_date("2020") && is_valid_date("2020-02") && is_valid_date("2000-02-29"));
        assert!(!is_valid_date("2020-02-02T10:00:00Z"));
        assert!(is_valid_datetime("2020") && is_valid_datetime("2020-02-02"));
        assert!(is_valid_datetime("2015-02-07T13:28:17-05:00"));
        assert!(is_valid_datetime("2017-01-01T00:00:00.000Z"));
        assert!(
            is_valid_datetime("2016-12-31T23:59:60Z"),
            "leap second per the R4 regex"
        );
        assert!(
            !is_valid_datetime("2015-02-07T13:28:17"),
            "time needs a zone"
        );
        assert!(
            !is_valid_datetime("2015-02-07T13:28Z"),
            "time needs seconds"
        );
        assert!(is_valid_instant("2015-02-07T13:28:17.239+02:00"));
        assert!(!is_valid_instant("2015-02-07"));
        assert!(!is_valid_instant("2015-02-07T13:28:17"));
        assert!(parse_instant_micros("2015-02-07").is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(micros in MIN_MICROS..=MAX_MICROS) {
            let text = format_instant(micros);
            prop_assert!(is_valid_instant(&text));
            prop_assert_eq!(parse_instant_micros(&text).unwrap(), micros);
            let (lo, hi) = parse_range(&text).unwrap();
            prop_assert_eq!((lo, hi), (micros, micros + 1));
        }

        #[test]
        fn civil_days_round_trip(days in -719_162i64..=2_932_896) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y as i32, m, d), days);
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_range(&s);
            let _ = is_valid_instant(&s);
        }

        #[test]
        fn never_panics_on_date_like(s in "[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,12})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?") {
            if let Ok((lo, hi)) = parse_range(&s) {
                prop_assert!(lo < hi);
            }
        }
    }
}
