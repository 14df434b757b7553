//! Numbers and dates as people read them: thousands separators, percentages with the
//! precision their size needs, scores in points, signed changes. Pure functions, so every
//! number on a page is formatted the same way and is easy to test.

/// `1234567` → `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('−');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio (0.0123) as a percentage (`1.23%`): two decimals below 1 %, three below 0.1 %
/// (complaint and trap rates live there), one from 10 % up.
pub fn pct(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p == 0.0 {
        return "0%".into();
    }
    let a = p.abs();
    let text = if a < 0.1 {
        format!("{a:.3}")
    } else if a < 10.0 {
        format!("{a:.2}")
    } else {
        format!("{a:.1}")
    };
    let sign = if p < 0.0 { "−" } else { "" };
    format!("{sign}{text}%")
}

/// A ratio or `–` when there is nothing to divide by.
pub fn pct_opt(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".into(), pct)
}

/// A health score (0–1) as the 0–100 figure people see, rounded like SparkPost's.
pub fn score(s: f64) -> String {
    // Half away from zero (`f64::round`), as people round; `{:.0}` would round half to even.
    format!("{}", (s * 100.0).clamp(0.0, 100.0).round() as i64)
}

/// A health score with one decimal, for explanations that add up.
pub fn score_exact(s: f64) -> String {
    format!("{:.1}", s * 100.0)
}

/// A component's weight (−0.031) as signed score points (`−3.1`).
pub fn points(weight: f64) -> String {
    let p = weight * 100.0;
    if p.abs() < 0.05 {
        return "0.0".into();
    }
    if p < 0.0 {
        format!("−{:.1}", -p)
    } else {
        format!("+{p:.1}")
    }
}

/// Week-over-week change (a fraction) with its direction: `+3.2%`, `−1.0%`, or `–`.
pub fn change(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(v) if v.abs() < 0.0005 => "0%".into(),
        Some(v) if v > 0.0 => format!("+{}", pct(v)),
        Some(v) => pct(v),
    }
}

/// How a change reads for a metric where up is good (`good_up`) or bad.
pub fn change_class(x: Option<f64>, good_up: bool) -> &'static str {
    match x {
        Some(v) if v.abs() >= 0.0005 => {
            if (v > 0.0) == good_up {
                "up-good"
            } else {
                "down-bad"
            }
        }
        _ => "flat",
    }
}

/// Bytes with a binary-free, human unit (`1.2 GB`).
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{} B", int(n as i64))
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Milliseconds as `850 ms`, `3.2 s`, `4.5 min`, `2.1 h`.
pub fn duration_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else {
        format!("{:.1} h", ms / 3_600_000.0)
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `2026-12-07` (or an ISO timestamp starting with it) → `Dec 7`.
pub fn short_date(iso: &str) -> String {
    let month: usize = iso.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(0);
    let day: u32 = iso.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(0);
    match MONTHS.get(month.wrapping_sub(1)) {
        Some(m) => format!("{m} {day}"),
        None => iso.to_string(),
    }
}

/// A time-series bucket label: the date for day buckets and longer, else `Dec 7 14:05`
/// (the time of day as the API gives it, in the report's time zone).
pub fn bucket_label(ts: &str, daily: bool) -> String {
    let date = short_date(ts);
    match (daily, ts.get(11..16)) {
        (false, Some(hm)) => format!("{date} {hm}"),
        _ => date,
    }
}

/// An ISO timestamp `2026-12-07T14:05:09.000+00:00` as `2026-12-07 14:05:09` (+ the offset
/// when it is not UTC).
pub fn timestamp(iso: &str) -> String {
    let (Some(date), Some(time)) = (iso.get(..10), iso.get(11..19)) else {
        return iso.to_string();
    };
    let offset = iso.get(19..).unwrap_or("");
    let offset = offset.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if offset.is_empty() || offset == "Z" || offset == "+00:00" {
        format!("{date} {time} UTC")
    } else {
        format!("{date} {time} {offset}")
    }
}

/// The score band of SparkPost's UI: < 55 bad, 55–80 needs improvement, ≥ 80 good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Below 55.
    Bad,
    /// 55 up to 80.
    Warn,
    /// 80 and above.
    Good,
}

impl Band {
    /// The band of a 0–1 score.
    pub fn of(score: f64) -> Band {
        if score < 0.55 {
            Band::Bad
        } else if score < 0.80 {
            Band::Warn
        } else {
            Band::Good
        }
    }

    /// What the band is called on the page.
    pub fn label(self) -> &'static str {
        match self {
            Band::Bad => "Bad",
            Band::Warn => "Needs improvement",
            Band::Good => "Good",
        }
    }

    /// The CSS class that colours it.
    pub fn class(self) -> &'static str {
        match self {
            Band::Bad => "bad",
            Band::Warn => "warn",
            Band::Good => "good",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_get_separators() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(int(-1234), "−1,234");
    }

    #[test]
    fn percentages_keep_the_digits_their_size_needs() {
        assert_eq!(pct(0.0), "0%");
        assert_eq!(pct(0.00042), "0.042%");
        assert_eq!(pct(0.0123), "1.23%");
        assert_eq!(pct(0.421), "42.1%");
        assert_eq!(pct(1.0), "100.0%");
        assert_eq!(change(Some(0.032)), "+3.20%");
        assert_eq!(change(Some(-0.5)), "−50.0%");
        assert_eq!(change(None), "–");
        assert_eq!(change_class(Some(0.1), true), "up-good");
        assert_eq!(change_class(Some(0.1), false), "down-bad");
    }

    #[test]
    fn scores_points_and_bands() {
        assert_eq!(score(0.7249), "72");
        assert_eq!(score(0.605), "61");
        assert_eq!(score_exact(0.7249), "72.5");
        assert_eq!(points(-0.031), "−3.1");
        assert_eq!(points(0.04), "+4.0");
        assert_eq!(points(-0.0001), "0.0");
        assert_eq!(Band::of(0.549), Band::Bad);
        assert_eq!(Band::of(0.55), Band::Warn);
        assert_eq!(Band::of(0.7999), Band::Warn);
        assert_eq!(Band::of(0.8), Band::Good);
    }

    #[test]
    fn dates_and_units() {
        assert_eq!(short_date("2026-12-07"), "Dec 7");
        assert_eq!(
            bucket_label("2026-12-07T14:05:00-05:00", false),
            "Dec 7 14:05"
        );
        assert_eq!(bucket_label("2026-12-07T00:00:00+00:00", true), "Dec 7");
        assert_eq!(
            timestamp("2026-12-07T14:05:09.000+00:00"),
            "2026-12-07 14:05:09 UTC"
        );
        assert_eq!(
            timestamp("2026-12-07T14:05:09-05:00"),
            "2026-12-07 14:05:09 -05:00"
        );
        assert_eq!(bytes(1_234_567.0), "1.2 MB");
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(duration_ms(3200.0), "3.2 s");
    }
}
