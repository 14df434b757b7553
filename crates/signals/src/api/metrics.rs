//! The Metrics API (`/api/v1/metrics/…`): SparkPost's paths, parameters, field names and
//! 400 envelope (spec §4.2, §4.3), answered from the rollups.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use jiff::tz::TimeZone;
use petrel_signals_model::bounce;
use petrel_signals_model::counters::{metric, Counters, Metric, METRICS};
use serde_json::{json, Map, Value};

use super::params::{bad, query_filters_schema, MetricsFilter, Params};
use super::timezone::{format_offset, parse_local, zone, Precision};
use super::{authorize, blocking, ApiError, Service};
use crate::store::{Facet, ReasonKind, ReasonQuery, ReasonRow, RollupQuery};
use crate::timefmt;
use crate::Permission;

type Shared = Arc<Service>;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/metrics", get(discover))
        .route("/api/v1/metrics/", get(discover))
        .route("/api/v1/metrics/deliverability", get(summary))
        .route(
            "/api/v1/metrics/deliverability/query-filters-schema",
            get(schema),
        )
        .route("/api/v1/metrics/deliverability/{group}", get(grouped))
        .route(
            "/api/v1/metrics/deliverability/{group}/domain",
            get(grouped_by_domain),
        )
        .route("/api/v1/metrics/{list}", get(value_list))
}

/// Group-by paths: (path segment, result key, facet).
const GROUPS: &[(&str, &str, Facet)] = &[
    ("domain", "domain", Facet::Domain),
    ("sending-ip", "sending_ip", Facet::SendingIp),
    ("ip-pool", "ip_pool", Facet::IpPool),
    ("sending-domain", "sending_domain", Facet::SendingDomain),
    ("subaccount", "subaccount_id", Facet::Subaccount),
    ("campaign", "campaign_id", Facet::Campaign),
    ("template", "template_id", Facet::Template),
    (
        "mailbox-provider",
        "mailbox_provider",
        Facet::MailboxProvider,
    ),
    (
        "mailbox-provider-region",
        "mailbox_provider_region",
        Facet::Region,
    ),
];

/// Value-list paths: (path segment, facet).
const LISTS: &[(&str, Facet)] = &[
    ("campaigns", Facet::Campaign),
    ("ip-pools", Facet::IpPool),
    ("sending-ips", Facet::SendingIp),
    ("sending-domains", Facet::SendingDomain),
    ("domains", Facet::Domain),
    ("templates", Facet::Template),
    ("mailbox-providers", Facet::MailboxProvider),
    ("mailbox-provider-regions", Facet::Region),
];

const BOUNCE_METRICS: &[&str] = &[
    "count_bounce",
    "count_inband_bounce",
    "count_outofband_bounce",
    "count_admin_bounce",
];

/// The time window and resolution of a request.
struct Window {
    tz: TimeZone,
    precision: Precision,
    /// Rounded, bucket-aligned, `to` exclusive.
    from: i64,
    to: i64,
}

