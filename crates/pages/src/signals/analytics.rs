//! The Summary report (`/signals/analytics`): a metric picker, group-by any Metrics API
//! facet (sending IP included), include and exclude filters, precision and time zone; the
//! totals, a chart per metric over time, the breakdown table (with CSV export) and the
//! bounce, rejection and delay reason tables and the link table.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use jiff::tz::TimeZone;
use serde_json::{json, Value};

use super::common::{int, param, text};
use super::metrics::{self, api_metrics, MetricDef, METRICS};
use super::{Pages, View, Viewer};
use crate::api::Failure;
use crate::chart::{Line, LineChart};
use crate::format;
use crate::web::{self, qs, Chrome};

const PAGE: &str = "/signals/analytics";

/// A group-by of the Metrics API: path segment, result key, label, the filter of the same
/// facet (for links that narrow the report to one row).
pub struct Group {
    pub path: &'static str,
    pub key: &'static str,
    pub label: &'static str,
    pub filter: &'static str,
}

const GROUPS: &[Group] = &[
    Group {
        path: "campaign",
        key: "campaign_id",
        label: "Campaign",
        filter: "campaigns",
    },
    Group {
        path: "sending-ip",
        key: "sending_ip",
        label: "Sending IP",
        filter: "sending_ips",
    },
    Group {
        path: "ip-pool",
        key: "ip_pool",
        label: "IP pool",
        filter: "ip_pools",
    },
    Group {
        path: "sending-domain",
        key: "sending_domain",
        label: "Sending domain",
        filter: "sending_domains",
    },
    Group {
        path: "domain",
        key: "domain",
        label: "Recipient domain",
        filter: "domains",
    },
    Group {
        path: "mailbox-provider",
        key: "mailbox_provider",
        label: "Mailbox provider",
        filter: "mailbox_providers",
    },
    Group {
        path: "mailbox-provider-region",
        key: "mailbox_provider_region",
        label: "Mailbox provider region",
        filter: "mailbox_provider_regions",
    },
    Group {
        path: "subaccount",
        key: "subaccount_id",
        label: "Subaccount",
        filter: "subaccounts",
    },
    Group {
        path: "template",
        key: "template_id",
        label: "Template",
        filter: "templates",
    },
];

/// The Metrics API's simple filters, with labels.
const FILTERS: &[(&str, &str)] = &[
    ("campaigns", "Campaign"),
    ("sending_ips", "Sending IP"),
    ("ip_pools", "IP pool"),
    ("sending_domains", "Sending domain"),
    ("domains", "Recipient domain"),
    ("mailbox_providers", "Mailbox provider"),
    ("mailbox_provider_regions", "Mailbox provider region"),
    ("subaccounts", "Subaccount"),
    ("templates", "Template"),
];

const PRECISIONS: &[&str] = &["1min", "5min", "15min", "hour", "day", "week", "month"];

