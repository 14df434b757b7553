//! The Events search (`/reports/message-events`): the Events API's search parameters as a
//! form, one row per event, paging with the API's cursor, and per event a page with its
//! JSON and the other events of its message.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::Value;

use super::common::{next_cursor, param, text};
use super::{Pages, View, Viewer};
use crate::format;
use crate::web::{self, path_segment, qs, Chrome};

const PAGE: &str = "/reports/message-events";

/// The public event types, for the type checkboxes.
const TYPES: &[&str] = &[
    "injection",
    "delivery",
    "bounce",
    "delay",
    "out_of_band",
    "spam_complaint",
    "policy_rejection",
    "generation_failure",
    "generation_rejection",
    "initial_open",
    "open",
    "click",
    "link_unsubscribe",
    "list_unsubscribe",
];

/// The text filters: API parameter, label, hint.
const FILTERS: &[(&str, &str, &str)] = &[
    ("recipients", "Recipients", "addresses"),
    ("campaigns", "Campaigns", "words of the campaign id"),
    ("subaccounts", "Subaccounts", "numbers"),
    ("ip_pools", "IP pools", "names"),
    ("sending_ips", "Sending IPs", "addresses"),
    ("sending_domains", "Sending domains", "domains"),
    ("recipient_domains", "Recipient domains", "domains"),
    ("mailbox_providers", "Mailbox providers", "names"),
    ("templates", "Templates", "ids"),
    ("bounce_classes", "Bounce classes", "numbers, e.g. 10,30"),
    ("message_ids", "Message ids", "ids"),
    ("event_ids", "Event ids", "ids"),
];

fn api_time(t: &jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:00Z").to_string()
}