fn window(p: &Params, from_required: bool) -> Result<Window, ApiError> {
    let tz_name = p.get("timezone").unwrap_or("UTC");
    let tz = zone(tz_name).ok_or_else(|| {
        bad(
            "timezone",
            format!("timezone `{tz_name}` is not a known time zone"),
        )
    })?;
    let fmt = "must be in the format YYYY-MM-DDTHH:MM";
    let from = match p.get("from") {
        Some(v) => parse_local(&tz, v).ok_or_else(|| bad("from", format!("from {fmt}")))?,
        None if from_required => return Err(bad("from", "from is required")),
        None => 0,
    };
    let to = match p.get("to") {
        Some(v) => parse_local(&tz, v).ok_or_else(|| bad("to", format!("to {fmt}")))?,
        None => timefmt::now_secs(),
    };
    if from >= to {
        return Err(bad("from", "from must be before to"));
    }
    let precision = match p.get("precision") {
        Some(v) => Precision::parse(v).ok_or_else(|| {
            bad(
                "precision",
                format!(
                    "precision `{v}` is not one of 1min, 5min, 15min, hour, 12hr, day, week, month"
                ),
            )
        })?,
        None => Precision::auto(to - from),
    };
    if let Some(max) = precision.max_window() {
        if to - from > max {
            return Err(bad(
                "precision",
                format!(
                    "precision {} allows at most {} between from and to",
                    precision.name(),
                    match max {
                        86_400 => "24 hours",
                        172_800 => "48 hours",
                        _ => "31 days",
                    }
                ),
            ));
        }
    }
    // Day, week and month are UTC whatever the zone (SparkPost's rule).
    let (from, to) = if precision.zoned() {
        (from, to)
    } else {
        let utc =
            |s: Option<&str>, d: i64| s.and_then(|v| parse_local(&TimeZone::UTC, v)).unwrap_or(d);
        (utc(p.get("from"), from), utc(p.get("to"), to))
    };
    Ok(Window {
        from: precision.floor(&tz, from),
        to: precision.ceil(&tz, to),
        tz: if precision.zoned() { tz } else { TimeZone::UTC },
        precision,
    })
}

/// The `metrics` parameter, each name checked against what the endpoint offers.
fn metrics_param(p: &Params, allowed: &[&str]) -> Result<Vec<&'static Metric>, ApiError> {
    let names = p.list("metrics");
    if names.is_empty() {
        return Err(bad("metrics", "metrics is required"));
    }
    names
        .iter()
        .map(|n| {
            metric(n)
                .filter(|m| allowed.is_empty() || allowed.contains(&m.name))
                .ok_or_else(|| {
                    bad(
                        "metrics",
                        format!("`{n}` is not a valid metric for this endpoint"),
                    )
                })
        })
        .collect()
}

fn limit(p: &Params) -> Result<usize, ApiError> {
    Ok(p.int("limit", 1..=10_000, 1000)? as usize)
}

async fn read_params(
    state: &Shared,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Params, ApiError> {
    authorize(state, headers, Permission::Read).await?;
    Params::new(pairs)
}

fn metric_values(metrics: &[&'static Metric], c: &Counters, row: &mut Map<String, Value>) {
    for m in metrics {
        row.insert(m.name.into(), json!((m.value)(c)));
    }
}

/// Sorts rows by `order_by` (a requested metric; default the first), descending.
fn order(rows: &mut [Value], p: &Params, metrics: &[&str]) -> Result<(), ApiError> {
    let by = match p.get("order_by") {
        Some(o) if metrics.contains(&o) => o.to_string(),
        Some(o) => {
            return Err(bad(
                "order_by",
                format!("order_by `{o}` must be one of the requested metrics"),
            ))
        }
        None => match metrics.first() {
            Some(m) => m.to_string(),
            None => return Ok(()),
        },
    };
    rows.sort_by(|a, b| b[&by].as_i64().cmp(&a[&by].as_i64()));
    Ok(())
}

/// Sums the rollups of the window `w` for the rows passing `filter`.
async fn sum_rollups(
    state: &Shared,
    w: &Window,
    filter: MetricsFilter,
    group_by: &'static [Facet],
    by_bucket: bool,
) -> Result<Vec<crate::store::RollupRow>, ApiError> {
    let (increment, from, to) = (w.precision.increment(), w.from, w.to);
    blocking(state, move |s| {
        s.rollups(&RollupQuery {
            increment,
            from,
            to,
            filter: &filter,
            group_by,
            by_bucket,
        })
    })
    .await
}

async fn discover(
    State(state): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Permission::Read).await?;
    let mut links = vec![json!({"href": "/api/v1/metrics/", "rel": "", "method": "GET"})];
    links.push(
        json!({"href": "/api/v1/metrics/deliverability", "rel": "deliverability", "method": "GET"}),
    );
    for (seg, _) in LISTS {
        links.push(json!({"href": format!("/api/v1/metrics/{seg}"), "rel": seg, "method": "GET"}));
    }
    Ok(Json(json!({"results": {}, "links": links})))
}

async fn schema(State(state): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, Permission::Read).await?;
    Ok(Json(json!({"results": query_filters_schema()})))
}

