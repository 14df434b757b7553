//! The Summary report's metric picker: the Metrics API's counts, and the rates SparkPost's
//! reports show, each computed from counts the page asked the API for, with its formula
//! shown beside it (spec §4.3).

use serde_json::Value;

use super::common::num;
use crate::format;

/// How a metric's value reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count of events or messages.
    Count,
    /// A ratio of two counts.
    Rate,
    /// Milliseconds (average delivery time).
    Millis,
    /// Bytes.
    Bytes,
}

/// One metric of the picker.
pub struct MetricDef {
    /// The picker's value: the API's name for counts, a page name for rates.
    pub id: &'static str,
    /// What people read.
    pub label: &'static str,
    /// Picker group.
    pub group: &'static str,
    pub kind: Kind,
    /// For rates: numerator and denominator (API metrics); for counts: the metric itself.
    pub of: (&'static str, Option<&'static str>),
}

impl MetricDef {
    /// The API metrics this one needs.
    pub fn needs(&self) -> Vec<&'static str> {
        let mut v = vec![self.of.0];
        v.extend(self.of.1);
        v
    }

    /// The value for a row of the API's answer (`None` when dividing by zero).
    pub fn value(&self, row: &Value) -> Option<f64> {
        let n = num(&row[self.of.0]).unwrap_or(0.0);
        match self.of.1 {
            None => Some(n),
            Some(d) => {
                let d = num(&row[d]).unwrap_or(0.0);
                (d > 0.0).then(|| n / d)
            }
        }
    }

    /// The value as shown.
    pub fn show(&self, v: Option<f64>) -> String {
        match (self.kind, v) {
            (_, None) => "–".into(),
            (Kind::Count, Some(v)) => format::int(v.round() as i64),
            (Kind::Rate, Some(v)) => format::pct(v),
            (Kind::Millis, Some(v)) => format::duration_ms(v),
            (Kind::Bytes, Some(v)) => format::bytes(v),
        }
    }

    /// The value in a CSV export: plain digits, ratios as decimals.
    pub fn csv(&self, v: Option<f64>) -> String {
        match (self.kind, v) {
            (_, None) => String::new(),
            (Kind::Count | Kind::Bytes, Some(v)) => format!("{}", v.round() as i64),
            (Kind::Rate, Some(v)) => format!("{v:.6}"),
            (Kind::Millis, Some(v)) => format!("{v:.0}"),
        }
    }

    /// How it is computed, e.g. `count_accepted ÷ count_sent`.
    pub fn formula(&self) -> String {
        match self.of.1 {
            Some(d) => format!("{} ÷ {d}", self.of.0),
            None => self.of.0.to_string(),
        }
    }
}

const fn count(id: &'static str, label: &'static str, group: &'static str) -> MetricDef {
    MetricDef {
        id,
        label,
        group,
        kind: Kind::Count,
        of: (id, None),
    }
}

const fn rate(
    id: &'static str,
    label: &'static str,
    group: &'static str,
    num: &'static str,
    den: &'static str,
) -> MetricDef {
    MetricDef {
        id,
        label,
        group,
        kind: Kind::Rate,
        of: (num, Some(den)),
    }
}

