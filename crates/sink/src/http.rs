//! `--stats ADDR`: the counts as JSON at `/` ([`crate::Snapshot`]) and in the Prometheus
//! text format at `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::counts::{Counts, Snapshot, Stats};

/// The stats routes.
pub fn router(stats: Arc<Stats>) -> Router {
    let json = stats.clone();
    Router::new()
        .route("/", get(move || async move { Json(json.snapshot()) }))
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    prometheus(&stats.snapshot()),
                )
                    .into_response()
            }),
        )
}

/// The snapshot in Prometheus' text format: one counter family per scope, the behaviour as
/// a label.
pub fn prometheus(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "petrel_sink_total",
        "What the sink did, by behaviour.",
        std::iter::once((String::new(), &s.totals)),
    );
    family(
        &mut out,
        "petrel_sink_campaign_total",
        "What the sink did, by campaign (X-Job) and behaviour.",
        s.campaigns
            .iter()
            .map(|(k, c)| (format!("campaign=\"{}\",", escape(k)), c)),
    );
    family(
        &mut out,
        "petrel_sink_source_ip_total",
        "What the sink did, by client address and behaviour.",
        s.source_ips
            .iter()
            .map(|(k, c)| (format!("source_ip=\"{}\",", escape(k)), c)),
    );
    let _ = writeln!(
        out,
        "# HELP petrel_sink_pending Reports and fetches scheduled and not yet done.\n# TYPE petrel_sink_pending gauge\npetrel_sink_pending {}",
        s.pending
    );
    out
}

fn family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (String, &'a Counts)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (labels, c) in rows {
        for (what, v) in c.fields() {
            let _ = writeln!(out, "{name}{{{labels}what=\"{what}\"}} {v}");
        }
    }
}

/// Label value escaping (backslash, double quote, line feed).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text() {
        let stats = Stats::default();
        let ip = stats.source_ip("127.0.0.2".parse().unwrap());
        let c = stats.campaign("sp\"ring");
        stats.scope(&ip, Some(&c)).add(3, |c| &c.delivered);
        let text = prometheus(&stats.snapshot());
        assert!(
            text.contains("petrel_sink_total{what=\"delivered\"} 3\n"),
            "{text}"
        );
        assert!(text.contains(
            "petrel_sink_campaign_total{campaign=\"sp\\\"ring\",what=\"delivered\"} 3\n"
        ));
        assert!(text.contains(
            "petrel_sink_source_ip_total{source_ip=\"127.0.0.2\",what=\"delivered\"} 3\n"
        ));
        assert!(text.contains("# TYPE petrel_sink_total counter\n"));
        assert!(text.contains("petrel_sink_pending 0\n"));
    }
}