async fn summary(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let p = read_params(&state, &headers, pairs).await?;
    let metrics = metrics_param(&p, &[])?;
    let w = window(&p, true)?;
    let filter = MetricsFilter::from_params(&p)?;
    let rows = sum_rollups(&state, &w, filter, &[], false).await?;
    let mut total = Counters::default();
    for r in &rows {
        total.add(&r.counters);
    }
    let mut row = Map::new();
    metric_values(&metrics, &total, &mut row);
    let mut links = Vec::new();
    for (seg, _, _) in GROUPS {
        links.push(json!({"href": format!("/api/v1/metrics/deliverability/{seg}"), "rel": format!("deliverability/{seg}"), "method": "GET"}));
    }
    Ok(Json(
        json!({"results": [Value::Object(row)], "links": links}),
    ))
}

async fn grouped(
    State(state): State<Shared>,
    Path(group): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let p = read_params(&state, &headers, pairs).await?;
    match group.as_str() {
        "time-series" => time_series(&state, p).await,
        "bounce-reason" => reasons(&state, p, ReasonKind::Bounce, false).await,
        "bounce-classification" => bounce_classification(&state, p).await,
        "delay-reason" => reasons(&state, p, ReasonKind::Delay, false).await,
        "rejection-reason" => reasons(&state, p, ReasonKind::Rejection, false).await,
        "link-name" => reasons(&state, p, ReasonKind::Link, false).await,
        "attempt" => attempt(&state, p).await,
        other => {
            let Some((_, key, facet)) = GROUPS.iter().find(|(seg, _, _)| *seg == other) else {
                return Err(ApiError::NotFound);
            };
            by_facet(&state, p, key, *facet).await
        }
    }
}

async fn grouped_by_domain(
    State(state): State<Shared>,
    Path(group): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let p = read_params(&state, &headers, pairs).await?;
    let kind = match group.as_str() {
        "bounce-reason" => ReasonKind::Bounce,
        "delay-reason" => ReasonKind::Delay,
        "rejection-reason" => ReasonKind::Rejection,
        _ => return Err(ApiError::NotFound),
    };
    reasons(&state, p, kind, true).await
}

async fn by_facet(
    state: &Shared,
    p: Params,
    key: &'static str,
    facet: Facet,
) -> Result<Json<Value>, ApiError> {
    let metrics = metrics_param(&p, &[])?;
    let names: Vec<&str> = metrics.iter().map(|m| m.name).collect();
    let w = window(&p, true)?;
    let filter = MetricsFilter::from_params(&p)?;
    let limit = limit(&p)?;
    let rows = sum_rollups(state, &w, filter, facet_slice(facet), false).await?;
    let mut out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut row = Map::new();
            let v = r.key.first().cloned().unwrap_or_default();
            let value = if facet == Facet::Subaccount {
                json!(v.parse::<i64>().unwrap_or(0))
            } else {
                json!(v)
            };
            row.insert(key.into(), value);
            metric_values(&metrics, &r.counters, &mut row);
            Value::Object(row)
        })
        .collect();
    order(&mut out, &p, &names)?;
    out.truncate(limit);
    Ok(Json(json!({"results": out})))
}

