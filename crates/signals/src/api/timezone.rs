//! Time zones and precisions of the Metrics API: `from`/`to` are read in `timezone` and
//! rounded to the precision; buckets at or below one hour (and `12hr`) follow the zone,
//! `day`, `week` and `month` are always UTC (SparkPost's rule, spec §4.2).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use petrel_signals_model::counters::Increment;

/// A Metrics API precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    OneMin,
    FiveMin,
    FifteenMin,
    Hour,
    TwelveHr,
    Day,
    Week,
    Month,
}

impl Precision {
    pub(crate) fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "1min" => Precision::OneMin,
            "5min" => Precision::FiveMin,
            "15min" => Precision::FifteenMin,
            "hour" => Precision::Hour,
            "12hr" => Precision::TwelveHr,
            "day" => Precision::Day,
            "week" => Precision::Week,
            "month" => Precision::Month,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Precision::OneMin => "1min",
            Precision::FiveMin => "5min",
            Precision::FifteenMin => "15min",
            Precision::Hour => "hour",
            Precision::TwelveHr => "12hr",
            Precision::Day => "day",
            Precision::Week => "week",
            Precision::Month => "month",
        }
    }

    /// The longest `from`–`to` window allowed, seconds.
    pub(crate) fn max_window(self) -> Option<i64> {
        match self {
            Precision::OneMin | Precision::FiveMin => Some(86_400),
            Precision::FifteenMin => Some(2 * 86_400),
            Precision::Hour => Some(31 * 86_400),
            _ => None,
        }
    }

    /// The rollup increment it reads.
    pub(crate) fn increment(self) -> Increment {
        match self {
            Precision::OneMin | Precision::FiveMin | Precision::FifteenMin => Increment::Minute,
            Precision::Hour | Precision::TwelveHr => Increment::Hour,
            _ => Increment::Day,
        }
    }

    /// Whether `timezone` applies.
    pub(crate) fn zoned(self) -> bool {
        matches!(self.increment(), Increment::Minute | Increment::Hour)
    }

    /// The finest precision whose window allows `secs` (used when `precision` is absent).
    pub(crate) fn auto(secs: i64) -> Precision {
        [Precision::OneMin, Precision::FifteenMin, Precision::Hour]
            .into_iter()
            .find(|p| p.max_window().is_some_and(|m| secs <= m))
            .unwrap_or(Precision::Day)
    }

    /// Start of the bucket holding `ts`.
    pub(crate) fn floor(self, tz: &TimeZone, ts: i64) -> i64 {
        let tz = if self.zoned() {
            tz.clone()
        } else {
            TimeZone::UTC
        };
        let Ok(t) = Timestamp::from_second(ts) else {
            return ts;
        };
        let dt = t.to_zoned(tz.clone()).datetime();
        let (y, mo, d, h, mi) = (dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute());
        let civil = match self {
            Precision::OneMin => DateTime::new(y, mo, d, h, mi, 0, 0),
            Precision::FiveMin => DateTime::new(y, mo, d, h, mi - mi % 5, 0, 0),
            Precision::FifteenMin => DateTime::new(y, mo, d, h, mi - mi % 15, 0, 0),
            Precision::Hour => DateTime::new(y, mo, d, h, 0, 0, 0),
            Precision::TwelveHr => DateTime::new(y, mo, d, h - h % 12, 0, 0, 0),
            Precision::Day => DateTime::new(y, mo, d, 0, 0, 0, 0),
            Precision::Week => {
                let back = i64::from(dt.weekday().to_monday_zero_offset());
                DateTime::new(y, mo, d, 0, 0, 0, 0).map(|x| x.saturating_sub(back.days()))
            }
            Precision::Month => DateTime::new(y, mo, 1, 0, 0, 0, 0),
        };
        civil
            .ok()
            .and_then(|c| c.to_zoned(tz).ok())
            .map(|z| z.timestamp().as_second())
            .unwrap_or(ts)
    }

    /// Start of the bucket after the one starting at `start`.
    pub(crate) fn next(self, tz: &TimeZone, start: i64) -> i64 {
        let step = match self {
            Precision::OneMin => 60,
            Precision::FiveMin => 300,
            Precision::FifteenMin => 900,
            Precision::Hour => 3600,
            Precision::TwelveHr => 13 * 3600,
            Precision::Day => 86_400,
            Precision::Week => 7 * 86_400,
            Precision::Month => 32 * 86_400,
        };
        match self {
            // Calendar steps: go past the next boundary, then back to it.
            Precision::TwelveHr | Precision::Month => self.floor(tz, start + step),
            _ => start + step,
        }
    }

    /// `ts` rounded up to a bucket boundary.
    pub(crate) fn ceil(self, tz: &TimeZone, ts: i64) -> i64 {
        let f = self.floor(tz, ts);
        if f == ts {
            ts
        } else {
            self.next(tz, f)
        }
    }
}