/// The search a query string asks for.
struct Search {
    range: String,
    /// API form, `YYYY-MM-DDTHH:MM:00Z`.
    from: String,
    to: String,
    /// The custom range's inputs (`YYYY-MM-DDTHH:MM`, UTC).
    from_input: String,
    to_input: String,
    types: Vec<&'static str>,
    filters: Vec<(&'static str, String)>,
    per_page: usize,
    cursor: Option<String>,
    page: usize,
    error: Option<String>,
}

impl Search {
    fn parse(pairs: &[(String, String)]) -> Search {
        let now = jiff::Timestamp::now();
        let range = param(pairs, "range").unwrap_or("24h").to_string();
        let mut error = None;
        let (from, to, from_input, to_input) = if range == "custom" {
            let parse = |k: &str| {
                param(pairs, k).and_then(|v| {
                    v.parse::<jiff::civil::DateTime>()
                        .ok()
                        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                        .map(|z| z.timestamp())
                })
            };
            match (parse("from"), parse("to")) {
                (Some(f), Some(t)) => (
                    api_time(&f),
                    api_time(&t),
                    param(pairs, "from").unwrap_or("").into(),
                    param(pairs, "to").unwrap_or("").into(),
                ),
                _ => {
                    error = Some("Give the start and end of a custom range (UTC).".into());
                    (String::new(), String::new(), String::new(), String::new())
                }
            }
        } else {
            let secs: i64 = match range.as_str() {
                "1h" => 3600,
                "7d" => 7 * 86_400,
                "10d" => 10 * 86_400,
                _ => 86_400,
            };
            let f = now
                .checked_sub(jiff::SignedDuration::from_secs(secs))
                .unwrap_or(now);
            let t = now
                .checked_add(jiff::SignedDuration::from_secs(60))
                .unwrap_or(now);
            let input = |t: &jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M").to_string();
            (api_time(&f), api_time(&t), input(&f), input(&t))
        };
        let types = pairs
            .iter()
            .filter(|(k, _)| k == "events")
            .flat_map(|(_, v)| v.split(','))
            .filter_map(|v| TYPES.iter().copied().find(|t| *t == v.trim()))
            .collect();
        let filters = FILTERS
            .iter()
            .filter_map(|(f, _, _)| param(pairs, f).map(|v| (*f, v.to_string())))
            .collect();
        let per_page = param(pairs, "per_page")
            .and_then(|v| v.parse().ok())
            .filter(|n| [25, 100, 1000].contains(n))
            .unwrap_or(25);
        Search {
            range,
            from,
            to,
            from_input,
            to_input,
            types,
            filters,
            per_page,
            cursor: param(pairs, "cursor").map(str::to_string),
            page: param(pairs, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
            error,
        }
    }

    /// The API's query for this search.
    fn api_path(&self) -> String {
        let mut pairs: Vec<(&str, String)> = vec![
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("events", self.types.join(",")),
        ];
        for (f, v) in &self.filters {
            pairs.push((f, v.clone()));
        }
        pairs.push(("per_page", self.per_page.to_string()));
        if let Some(c) = &self.cursor {
            pairs.push(("cursor", c.clone()));
        }
        format!(
            "/api/v1/events/message?{}",
            qs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        )
    }

    /// The page's query string, for paging links.
    fn page_qs(&self, cursor: Option<&str>, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("range", self.range.clone())];
        if self.range == "custom" {
            pairs.push(("from", self.from_input.clone()));
            pairs.push(("to", self.to_input.clone()));
        }
        for t in &self.types {
            pairs.push(("events", t.to_string()));
        }
        for (f, v) in &self.filters {
            pairs.push((f, v.clone()));
        }
        pairs.push(("per_page", self.per_page.to_string()));
        if let Some(c) = cursor {
            pairs.push(("cursor", c.to_string()));
            pairs.push(("page", page.to_string()));
        }
        qs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
    }
}

/// One row of the results.
pub struct EventRow {
    pub time: String,
    pub kind: String,
    pub recipient: String,
    pub campaign: String,
    pub subject: String,
    pub detail: String,
    pub href: String,
}

/// What a row shows beside the type: the reason of a failure, the link of a click, the IP
/// of a delivery.
fn detail_of(e: &Value) -> String {
    let kind = e["type"].as_str().unwrap_or("");
    match kind {
        "bounce" | "out_of_band" => format!(
            "class {} · {}",
            text(&e["bounce_class"]),
            text(&e["reason"])
        ),
        "delay" | "policy_rejection" | "generation_failure" | "generation_rejection" => {
            text(&e["reason"])
        }
        "click" | "link_unsubscribe" => {
            let url = text(&e["target_link_url"]);
            if url.is_empty() {
                text(&e["target_link_name"])
            } else {
                url
            }
        }
        "delivery" => {
            let ip = text(&e["sending_ip"]);
            let pool = text(&e["ip_pool"]);
            [ip, pool]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · ")
        }
        "spam_complaint" => text(&e["fbtype"]),
        _ => String::new(),
    }
}

fn row(e: &Value, window: &str) -> EventRow {
    EventRow {
        time: format::timestamp(e["timestamp"].as_str().unwrap_or("")),
        kind: text(&e["type"]),
        recipient: text(&e["rcpt_to"]),
        campaign: text(&e["campaign_id"]),
        subject: text(&e["subject"]),
        detail: detail_of(e),
        href: format!(
            "{PAGE}/{}?{window}",
            path_segment(e["event_id"].as_str().unwrap_or(""))
        ),
    }
}

#[derive(Template)]
#[template(path = "signals/events.html")]
struct EventsPage {
    chrome: Chrome,
    ranges: Vec<(&'static str, &'static str, bool)>,
    from_input: String,
    to_input: String,
    types: Vec<(&'static str, bool)>,
    filters: Vec<(&'static str, &'static str, &'static str, String)>,
    per_pages: Vec<(usize, bool)>,
    error: Option<String>,
    total: String,
    shown: String,
    rows: Vec<EventRow>,
    first: Option<String>,
    next: Option<String>,
    searched: bool,
}

/// `/reports/message-events`.
pub async fn search(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let s = Search::parse(&pairs);
    let mut error = s.error.clone();
    let (mut rows, mut total, mut next) = (Vec::new(), 0u64, None);
    if error.is_none() {
        match view.api.get(&s.api_path()).await {
            Ok(resp) => {
                let window = qs([("from", s.from.as_str()), ("to", s.to.as_str())]);
                rows = resp["results"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .map(|e| row(e, &window))
                    .collect();
                total = resp["total_count"].as_u64().unwrap_or(0);
                next = next_cursor(&resp);
            }
            Err(f) if f.status == StatusCode::BAD_REQUEST => error = Some(f.message),
            Err(f) => return view.failure(f, PAGE),
        }
    }
    let first_index = (s.page - 1) * s.per_page + 1;
    let shown = if rows.is_empty() {
        String::new()
    } else {
        format!(
            "{}–{}",
            format::int(first_index as i64),
            format::int((first_index + rows.len() - 1) as i64)
        )
    };
    let page = EventsPage {
        chrome: view.chrome("Events", PAGE),
        ranges: [
            ("1h", "Last hour"),
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("10d", "Last 10 days"),
            ("custom", "Custom (UTC)"),
        ]
        .into_iter()
        .map(|(v, l)| (v, l, v == s.range))
        .collect(),
        from_input: s.from_input.clone(),
        to_input: s.to_input.clone(),
        types: TYPES.iter().map(|t| (*t, s.types.contains(t))).collect(),
        filters: FILTERS
            .iter()
            .map(|(f, l, hint)| {
                (
                    *f,
                    *l,
                    *hint,
                    s.filters
                        .iter()
                        .find(|(k, _)| k == f)
                        .map_or(String::new(), |(_, v)| v.clone()),
                )
            })
            .collect(),
        per_pages: [25, 100, 1000]
            .into_iter()
            .map(|n| (n, n == s.per_page))
            .collect(),
        error,
        total: format::int(total as i64),
        shown,
        rows,
        first: (s.page > 1).then(|| format!("{PAGE}?{}", s.page_qs(None, 1))),
        next: next.map(|c| format!("{PAGE}?{}", s.page_qs(Some(&c), s.page + 1))),
        searched: !s.types.is_empty() || !s.filters.is_empty(),
    };
    web::html(StatusCode::OK, &page)
}

/// One event of the message's history.
pub struct HistoryItem {
    pub time: String,
    pub kind: String,
    pub detail: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "signals/event.html")]
struct EventPage {
    chrome: Chrome,
    back: String,
    event: Option<EventRow>,
    facts: Vec<(&'static str, String)>,
    json: String,
    history: Vec<HistoryItem>,
    message_id: String,
}

#[derive(serde::Deserialize)]
pub struct Window {
    from: Option<String>,
    to: Option<String>,
}

/// `/reports/message-events/{event_id}`: the event's JSON and its message's other events.
pub async fn detail(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(w): Query<Window>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let now = jiff::Timestamp::now();
    let from = w.from.unwrap_or_else(|| {
        api_time(
            &now.checked_sub(jiff::SignedDuration::from_hours(24 * 90))
                .unwrap_or(now),
        )
    });
    let to = w.to.unwrap_or_else(|| {
        api_time(
            &now.checked_add(jiff::SignedDuration::from_secs(60))
                .unwrap_or(now),
        )
    });
    let window = qs([("from", from.as_str()), ("to", to.as_str())]);
    let resp = match view
        .api
        .get(&format!(
            "/api/v1/events/message?{}",
            qs([
                ("event_ids", event_id.as_str()),
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("per_page", "1"),
            ])
        ))
        .await
    {
        Ok(r) => r,
        Err(f) => return view.failure(f, PAGE),
    };
    let Some(e) = resp["results"].get(0).cloned() else {
        let chrome = view.chrome("Event not found", PAGE);
        return web::error_page(
            chrome,
            StatusCode::NOT_FOUND,
            "No such event in this window",
            format!(
                "Event {event_id} is not among the events between {from} and {to}. Events \
                 are kept for the service's event-retention (10 days by default)."
            ),
            Some(("Back to the search".into(), PAGE.into())),
        );
    };
    let message_id = text(&e["message_id"]);
    let mut history = Vec::new();
    if !message_id.is_empty() {
        if let Ok(h) = view
            .api
            .get(&format!(
                "/api/v1/events/message?{}",
                qs([
                    ("message_ids", message_id.as_str()),
                    ("from", from.as_str()),
                    ("to", to.as_str()),
                    ("per_page", "100"),
                ])
            ))
            .await
        {
            let mut items: Vec<&Value> = h["results"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            items.reverse();
            history = items
                .into_iter()
                .map(|x| {
                    let r = row(x, &window);
                    HistoryItem {
                        current: x["event_id"] == e["event_id"],
                        time: r.time,
                        kind: r.kind,
                        detail: r.detail,
                        href: r.href,
                    }
                })
                .collect();
        }
    }
    let facts = [
        ("Event id", "event_id"),
        ("Message id", "message_id"),
        ("Recipient", "rcpt_to"),
        ("Campaign", "campaign_id"),
        ("Subject", "subject"),
        ("Subaccount", "subaccount_id"),
        ("IP pool", "ip_pool"),
        ("Sending IP", "sending_ip"),
        ("Sending domain", "sending_domain"),
        ("Mailbox provider", "mailbox_provider"),
        ("Bounce class", "bounce_class"),
        ("Reason", "reason"),
    ]
    .into_iter()
    .map(|(label, k)| (label, text(&e[k])))
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let page = EventPage {
        chrome: view.chrome(format!("Event {event_id}"), PAGE),
        back: format!("{PAGE}?range=10d"),
        json: serde_json::to_string_pretty(&e).unwrap_or_default(),
        event: Some(row(&e, &window)),
        facts,
        history,
        message_id,
    };
    web::html(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_the_apis_query() {
        let s = Search::parse(&pairs(&[
            ("range", "custom"),
            ("from", "2026-12-01T10:00"),
            ("to", "2026-12-02T10:00"),
            ("events", "bounce"),
            ("events", "delay"),
            ("campaigns", "spring-sale"),
            ("per_page", "100"),
        ]));
        assert_eq!(
            s.api_path(),
            "/api/v1/events/message?from=2026-12-01T10%3A00%3A00Z&to=2026-12-02T10%3A00%3A00Z\
             &events=bounce%2Cdelay&campaigns=spring-sale&per_page=100"
        );
        let next = s.page_qs(Some("abc"), 2);
        assert!(
            next.contains("cursor=abc") && next.contains("page=2") && next.contains("events=delay")
        );
        assert!(Search::parse(&pairs(&[("range", "custom")]))
            .error
            .is_some());
    }

    #[test]
    fn rows_say_why_mail_failed() {
        let e = serde_json::json!({"type": "bounce", "bounce_class": "10", "reason": "550 5.1.1 unknown"});
        assert_eq!(detail_of(&e), "class 10 · 550 5.1.1 unknown");
    }
}