async fn time_series(state: &Shared, p: Params) -> Result<Json<Value>, ApiError> {
    let metrics = metrics_param(&p, &[])?;
    let w = window(&p, true)?;
    let filter = MetricsFilter::from_params(&p)?;
    let rows = sum_rollups(state, &w, filter, &[], true).await?;
    let mut buckets: Vec<(i64, Counters)> = Vec::new();
    let mut t = w.from;
    while t < w.to && buckets.len() < 100_000 {
        buckets.push((t, Counters::default()));
        t = w.precision.next(&w.tz, t);
    }
    for r in rows {
        let start = w.precision.floor(&w.tz, r.bucket.unwrap_or(0));
        if let Ok(i) = buckets.binary_search_by_key(&start, |(b, _)| *b) {
            buckets[i].1.add(&r.counters);
        }
    }
    let out: Vec<Value> = buckets
        .iter()
        .map(|(b, c)| {
            let mut row = Map::new();
            metric_values(&metrics, c, &mut row);
            row.insert("ts".into(), json!(format_offset(&w.tz, *b)));
            Value::Object(row)
        })
        .collect();
    Ok(Json(json!({"results": out})))
}

async fn read_reasons(
    state: &Shared,
    p: &Params,
    kind: ReasonKind,
    by_domain: bool,
) -> Result<Vec<ReasonRow>, ApiError> {
    let w = window(p, true)?;
    let filter = MetricsFilter::from_params(p)?;
    blocking(state, move |s| {
        s.reasons(&ReasonQuery {
            kind,
            increment: w.precision.increment(),
            from: w.from,
            to: w.to,
            filter: &filter,
            by_domain,
        })
    })
    .await
}

fn bounce_class_fields(class: i64, row: &mut Map<String, Value>) {
    let c = bounce::class(u16::try_from(class).ok());
    row.insert("bounce_class_name".into(), json!(c.name));
    row.insert("bounce_class_description".into(), json!(c.description));
    row.insert("bounce_category_id".into(), json!(c.category.id()));
    row.insert("bounce_category_name".into(), json!(c.category.name()));
    row.insert("classification_id".into(), json!(c.code));
}

fn bounce_counts(metrics: &[&str], counts: [i64; 4], row: &mut Map<String, Value>) {
    for m in metrics {
        let v = match *m {
            "count_bounce" => counts[0] + counts[1],
            "count_inband_bounce" => counts[0],
            "count_outofband_bounce" => counts[1],
            _ => counts[2],
        };
        row.insert((*m).into(), json!(v));
    }
}

async fn reasons(
    state: &Shared,
    p: Params,
    kind: ReasonKind,
    by_domain: bool,
) -> Result<Json<Value>, ApiError> {
    let names: Vec<&str> = match kind {
        ReasonKind::Bounce => metrics_param(&p, BOUNCE_METRICS)?
            .iter()
            .map(|m| m.name)
            .collect(),
        ReasonKind::Link => metrics_param(&p, &["count_clicked", "count_raw_clicked"])?
            .iter()
            .map(|m| m.name)
            .collect(),
        ReasonKind::Delay => vec!["count_delayed", "count_delayed_first"],
        ReasonKind::Rejection => vec!["count_rejected"],
    };
    let limit = limit(&p)?;
    let rows = read_reasons(state, &p, kind, by_domain).await?;
    let mut out: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut row = Map::new();
            if kind == ReasonKind::Link {
                row.insert("link_name".into(), json!(r.reason));
            } else {
                row.insert("reason".into(), json!(r.reason));
            }
            if let Some(d) = r.domain {
                row.insert("domain".into(), json!(d));
            }
            match kind {
                ReasonKind::Bounce => {
                    bounce_class_fields(r.class, &mut row);
                    bounce_counts(&names, r.counts, &mut row);
                }
                ReasonKind::Delay => {
                    row.insert("count_delayed".into(), json!(r.counts[0]));
                    row.insert("count_delayed_first".into(), json!(r.counts[1]));
                }
                ReasonKind::Rejection => {
                    row.insert("count_rejected".into(), json!(r.counts[0]));
                    row.insert("rejection_category_id".into(), json!(r.class));
                    let t = match r.class {
                        1 => "Policy Rejection",
                        2 => "Generation Rejection",
                        _ => "Generation Failure",
                    };
                    row.insert("rejection_type".into(), json!(t));
                }
                ReasonKind::Link => {
                    for n in &names {
                        let v = if *n == "count_clicked" {
                            r.counts[0]
                        } else {
                            r.counts[1]
                        };
                        row.insert((*n).into(), json!(v));
                    }
                }
            }
            Value::Object(row)
        })
        .collect();
    order(&mut out, &p, &names)?;
    out.truncate(limit);
    Ok(Json(json!({"results": out})))
}