/// The zone named `name` (IANA, e.g. `America/New_York`; `UTC`).
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    if name.eq_ignore_ascii_case("utc") {
        return Some(TimeZone::UTC);
    }
    TimeZone::get(name).ok()
}

/// Parses `YYYY-MM-DDTHH:MM` (optionally `:ss`, optionally `Z`) as a time in `tz`.
pub(crate) fn parse_local(tz: &TimeZone, s: &str) -> Option<i64> {
    let s = s.trim();
    let (body, utc) = match s.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let b = body.as_bytes();
    if !(b.len() == 16 || b.len() == 19) {
        return None;
    }
    let text = if b.len() == 16 {
        format!("{body}:00")
    } else {
        body.to_string()
    };
    let dt: DateTime = text.parse().ok()?;
    let zone = if utc { TimeZone::UTC } else { tz.clone() };
    Some(dt.to_zoned(zone).ok()?.timestamp().as_second())
}

/// `2026-01-01T00:00:00-05:00`, as SparkPost's time series shows `ts`.
pub(crate) fn format_offset(tz: &TimeZone, ts: i64) -> String {
    match Timestamp::from_second(ts) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => ts.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_sparkpost_examples() {
        let tz = TimeZone::UTC;
        let from = parse_local(&tz, "2026-01-01T04:22").unwrap();
        let to = parse_local(&tz, "2026-01-01T06:37").unwrap();
        let f = |p: Precision| {
            (
                format_offset(&tz, p.floor(&tz, from)),
                format_offset(&tz, p.ceil(&tz, to)),
            )
        };
        assert_eq!(
            f(Precision::OneMin),
            (
                "2026-01-01T04:22:00+00:00".into(),
                "2026-01-01T06:37:00+00:00".into()
            )
        );
        assert_eq!(
            f(Precision::FiveMin),
            (
                "2026-01-01T04:20:00+00:00".into(),
                "2026-01-01T06:40:00+00:00".into()
            )
        );
        assert_eq!(f(Precision::FifteenMin).0, "2026-01-01T04:15:00+00:00");
        assert_eq!(
            f(Precision::Hour),
            (
                "2026-01-01T04:00:00+00:00".into(),
                "2026-01-01T07:00:00+00:00".into()
            )
        );
        assert_eq!(f(Precision::Day).1, "2026-01-02T00:00:00+00:00");
    }

    #[test]
    fn zones_and_calendar_buckets() {
        let ny = zone("America/New_York").unwrap();
        let t = parse_local(&ny, "2026-01-01T00:30").unwrap();
        assert_eq!(
            format_offset(&ny, Precision::Hour.floor(&ny, t)),
            "2026-01-01T00:00:00-05:00"
        );
        // Day precision ignores the zone: 00:30 in New York is 05:30 UTC, same UTC day.
        assert_eq!(
            format_offset(&TimeZone::UTC, Precision::Day.floor(&ny, t)),
            "2026-01-01T00:00:00+00:00"
        );
        let utc = TimeZone::UTC;
        let wed = parse_local(&utc, "2026-01-07T10:00").unwrap();
        assert_eq!(
            format_offset(&utc, Precision::Week.floor(&utc, wed)),
            "2026-01-05T00:00:00+00:00"
        );
        let m = Precision::Month.floor(&utc, wed);
        assert_eq!(
            format_offset(&utc, Precision::Month.next(&utc, m)),
            "2026-02-01T00:00:00+00:00"
        );
        assert!(zone("Mars/Olympus").is_none());
    }
}