/// Time zones offered in the picker (any IANA name may be typed).
const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// What the report's query string asks for.
struct Params {
    range: String,
    from: String,
    to: String,
    timezone: String,
    precision: String,
    /// `precision` left to the page: the one it chose.
    auto_precision: bool,
    metrics: Vec<&'static MetricDef>,
    group: &'static Group,
    include: Vec<(&'static str, String)>,
    exclude: Vec<(&'static str, String)>,
    order_by: Option<&'static str>,
    limit: usize,
    tab: &'static str,
    error: Option<String>,
}

fn local(t: &jiff::Zoned) -> String {
    t.strftime("%Y-%m-%dT%H:%M").to_string()
}

impl Params {
    fn parse(pairs: &[(String, String)]) -> Params {
        let mut error = None;
        let timezone = param(pairs, "timezone").unwrap_or("UTC").to_string();
        let tz = TimeZone::get(&timezone).unwrap_or_else(|_| {
            error = Some(format!(
                "“{timezone}” is not a time zone this service knows (use an IANA name such as \
                 Europe/Paris)."
            ));
            TimeZone::UTC
        });
        let range = param(pairs, "range").unwrap_or("7d").to_string();
        let now = jiff::Timestamp::now().to_zoned(tz.clone());
        let (from, to, secs) = if range == "custom" {
            let f = param(pairs, "from").unwrap_or("").to_string();
            let t = param(pairs, "to").map(str::to_string).unwrap_or_else(|| {
                local(
                    &now.checked_add(jiff::Span::new().minutes(1))
                        .unwrap_or(now.clone()),
                )
            });
            let parse = |s: &str| {
                s.parse::<jiff::civil::DateTime>()
                    .ok()
                    .and_then(|d| d.to_zoned(tz.clone()).ok())
            };
            let secs = match (parse(&f), parse(&t)) {
                (Some(a), Some(b)) => b.timestamp().as_second() - a.timestamp().as_second(),
                _ => {
                    error.get_or_insert_with(|| {
                        "Give the start and end of a custom range (date and time).".into()
                    });
                    0
                }
            };
            (f, t, secs)
        } else {
            let hours: i64 = match range.as_str() {
                "24h" => 24,
                "30d" => 30 * 24,
                "90d" => 90 * 24,
                _ => 7 * 24,
            };
            // From the start of the hour `hours` ago to the end of this minute.
            let start = now
                .checked_sub(jiff::Span::new().hours(hours))
                .ok()
                .and_then(|z| {
                    z.round(
                        jiff::ZonedRound::new()
                            .smallest(jiff::Unit::Hour)
                            .mode(jiff::RoundMode::Trunc),
                    )
                    .ok()
                })
                .unwrap_or(now.clone());
            let end = now
                .checked_add(jiff::Span::new().minutes(1))
                .unwrap_or(now.clone());
            (local(&start), local(&end), hours * 3600)
        };
        let chosen = param(pairs, "precision").filter(|p| PRECISIONS.contains(p));
        let precision = chosen.map(str::to_string).unwrap_or_else(|| {
            // Enough points for a readable chart, few enough to draw.
            if secs <= 6 * 3600 {
                "5min"
            } else if secs <= 8 * 86_400 {
                "hour"
            } else {
                "day"
            }
            .to_string()
        });
        let mut picked: Vec<&'static MetricDef> = pairs
            .iter()
            .filter(|(k, _)| k == "metric")
            .filter_map(|(_, v)| metrics::metric(v.trim()))
            .collect();
        picked.dedup_by_key(|m| m.id);
        if picked.is_empty() {
            picked = metrics::DEFAULT
                .iter()
                .filter_map(|id| metrics::metric(id))
                .collect();
        }
        let group = param(pairs, "group_by")
            .and_then(|g| GROUPS.iter().find(|x| x.path == g))
            .unwrap_or(&GROUPS[0]);
        let include = FILTERS
            .iter()
            .filter_map(|(f, _)| param(pairs, f).map(|v| (*f, v.to_string())))
            .collect();
        let exclude = FILTERS
            .iter()
            .filter_map(|(f, _)| param(pairs, &format!("not_{f}")).map(|v| (*f, v.to_string())))
            .collect();
        let needed = api_metrics(&picked);
        let order_by =
            param(pairs, "order_by").and_then(|o| needed.iter().copied().find(|m| *m == o));
        let limit = param(pairs, "limit")
            .and_then(|l| l.parse().ok())
            .filter(|l| [25, 100, 500, 1000].contains(l))
            .unwrap_or(25);
        let tab = match param(pairs, "tab") {
            Some("rejection") => "rejection",
            Some("delay") => "delay",
            Some("links") => "links",
            _ => "bounce",
        };
        Params {
            range,
            from,
            to,
            timezone,
            precision,
            auto_precision: chosen.is_none(),
            metrics: picked,
            group,
            include,
            exclude,
            order_by,
            limit,
            tab,
            error,
        }
    }

    /// The page's own query string (for links and the CSV export), with `changes` applied.
    fn page_qs(&self, changes: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(String, String)> = vec![
            ("range".into(), self.range.clone()),
            ("timezone".into(), self.timezone.clone()),
            ("group_by".into(), self.group.path.into()),
            ("limit".into(), self.limit.to_string()),
            ("tab".into(), self.tab.into()),
        ];
        if self.range == "custom" {
            pairs.push(("from".into(), self.from.clone()));
            pairs.push(("to".into(), self.to.clone()));
        }
        if !self.auto_precision {
            pairs.push(("precision".into(), self.precision.clone()));
        }
        if let Some(o) = self.order_by {
            pairs.push(("order_by".into(), o.into()));
        }
        for m in &self.metrics {
            pairs.push(("metric".into(), m.id.into()));
        }
        for (f, v) in &self.include {
            pairs.push((f.to_string(), v.clone()));
        }
        for (f, v) in &self.exclude {
            pairs.push((format!("not_{f}"), v.clone()));
        }
        for (k, v) in changes {
            pairs.retain(|(key, _)| key != k);
            if !v.is_empty() {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        qs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The Metrics API's window, zone, precision and filters: what every request shares.
    fn api_base(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("from".into(), self.from.clone()),
            ("to".into(), self.to.clone()),
            ("timezone".into(), self.timezone.clone()),
            ("precision".into(), self.precision.clone()),
        ];
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        if self.exclude.is_empty() {
            for (f, val) in &self.include {
                v.push((f.to_string(), split(val).join(",")));
            }
        } else {
            // Excluding needs the advanced filter; simple filters are then ignored by the
            // API, so the included values go into it too.
            let mut and = serde_json::Map::new();
            for (f, _) in FILTERS {
                let mut ops = serde_json::Map::new();
                if let Some((_, val)) = self.include.iter().find(|(k, _)| k == f) {
                    ops.insert("eq".into(), json!(split(val)));
                }
                if let Some((_, val)) = self.exclude.iter().find(|(k, _)| k == f) {
                    ops.insert("notEq".into(), json!(split(val)));
                }
                if !ops.is_empty() {
                    and.insert(f.to_string(), Value::Object(ops));
                }
            }
            v.push((
                "query_filters".into(),
                json!({"groupings": [{"AND": and}]}).to_string(),
            ));
        }
        v
    }

    fn api_path(&self, endpoint: &str, extra: &[(&str, String)]) -> String {
        let mut pairs = self.api_base();
        for (k, val) in extra {
            pairs.push((k.to_string(), val.clone()));
        }
        format!(
            "/api/v1/metrics/deliverability{endpoint}?{}",
            qs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        )
    }

    /// The breakdown's sort: the asked one, else the first API metric of the selection.
    fn order(&self) -> &'static str {
        self.order_by
            .unwrap_or_else(|| api_metrics(&self.metrics)[0])
    }

    fn metrics_param(&self) -> String {
        api_metrics(&self.metrics).join(",")
    }
}

/// One metric's total and chart.
pub struct MetricView {
    pub label: &'static str,
    pub total: String,
    pub formula: String,
    pub rate: bool,
    pub chart: String,
}

/// A heading of the breakdown table.
pub struct Heading {
    pub label: &'static str,
    pub title: String,
    pub sort_href: Option<String>,
    pub sorted: bool,
}

/// A row of the breakdown table.
pub struct BreakdownRow {
    pub name: String,
    pub href: String,
    pub cells: Vec<String>,
}

/// A reason or link table: headings and cells with their CSS class (`num` or `wrap`).
pub struct ReasonTable {
    pub headings: Vec<(&'static str, &'static str)>,
    pub rows: Vec<Vec<(String, &'static str)>>,
    pub empty: &'static str,
}

/// A checkbox of the picker.
pub struct Pick {
    pub id: &'static str,
    pub label: &'static str,
    pub group: &'static str,
    pub new_group: bool,
    pub checked: bool,
    pub formula: String,
}

/// A row of the filters form.
pub struct FilterRow {
    pub name: &'static str,
    pub label: &'static str,
    pub include: String,
    pub exclude: String,
}

#[derive(Template)]
#[template(path = "signals/analytics.html")]
struct AnalyticsPage {
    chrome: Chrome,
    ranges: Vec<(&'static str, &'static str, bool)>,
    from: String,
    to: String,
    timezone: String,
    zones: &'static [&'static str],
    precision: String,
    auto_precision: bool,
    precisions: Vec<(&'static str, bool)>,
    groups: Vec<(&'static str, &'static str, bool)>,
    limits: Vec<(usize, bool)>,
    picks: Vec<Pick>,
    filters: Vec<FilterRow>,
    filters_open: bool,
    active_filters: Vec<String>,
    hidden: Vec<(&'static str, String)>,
    error: Option<String>,
    totals: Vec<MetricView>,
    window: String,
    group_label: &'static str,
    headings: Vec<Heading>,
    rows: Vec<BreakdownRow>,
    csv_href: String,
    tabs: Vec<(&'static str, String, bool)>,
    reasons: Option<ReasonTable>,
    has_data: bool,
}

fn reason_table(p: &Params, resp: &Value) -> ReasonTable {
    let rows = resp["results"].as_array().cloned().unwrap_or_default();
    let (w, t, n) = ("wrap", "", "num");
    // Each column: heading, class, and how a row fills it.
    type Col = (&'static str, &'static str, fn(&Value) -> String);
    let count = |k: &'static str| -> fn(&Value) -> String {
        match k {
            "count_rejected" => |r| format::int(int(&r["count_rejected"])),
            "count_delayed" => |r| format::int(int(&r["count_delayed"])),
            "count_delayed_first" => |r| format::int(int(&r["count_delayed_first"])),
            "count_clicked" => |r| format::int(int(&r["count_clicked"])),
            "count_raw_clicked" => |r| format::int(int(&r["count_raw_clicked"])),
            "count_bounce" => |r| format::int(int(&r["count_bounce"])),
            "count_inband_bounce" => |r| format::int(int(&r["count_inband_bounce"])),
            _ => |r| format::int(int(&r["count_outofband_bounce"])),
        }
    };
    let (cols, empty): (Vec<Col>, &'static str) = match p.tab {
        "rejection" => (
            vec![
                ("Reason", w, |r| text(&r["reason"])),
                ("Type", t, |r| text(&r["rejection_type"])),
                ("Rejected", n, count("count_rejected")),
            ],
            "Nothing was rejected in this window.",
        ),
        "delay" => (
            vec![
                ("Reason", w, |r| text(&r["reason"])),
                ("Delayed", n, count("count_delayed")),
                ("Delayed on 1st attempt", n, count("count_delayed_first")),
            ],
            "No delivery was deferred in this window.",
        ),
        "links" => (
            vec![
                ("Link", w, |r| text(&r["link_name"])),
                ("Clicks", n, count("count_clicked")),
                ("Unique link clicks", n, count("count_raw_clicked")),
            ],
            "No tracked link was clicked in this window.",
        ),
        _ => (
            vec![
                ("Reason", w, |r| text(&r["reason"])),
                ("Classification", t, |r| {
                    format!(
                        "{} ({})",
                        text(&r["bounce_class_name"]),
                        text(&r["classification_id"])
                    )
                }),
                ("Category", t, |r| text(&r["bounce_category_name"])),
                ("Bounces", n, count("count_bounce")),
                ("In-band", n, count("count_inband_bounce")),
                ("Out-of-band", n, count("count_outofband_bounce")),
            ],
            "Nothing bounced in this window.",
        ),
    };
    ReasonTable {
        headings: cols
            .iter()
            .map(|(h, c, _)| (*h, if *c == n { n } else { t }))
            .collect(),
        rows: rows
            .iter()
            .map(|r| cols.iter().map(|(_, c, f)| (f(r), *c)).collect())
            .collect(),
        empty,
    }
}

fn tab_request(p: &Params) -> String {
    let l = ("limit", "25".to_string());
    match p.tab {
        "rejection" => p.api_path("/rejection-reason", &[l]),
        "delay" => p.api_path("/delay-reason", &[l]),
        "links" => p.api_path(
            "/link-name",
            &[("metrics", "count_clicked,count_raw_clicked".into()), l],
        ),
        _ => p.api_path(
            "/bounce-reason",
            &[
                (
                    "metrics",
                    "count_bounce,count_inband_bounce,count_outofband_bounce".into(),
                ),
                l,
            ],
        ),
    }
}

/// A facet value of a breakdown row as text (subaccounts are numbers).
fn group_value(g: &Group, row: &Value) -> String {
    text(&row[g.key])
}

/// `/signals/analytics`.
pub async fn page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let p = Params::parse(&pairs);
    let mut error = p.error.clone();
    let (mut totals, mut rows, mut reasons, mut window, mut has_data) =
        (Vec::new(), Vec::new(), None, String::new(), false);
    if error.is_none() {
        match load(&mut view, &p).await {
            Ok(l) => {
                totals = l.0;
                rows = l.1;
                reasons = Some(l.2);
                window = l.3;
                has_data = l.4;
            }
            Err(f) if f.status == StatusCode::BAD_REQUEST => {
                error = Some(match &f.param {
                    Some(param) => format!("{} (parameter “{param}”)", f.message),
                    None => f.message,
                });
            }
            Err(f) => return view.failure(f, PAGE),
        }
    }
    let needed = api_metrics(&p.metrics);
    let headings = p
        .metrics
        .iter()
        .map(|m| {
            let sortable = m.of.1.is_none() && needed.contains(&m.id);
            Heading {
                label: m.label,
                title: m.formula(),
                sort_href: sortable
                    .then(|| format!("{PAGE}?{}#breakdown", p.page_qs(&[("order_by", m.id)]))),
                sorted: p.order_by.unwrap_or(needed[0]) == m.id,
            }
        })
        .collect();
    let mut last_group = "";
    let picks = METRICS
        .iter()
        .map(|m| {
            let new_group = m.group != last_group;
            last_group = m.group;
            Pick {
                id: m.id,
                label: m.label,
                group: m.group,
                new_group,
                checked: p.metrics.iter().any(|x| x.id == m.id),
                formula: m.formula(),
            }
        })
        .collect();
    let filters = FILTERS
        .iter()
        .map(|(f, label)| FilterRow {
            name: f,
            label,
            include: p
                .include
                .iter()
                .find(|(k, _)| k == f)
                .map_or(String::new(), |(_, v)| v.clone()),
            exclude: p
                .exclude
                .iter()
                .find(|(k, _)| k == f)
                .map_or(String::new(), |(_, v)| v.clone()),
        })
        .collect();
    let label_of = |f: &str| {
        FILTERS
            .iter()
            .find(|(k, _)| *k == f)
            .map_or(f.to_string(), |(_, l)| l.to_string())
    };
    let active_filters = p
        .include
        .iter()
        .map(|(f, v)| format!("{} is {v}", label_of(f)))
        .chain(
            p.exclude
                .iter()
                .map(|(f, v)| format!("{} is not {v}", label_of(f))),
        )
        .collect::<Vec<_>>();
    let tabs = [
        ("bounce", "Bounce reasons"),
        ("rejection", "Rejection reasons"),
        ("delay", "Delay reasons"),
        ("links", "Links"),
    ]
    .into_iter()
    .map(|(id, label)| {
        (
            label,
            format!("{PAGE}?{}#reasons", p.page_qs(&[("tab", id)])),
            id == p.tab,
        )
    })
    .collect();
    let mut hidden = vec![("tab", p.tab.to_string())];
    if let Some(o) = p.order_by {
        hidden.push(("order_by", o.to_string()));
    }
    let page = AnalyticsPage {
        chrome: view.chrome("Summary Report", PAGE),
        ranges: [
            ("24h", "Last 24 hours"),
            ("7d", "Last 7 days"),
            ("30d", "Last 30 days"),
            ("90d", "Last 90 days"),
            ("custom", "Custom"),
        ]
        .into_iter()
        .map(|(v, l)| (v, l, v == p.range))
        .collect(),
        from: p.from.clone(),
        to: p.to.clone(),
        timezone: p.timezone.clone(),
        zones: ZONES,
        precision: p.precision.clone(),
        auto_precision: p.auto_precision,
        precisions: PRECISIONS
            .iter()
            .map(|pr| (*pr, !p.auto_precision && *pr == p.precision))
            .collect(),
        groups: GROUPS
            .iter()
            .map(|g| (g.path, g.label, g.path == p.group.path))
            .collect(),
        limits: [25, 100, 500, 1000]
            .into_iter()
            .map(|l| (l, l == p.limit))
            .collect(),
        picks,
        filters_open: !active_filters.is_empty(),
        filters,
        active_filters,
        hidden,
        error,
        totals,
        window,
        group_label: p.group.label,
        headings,
        rows,
        csv_href: format!("{PAGE}/export.csv?{}", p.page_qs(&[])),
        tabs,
        reasons,
        has_data,
    };
    web::html(StatusCode::OK, &page)
}

type Loaded = (
    Vec<MetricView>,
    Vec<BreakdownRow>,
    ReasonTable,
    String,
    bool,
);

async fn load(view: &mut View, p: &Params) -> Result<Loaded, Failure> {
    let metrics = p.metrics_param();
    let summary = view
        .api
        .get(&p.api_path("", &[("metrics", metrics.clone())]))
        .await?;
    let series = view
        .api
        .get(&p.api_path("/time-series", &[("metrics", metrics.clone())]))
        .await?;
    let total_row = &summary["results"][0];
    let buckets = series["results"].as_array().cloned().unwrap_or_default();
    let daily = matches!(p.precision.as_str(), "day" | "week" | "month");
    let labels: Vec<String> = buckets
        .iter()
        .map(|b| format::bucket_label(b["ts"].as_str().unwrap_or(""), daily))
        .collect();
    let has_data = total_row
        .as_object()
        .is_some_and(|o| o.values().any(|v| v.as_f64().unwrap_or(0.0) != 0.0));
    let totals = p
        .metrics
        .iter()
        .enumerate()
        .map(|(i, m)| MetricView {
            label: m.label,
            total: m.show(m.value(total_row)),
            formula: m.formula(),
            rate: m.of.1.is_some(),
            chart: LineChart {
                label: format!("{} per {}", m.label, p.precision),
                x: labels.clone(),
                lines: vec![Line {
                    name: m.label.to_string(),
                    class: format!("s{}", [10, 6, 9, 1, 2, 4, 8, 3, 0, 11, 5, 7][i % 12]),
                    values: buckets.iter().map(|b| m.value(b)).collect(),
                }],
                y_range: None,
                fmt: match m.kind {
                    metrics::Kind::Rate => format::pct,
                    metrics::Kind::Millis => format::duration_ms,
                    metrics::Kind::Bytes => format::bytes,
                    metrics::Kind::Count => |v| format::int(v.round() as i64),
                },
                bands: vec![],
                partial_last: false,
                size: (560.0, 200.0),
            }
            .svg(),
        })
        .collect();
    let order = p.order().to_string();
    let breakdown = view
        .api
        .get(&p.api_path(
            &format!("/{}", p.group.path),
            &[
                ("metrics", metrics),
                ("limit", p.limit.to_string()),
                ("order_by", order),
            ],
        ))
        .await?;
    let rows = breakdown["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|r| {
            let value = group_value(p.group, r);
            BreakdownRow {
                href: format!("{PAGE}?{}", p.page_qs(&[(p.group.filter, value.as_str())])),
                name: value,
                cells: p.metrics.iter().map(|m| m.show(m.value(r))).collect(),
            }
        })
        .collect();
    let reasons = reason_table(p, &view.api.get(&tab_request(p)).await?);
    let window = format!(
        "{} to {} ({}, {} precision)",
        p.from.replace('T', " "),
        p.to.replace('T', " "),
        p.timezone,
        p.precision
    );
    Ok((totals, rows, reasons, window, has_data))
}

/// `/signals/analytics/export.csv`: the breakdown table as CSV (up to 10,000 rows, the
/// API's limit), with every selected metric; counts exactly as the API gives them.
pub async fn export_csv(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let p = Params::parse(&pairs);
    if let Some(e) = p.error {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    let order = p.order().to_string();
    let resp = match view
        .api
        .get(&p.api_path(
            &format!("/{}", p.group.path),
            &[
                ("metrics", p.metrics_param()),
                ("limit", "10000".into()),
                ("order_by", order),
            ],
        ))
        .await
    {
        Ok(r) => r,
        Err(f) => return (f.status, f.message).into_response(),
    };
    let mut out = String::new();
    let mut head = vec![p.group.key.to_string()];
    head.extend(p.metrics.iter().map(|m| m.id.to_string()));
    out.push_str(&csv_line(&head));
    for r in resp["results"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let mut line = vec![group_value(p.group, r)];
        line.extend(p.metrics.iter().map(|m| m.csv(m.value(r))));
        out.push_str(&csv_line(&line));
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"petrel-summary-by-{}.csv\"",
                    p.group.path
                ),
            ),
        ],
        out,
    )
        .into_response()
}

/// One RFC 4180 line: fields with commas, quotes or line breaks are quoted; a field that a
/// spreadsheet would read as a formula gets a leading apostrophe.
fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '@'])
                || (f.starts_with('-') && f.parse::<f64>().is_err())
            {
                format!("'{f}")
            } else {
                f.clone()
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
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
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(
            csv_line(&[
                "a,b".into(),
                "say \"hi\"".into(),
                "=cmd()".into(),
                "-3".into()
            ]),
            "\"a,b\",\"say \"\"hi\"\"\",'=cmd(),-3\r\n"
        );
    }

    #[test]
    fn excluding_uses_the_advanced_filter_with_the_includes() {
        let p = Params::parse(&pairs(&[
            ("campaigns", "spring, summer"),
            ("not_sending_ips", "10.0.0.1"),
        ]));
        let base = p.api_base();
        let qf = base.iter().find(|(k, _)| k == "query_filters").unwrap();
        let v: Value = serde_json::from_str(&qf.1).unwrap();
        assert_eq!(
            v["groupings"][0]["AND"]["campaigns"]["eq"],
            json!(["spring", "summer"])
        );
        assert_eq!(
            v["groupings"][0]["AND"]["sending_ips"]["notEq"],
            json!(["10.0.0.1"])
        );
        assert!(base.iter().all(|(k, _)| k != "campaigns"));
    }

    #[test]
    fn defaults_and_custom_ranges() {
        let p = Params::parse(&[]);
        assert_eq!(p.group.path, "campaign");
        assert_eq!(p.precision, "hour");
        assert_eq!(p.metrics.len(), metrics::DEFAULT.len());
        let p = Params::parse(&pairs(&[
            ("range", "custom"),
            ("from", "2026-01-01T00:00"),
            ("to", "2026-03-01T00:00"),
            ("group_by", "sending-ip"),
            ("metric", "count_sent"),
        ]));
        assert_eq!(p.precision, "day");
        assert_eq!(p.group.key, "sending_ip");
        assert!(p.error.is_none());
        assert!(p.page_qs(&[]).contains("metric=count_sent"));
        let bad = Params::parse(&pairs(&[("timezone", "Mars/Olympus")]));
        assert!(bad.error.unwrap().contains("Mars/Olympus"));
    }
}