async fn bounce_classification(state: &Shared, p: Params) -> Result<Json<Value>, ApiError> {
    let names: Vec<&str> = metrics_param(&p, BOUNCE_METRICS)?
        .iter()
        .map(|m| m.name)
        .collect();
    let limit = limit(&p)?;
    let rows = read_reasons(state, &p, ReasonKind::Bounce, false).await?;
    let mut by_class: std::collections::BTreeMap<i64, [i64; 4]> = Default::default();
    for r in rows {
        let slot = by_class.entry(r.class).or_default();
        for (a, b) in slot.iter_mut().zip(r.counts) {
            *a += b;
        }
    }
    let mut out: Vec<Value> = by_class
        .into_iter()
        .map(|(class, counts)| {
            let mut row = Map::new();
            bounce_class_fields(class, &mut row);
            bounce_counts(&names, counts, &mut row);
            Value::Object(row)
        })
        .collect();
    order(&mut out, &p, &names)?;
    out.truncate(limit);
    Ok(Json(json!({"results": out})))
}

async fn attempt(state: &Shared, p: Params) -> Result<Json<Value>, ApiError> {
    let w = window(&p, true)?;
    let filter = MetricsFilter::from_params(&p)?;
    let rows = sum_rollups(state, &w, filter, &[], false).await?;
    let mut c = Counters::default();
    for r in &rows {
        c.add(&r.counters);
    }
    let out: Vec<Value> = [
        ("1", c.delivered_first),
        ("2", c.delivered_second),
        ("3+", c.delivered_subsequent - c.delivered_second),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(a, n)| json!({"attempt": a, "count_delivered": n}))
    .collect();
    Ok(Json(json!({"results": out})))
}

async fn value_list(
    State(state): State<Shared>,
    Path(list): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let Some((seg, facet)) = LISTS.iter().find(|(s, _)| *s == list) else {
        return Err(ApiError::NotFound);
    };
    let p = read_params(&state, &headers, pairs).await?;
    let w = window(&p, false)?;
    let limit = limit(&p)?;
    let needle = p.get("match").map(str::to_lowercase);
    let facet = *facet;
    let rows = blocking(&state, move |s| {
        s.rollups(&RollupQuery {
            increment: petrel_signals_model::counters::Increment::Day,
            from: petrel_signals_model::counters::Increment::Day.floor(w.from),
            to: w.to,
            filter: &MetricsFilter::none(),
            group_by: &[facet],
            by_bucket: false,
        })
    })
    .await?;
    let values: Vec<Value> = rows
        .into_iter()
        .filter(|r| !r.counters.is_zero())
        .filter_map(|r| r.key.into_iter().next())
        .filter(|v| !v.is_empty())
        .filter(|v| {
            needle
                .as_deref()
                .is_none_or(|n| v.to_lowercase().contains(n))
        })
        .take(limit)
        .map(Value::String)
        .collect();
    let mut results = Map::new();
    results.insert((*seg).into(), Value::Array(values));
    Ok(Json(json!({ "results": results })))
}

/// A facet as a one-element group-by with a static lifetime.
fn facet_slice(f: Facet) -> &'static [Facet] {
    const ALL: [Facet; 9] = Facet::ALL;
    let i = ALL.iter().position(|x| *x == f).unwrap_or(0);
    std::slice::from_ref(&FACETS[i])
}

static FACETS: [Facet; 9] = Facet::ALL;

/// Every metric name (for documentation tests).
#[allow(dead_code)]
pub(crate) fn all_metric_names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}
