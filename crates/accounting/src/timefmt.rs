//! Timestamps as PowerMTA writes them, and the UTC calendar date used for file names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; times before 1970 count as 0.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// The UTC date of `t`.
    pub fn of(t: SystemTime) -> Date {
        civil_from_days((unix_secs(t) / 86_400) as i64)
    }

    /// `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let p = &s[r];
            p.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| p.parse().ok())
                .flatten()
        };
        let d = Date {
            year: num(0..4)? as i64,
            month: num(5..7)?,
            day: num(8..10)?,
        };
        ((1..=12).contains(&d.month) && (1..=31).contains(&d.day)).then_some(d)
    }

    /// Days since 1970-01-01 (inverse of [`Date::of`]).
    pub fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }
}

/// `YYYY-MM-DD HH:MM:SS+0000` (always UTC) or the Unix `time_t` when `iso` is false.
pub(crate) fn format_time(t: SystemTime, iso: bool) -> String {
    let secs = unix_secs(t);
    if !iso {
        return secs.to_string();
    }
    let d = Date::of(t);
    let rem = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02}+0000",
        d.iso(),
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// Howard Hinnant's days↔civil algorithms (proleptic Gregorian).
fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_like_powermta() {
        // 2019-02-08 21:54:05 UTC, the guide's d sample.
        assert_eq!(
            format_time(at(1_549_662_845), true),
            "2019-02-08 21:54:05+0000"
        );
        assert_eq!(format_time(at(1_178_807_903), false), "1178807903");
        assert_eq!(format_time(at(0), true), "1970-01-01 00:00:00+0000");
        assert_eq!(
            format_time(at(951_782_400), true),
            "2000-02-29 00:00:00+0000"
        );
    }

    #[test]
    fn dates_round_trip() {
        for days in [-1000_i64, 0, 59, 10_956, 11_016, 17_935, 20_000, 2_932_896] {
            let d = civil_from_days(days);
            assert_eq!(d.days(), days);
            assert_eq!(
                Date::parse(&d.iso()),
                Some(d).filter(|d| d.year >= 0 && d.year < 10_000)
            );
        }
        assert_eq!(Date::parse("2019-13-01"), None);
        assert_eq!(Date::parse("2019-1-01x"), None);
    }
}
