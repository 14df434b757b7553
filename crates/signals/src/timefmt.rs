//! Time conversions between the forms SparkPost uses: unix seconds on ingest, ISO-8601 with
//! milliseconds and `+00:00` in search results, and `YYYY-MM-DDTHH:MM:ssZ` in query filters.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The current time in unix seconds.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats unix seconds as SparkPost's Events API does: `2016-04-18T14:25:07.000+00:00`.
pub(crate) fn iso(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

/// Parses a query-filter time, `YYYY-MM-DDTHH:MM` optionally followed by `:ss`, then `Z`
/// (SparkPost also documents the `YYYY-MM-DDTHH:MM` form). Returns unix seconds.
pub(crate) fn parse_filter_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let b = s.as_bytes();
    if !(b.len() == 16 || b.len() == 19) || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || (b.len() == 19 && b[16] != b':') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = num(0..4)?;
    let month = Month::try_from(num(5..7)? as u8).ok()?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = if b.len() == 19 { num(17..19)? } else { 0 };
    let date = Date::from_calendar_date(year as i32, month, day as u8).ok()?;
    let time = Time::from_hms(hour as u8, minute as u8, second as u8).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(iso(1767225611), "2026-01-01T00:00:11.000+00:00");
        assert_eq!(parse_filter_time("2026-01-01T00:00:11Z"), Some(1767225611));
        assert_eq!(parse_filter_time("2026-01-01T00:00Z"), Some(1767225600));
        assert_eq!(parse_filter_time("2026-13-01T00:00Z"), None);
        assert_eq!(parse_filter_time("yesterday"), None);
    }
}