/// Every metric the picker offers, in its order.
pub const METRICS: &[MetricDef] = &[
    count("count_targeted", "Targeted", "Injection"),
    count("count_injected", "Injected", "Injection"),
    count("count_rejected", "Rejected", "Injection"),
    count("count_policy_rejection", "Policy rejections", "Injection"),
    rate(
        "rejection_rate",
        "Rejection rate",
        "Injection",
        "count_rejected",
        "count_targeted",
    ),
    count("count_sent", "Sent", "Delivery"),
    count("count_delivered", "Delivered", "Delivery"),
    count("count_delivered_first", "Delivered 1st attempt", "Delivery"),
    count(
        "count_delivered_subsequent",
        "Delivered after retries",
        "Delivery",
    ),
    count("count_accepted", "Accepted", "Delivery"),
    rate(
        "accepted_rate",
        "Accepted rate",
        "Delivery",
        "count_accepted",
        "count_sent",
    ),
    count("count_delayed", "Delayed", "Delivery"),
    count("count_delayed_first", "Delayed 1st attempt", "Delivery"),
    rate(
        "delayed_rate",
        "Delayed rate",
        "Delivery",
        "count_delayed_first",
        "count_accepted",
    ),
    MetricDef {
        id: "avg_delivery_time",
        label: "Avg delivery time (1st attempt)",
        group: "Delivery",
        kind: Kind::Millis,
        of: ("total_delivery_time_first", Some("count_delivered_first")),
    },
    MetricDef {
        id: "total_msg_volume",
        label: "Delivered volume",
        group: "Delivery",
        kind: Kind::Bytes,
        of: ("total_msg_volume", None),
    },
    count("count_bounce", "Bounces", "Bounces"),
    rate(
        "bounce_rate",
        "Bounce rate",
        "Bounces",
        "count_bounce",
        "count_sent",
    ),
    count("count_hard_bounce", "Hard bounces", "Bounces"),
    rate(
        "hard_bounce_rate",
        "Hard bounce rate",
        "Bounces",
        "count_hard_bounce",
        "count_sent",
    ),
    count("count_soft_bounce", "Soft bounces", "Bounces"),
    rate(
        "soft_bounce_rate",
        "Soft bounce rate",
        "Bounces",
        "count_soft_bounce",
        "count_sent",
    ),
    count("count_block_bounce", "Block bounces", "Bounces"),
    rate(
        "block_bounce_rate",
        "Block bounce rate",
        "Bounces",
        "count_block_bounce",
        "count_sent",
    ),
    count(
        "count_undetermined_bounce",
        "Undetermined bounces",
        "Bounces",
    ),
    count("count_admin_bounce", "Admin bounces", "Bounces"),
    rate(
        "admin_bounce_rate",
        "Admin bounce rate",
        "Bounces",
        "count_admin_bounce",
        "count_targeted",
    ),
    count("count_outofband_bounce", "Out-of-band bounces", "Bounces"),
    count(
        "count_unique_confirmed_opened",
        "Unique confirmed opens",
        "Engagement",
    ),
    rate(
        "open_rate",
        "Open rate",
        "Engagement",
        "count_unique_confirmed_opened",
        "count_accepted",
    ),
    count("count_rendered", "Opens (all)", "Engagement"),
    count("count_unique_clicked", "Unique clicks", "Engagement"),
    rate(
        "click_through_rate",
        "Click-through rate",
        "Engagement",
        "count_unique_clicked",
        "count_accepted",
    ),
    count("count_clicked", "Clicks (all)", "Engagement"),
    count("count_spam_complaint", "Spam complaints", "Engagement"),
    rate(
        "spam_complaint_rate",
        "Spam complaint rate",
        "Engagement",
        "count_spam_complaint",
        "count_accepted",
    ),
    count("count_unsubscribe", "Unsubscribes", "Engagement"),
    rate(
        "unsubscribe_rate",
        "Unsubscribe rate",
        "Engagement",
        "count_unsubscribe",
        "count_accepted",
    ),
];

/// The picker's default: what SparkPost's Summary report opens with.
pub const DEFAULT: &[&str] = &[
    "count_targeted",
    "count_accepted",
    "accepted_rate",
    "bounce_rate",
    "open_rate",
    "click_through_rate",
];

/// The metric named `id`.
pub fn metric(id: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.id == id)
}

/// The API metrics a selection needs, without repeats, in a stable order.
pub fn api_metrics(selected: &[&'static MetricDef]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in selected {
        for n in m.needs() {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rates_divide_their_counts_and_say_how() {
        let m = metric("accepted_rate").unwrap();
        let row = json!({"count_accepted": 90, "count_sent": 100});
        assert_eq!(m.value(&row), Some(0.9));
        assert_eq!(m.show(m.value(&row)), "90.0%");
        assert_eq!(m.formula(), "count_accepted ÷ count_sent");
        assert_eq!(
            m.value(&json!({"count_accepted": 0, "count_sent": 0})),
            None
        );
        let picked = [metric("count_sent").unwrap(), m];
        assert_eq!(api_metrics(&picked), vec!["count_sent", "count_accepted"]);
    }

    #[test]
    fn every_default_exists_and_ids_are_unique() {
        for d in DEFAULT {
            assert!(metric(d).is_some(), "{d}");
        }
        for (i, a) in METRICS.iter().enumerate() {
            assert!(METRICS[i + 1..].iter().all(|b| b.id != a.id), "{}", a.id);
        }
    }
}
