//! Counters and gauges of every part of the daemon, in two shapes: sections of the `/status`
//! JSON (what `petrel show status` prints) and the Prometheus text format on `/metrics`, so a
//! monitoring system can scrape petrel without a separate exporter.
//!
//! The management crate does not know the tracking host, the returns processor or the Signals
//! uploader; the binary hands each one in as a [`MetricSource`] that reads its counters.

use std::fmt::Write as _;
use std::sync::Arc;

/// Whether a value only grows (reset at restart) or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Grows since start; Prometheus name gets `_total`.
    Counter,
    /// A current level (files waiting, entries in a list).
    Gauge,
}

/// One named value of a section, with the sentence Prometheus shows as its help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// snake_case name inside its section, e.g. `events_uploaded`.
    pub name: &'static str,
    /// One line for humans.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value now.
    pub value: u64,
}

impl Metric {
    /// A counter (grows since start).
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Self {
        Metric {
            name,
            help,
            kind: MetricKind::Counter,
            value,
        }
    }

    /// A gauge (a current level).
    pub fn gauge(name: &'static str, help: &'static str, value: u64) -> Self {
        Metric {
            name,
            help,
            kind: MetricKind::Gauge,
            value,
        }
    }
}

/// Reads one part's values when `/status` or `/metrics` is asked; cheap (relaxed atomic
/// loads), never blocking.
pub type MetricSource = Arc<dyn Fn() -> Vec<Metric> + Send + Sync>;

/// A named group of metrics: `smtp_in`, `delivery`, `signals_upload`, `tracking`, …
pub(crate) struct Section {
    pub(crate) name: &'static str,
    pub(crate) metrics: Vec<Metric>,
}

/// Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, then the sample, for every
/// metric as `petrel_<section>_<name>` (counters end in `_total`).
pub(crate) fn prometheus_text(sections: &[Section]) -> String {
    let mut out = String::with_capacity(4096);
    for s in sections {
        for m in &s.metrics {
            let (suffix, kind) = match m.kind {
                MetricKind::Counter => ("_total", "counter"),
                MetricKind::Gauge => ("", "gauge"),
            };
            let full = format!("petrel_{}_{}{suffix}", s.name, m.name);
            let _ = writeln!(out, "# HELP {full} {}", m.help);
            let _ = writeln!(out, "# TYPE {full} {kind}");
            let _ = writeln!(out, "{full} {}", m.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_lines_name_the_section_and_mark_counters() {
        let text = prometheus_text(&[Section {
            name: "tracking",
            metrics: vec![
                Metric::counter("clicks", "Click redirects sent.", 3),
                Metric::gauge("keys", "Signing keys loaded.", 2),
            ],
        }]);
        assert_eq!(
            text,
            "# HELP petrel_tracking_clicks_total Click redirects sent.\n\
             # TYPE petrel_tracking_clicks_total counter\n\
             petrel_tracking_clicks_total 3\n\
             # HELP petrel_tracking_keys Signing keys loaded.\n\
             # TYPE petrel_tracking_keys gauge\n\
             petrel_tracking_keys 2\n"
        );
    }
}
