//! The Integration page (`/signals/integration`): the ingest batches the service received,
//! with their outcome, counts and error, so an operator sees at a glance whether the MTAs'
//! events are arriving and, if not, why.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::Value;

use super::common::{int, next_cursor, text};
use super::{Pages, View, Viewer};
use crate::format;
use crate::web::{self, qs, Chrome};

const PAGE: &str = "/signals/integration";

/// The outcome of a batch as people read it.
fn outcome(error_type: &str) -> (&'static str, &'static str) {
    match error_type {
        "" => ("Success", "good"),
        "validation" => ("Some events invalid", "warn"),
        "decompress" => ("Not gzip", "bad"),
        "empty_batch" => ("Empty", "warn"),
        "duplicate_batch" => ("Duplicate batch", "neutral"),
        _ => ("Failed", "bad"),
    }
}

/// One batch.
pub struct BatchRow {
    pub received: String,
    pub id: String,
    pub outcome: &'static str,
    pub class: &'static str,
    pub accepted: String,
    pub failed: String,
    pub duplicates: String,
    pub error_type: String,
    pub message: String,
}

#[derive(serde::Deserialize, Default)]
pub struct IntegrationQuery {
    range: Option<String>,
    outcome: Option<String>,
    cursor: Option<String>,
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "signals/integration.html")]
struct IntegrationPage {
    chrome: Chrome,
    ranges: Vec<(&'static str, &'static str, bool)>,
    outcomes: Vec<(&'static str, &'static str, bool)>,
    succeeded: String,
    failed: String,
    last: String,
    rows: Vec<BatchRow>,
    next: Option<String>,
    first: Option<String>,
    ingest_url: String,
}

/// `/signals/integration`.
pub async fn page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(q): Query<IntegrationQuery>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let range = match q.range.as_deref() {
        Some("1h") => "1h",
        Some("7d") => "7d",
        Some("10d") => "10d",
        _ => "24h",
    };
    let secs = match range {
        "1h" => 3600,
        "7d" => 7 * 86_400,
        "10d" => 10 * 86_400,
        _ => 86_400,
    };
    let now = jiff::Timestamp::now();
    let fmt = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M:00Z").to_string();
    let from = fmt(now
        .checked_sub(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(now));
    let to = fmt(now
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap_or(now));
    let outcome_filter = match q.outcome.as_deref() {
        Some("success") => "success",
        Some("error") => "error",
        _ => "",
    };
    let window = [("from", from.as_str()), ("to", to.as_str())];
    let mut counts = Vec::new();
    for kind in ["success", "error"] {
        let path = format!(
            "/api/v1/events/ingest?{}",
            qs(window
                .iter()
                .copied()
                .chain([("events", kind), ("per_page", "1")]))
        );
        match view.api.get(&path).await {
            Ok(r) => counts.push(r["total_count"].as_i64().unwrap_or(0)),
            Err(f) => return view.failure(f, PAGE),
        }
    }
    let cursor = q.cursor.clone().unwrap_or_default();
    let path = format!(
        "/api/v1/events/ingest?{}",
        qs(window.iter().copied().chain([
            ("events", outcome_filter),
            ("per_page", "25"),
            ("cursor", cursor.as_str()),
        ]))
    );
    let resp = match view.api.get(&path).await {
        Ok(r) => r,
        Err(f) => return view.failure(f, PAGE),
    };
    let results = resp["results"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<BatchRow> = results
        .iter()
        .map(|b: &Value| {
            let et = text(&b["error_type"]);
            let (label, class) = match outcome(&et) {
                ("Some events invalid", _) if int(&b["number_succeeded"]) == 0 => {
                    ("No valid events", "bad")
                }
                o => o,
            };
            BatchRow {
                received: format::timestamp(b["timestamp"].as_str().unwrap_or("")),
                id: text(&b["batch_id"]),
                outcome: label,
                class,
                accepted: format::int(int(&b["number_succeeded"])),
                failed: format::int(int(&b["number_failed"])),
                duplicates: format::int(int(&b["number_duplicates"])),
                error_type: et,
                message: text(&b["error_message"]),
            }
        })
        .collect();
    let page_no = q.page.unwrap_or(1).max(1);
    let link = |cursor: Option<&str>, page: usize| {
        let p = page.to_string();
        format!(
            "{PAGE}?{}",
            qs([
                ("range", range),
                ("outcome", outcome_filter),
                ("cursor", cursor.unwrap_or("")),
                ("page", if cursor.is_some() { p.as_str() } else { "" }),
            ])
        )
    };
    let next = next_cursor(&resp).map(|c| link(Some(&c), page_no + 1));
    let last = if page_no == 1 && outcome_filter.is_empty() {
        rows.first()
            .map_or("none in this window".into(), |r| r.received.clone())
    } else {
        "–".into()
    };
    let page = IntegrationPage {
        chrome: view.chrome("Integration", PAGE),
        ranges: [
            ("1h", "Last hour"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("10d", "Last 10 days"),
        ]
        .into_iter()
        .map(|(v, l)| (v, l, v == range))
        .collect(),
        outcomes: [
            ("", "All batches"),
            ("success", "Successes"),
            ("error", "With errors"),
        ]
        .into_iter()
        .map(|(v, l)| (v, l, v == outcome_filter))
        .collect(),
        succeeded: format::int(counts[0]),
        failed: format::int(counts[1]),
        last,
        rows,
        next,
        first: (page_no > 1).then(|| link(None, 1)),
        ingest_url: format!("{}/api/v1/ingest/events", crate::api::base_url(&headers)),
    };
    web::html(StatusCode::OK, &page)
}
