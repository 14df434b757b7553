//! The Signals API (`/api/v1/signals/…`, spec §4.4): daily health score, spam-trap hits and
//! engagement-recency cohorts per subaccount (`sid`, −1 = all) or per campaign, IP pool,
//! mailbox provider or sending domain. Unlike SparkPost's, the range may end today: that
//! day is reported so far and marked `partial`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use jiff::civil::Date;
use petrel_signals_model::cohort::Cohort;
use petrel_signals_model::daily::{Daily, DAY};
use petrel_signals_model::health::{self, DayInput};
use serde_json::{json, Map, Value};

use super::params::{bad, Params};
use super::{authorize, blocking, ApiError, Service};
use crate::store::{SignalsFacet, SignalsQuery};
use crate::timefmt;
use crate::Permission;

type Shared = Arc<Service>;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/signals/{report}", get(no_facet))
        .route("/api/v1/signals/{report}/{facet}", get(with_facet))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    HealthScore,
    SpamHits,
    CohortEngagement,
    /// `eng-cohort`, `unsub-cohort`, `fbl-cohort`: (suffix, which counts).
    Behaviour(&'static str),
}

fn report(name: &str) -> Option<Report> {
    Some(match name {
        "health-score" => Report::HealthScore,
        "spam-hits" => Report::SpamHits,
        "cohort-engagement" => Report::CohortEngagement,
        "eng-cohort" => Report::Behaviour("eng"),
        "unsub-cohort" => Report::Behaviour("unsub"),
        "fbl-cohort" => Report::Behaviour("fbl"),
        _ => return None,
    })
}

fn facet(name: &str) -> Option<(SignalsFacet, &'static str)> {
    Some(match name {
        "campaign_id" => (SignalsFacet::Campaign, "campaign_id"),
        "ip_pool" => (SignalsFacet::IpPool, "ip_pool"),
        "mb_provider" => (SignalsFacet::MailboxProvider, "mb_provider"),
        "sending_domain" => (SignalsFacet::SendingDomain, "sending_domain"),
        _ => return None,
    })
}

async fn no_facet(
    State(state): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let r = report(&name).ok_or(ApiError::NotFound)?;
    answer(&state, &headers, pairs, r, SignalsFacet::Subaccount, "sid").await
}

async fn with_facet(
    State(state): State<Shared>,
    Path((name, f)): Path<(String, String)>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let r = report(&name).ok_or(ApiError::NotFound)?;
    let (facet, key) = facet(&f).ok_or(ApiError::NotFound)?;
    if r == Report::SpamHits && facet == SignalsFacet::MailboxProvider {
        return Err(bad(
            "facet",
            "spam-hits has no mb_provider facet (as at SparkPost)",
        ));
    }
    answer(&state, &headers, pairs, r, facet, key).await
}

fn day_of(s: &str, param: &'static str) -> Result<i64, ApiError> {
    let d: Date = s
        .trim()
        .parse()
        .map_err(|_| bad(param, format!("{param} must be in the format YYYY-MM-DD")))?;
    let z = d
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| bad(param, format!("{param} is out of range")))?;
    Ok(z.timestamp().as_second())
}

fn dt(day: i64) -> String {
    timefmt::iso(day)[..10].to_string()
}

fn ratio(n: i64, d: i64) -> Value {
    if d > 0 {
        json!(n as f64 / d as f64)
    } else {
        Value::Null
    }
}

/// Week-over-week change of a value: (current − a week before) / a week before.
fn wow(cur: Option<f64>, prev: Option<f64>) -> Value {
    match (cur, prev) {
        (Some(c), Some(p)) if p != 0.0 => json!((c - p) / p),
        _ => Value::Null,
    }
}

struct Series<'a> {
    days: &'a BTreeMap<i64, Daily>,
}

impl Series<'_> {
    fn get(&self, day: i64) -> Daily {
        self.days.get(&day).copied().unwrap_or_default()
    }

    fn health(&self, day: i64) -> Option<health::Score> {
        let mut input = DayInput {
            day: self.get(day),
            ..DayInput::default()
        };
        for back in 1..=3 {
            let d = self.get(day - back * DAY);
            input.prev_injections += d.injections;
            input.prev_engaged += d.engaged_total();
        }
        health::score(&input)
    }
}

fn weights(s: &health::Score) -> Value {
    Value::Array(
        s.weights
            .iter()
            .map(|w| json!({"weight_type": w.weight_type, "weight": w.weight, "weight_value": w.weight_value}))
            .collect(),
    )
}

/// The per-day fields and the main value of a report for one day.
fn day_fields(r: Report, s: &Series<'_>, day: i64) -> (Map<String, Value>, Option<f64>) {
    let d = s.get(day);
    let mut m = Map::new();
    let main = match r {
        Report::HealthScore => {
            let score = s.health(day);
            m.insert(
                "health_score".into(),
                score
                    .as_ref()
                    .map_or(Value::Null, |x| json!(format!("{:.4}", x.health_score))),
            );
            m.insert("total_injection_count".into(), json!(d.injections));
            m.insert("weights".into(), score.as_ref().map_or(json!([]), weights));
            score.map(|x| x.health_score)
        }
        Report::SpamHits => {
            let hits = d.trap_hits();
            m.insert("injections".into(), json!(d.injections));
            m.insert("trap_hits".into(), json!(hits));
            m.insert("relative_trap_hits".into(), ratio(hits, d.injections));
            for (name, n) in [
                ("typo", d.trap_typo),
                ("parked", d.trap_parked),
                ("recycled", d.trap_recycled),
            ] {
                m.insert(format!("trap_hits_{name}"), json!(n));
                m.insert(format!("perc_trap_hits_{name}"), ratio(n, hits));
            }
            (d.injections > 0).then(|| hits as f64 / d.injections as f64)
        }
        Report::CohortEngagement => {
            m.insert("c_total".into(), json!(d.injections));
            for (i, c) in Cohort::ALL.iter().enumerate() {
                m.insert(format!("c_{}", c.key()), json!(d.cohort[i]));
            }
            m.insert("relative_c_14d".into(), ratio(d.cohort[1], d.injections));
            (d.injections > 0).then(|| d.cohort[1] as f64 / d.injections as f64)
        }
        Report::Behaviour(kind) => {
            let counts = match kind {
                "eng" => d.engaged,
                "unsub" => d.unsubscribed,
                _ => d.complained,
            };
            for (i, c) in Cohort::ALL.iter().enumerate() {
                m.insert(format!("c_{}_{kind}", c.key()), json!(counts[i]));
                m.insert(
                    format!("p_{}_{kind}", c.key()),
                    ratio(counts[i], d.cohort[i]),
                );
            }
            let total: i64 = counts.iter().sum();
            m.insert(format!("c_total_{kind}"), json!(total));
            m.insert(format!("p_total_{kind}"), ratio(total, d.injections));
            (d.injections > 0).then(|| total as f64 / d.injections as f64)
        }
    };
    (m, main)
}

async fn answer(
    state: &Shared,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    r: Report,
    facet: SignalsFacet,
    key: &'static str,
) -> Result<Json<Value>, ApiError> {
    authorize(state, headers, Permission::Read).await?;
    let p = Params::new(pairs)?;
    let today = timefmt::now_secs().div_euclid(DAY) * DAY;
    let to = match p.get("to") {
        Some(v) => day_of(v, "to")?,
        None => today,
    };
    let from = match p.get("from") {
        Some(v) => day_of(v, "from")?,
        None => to - 6 * DAY,
    };
    if to < from + 6 * DAY {
        return Err(bad("from", "the range from..to must span at least 7 days"));
    }
    if to > from + 89 * DAY {
        return Err(bad("from", "the range from..to may span at most 90 days"));
    }
    let subaccount = match headers.get("x-msys-subaccount") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| bad("x-msys-subaccount", "x-msys-subaccount must be an integer"))?,
        ),
    };
    let limit = p.int("limit", 1..=1000, 25)? as usize;
    let offset = p.int("offset", 0..=i64::MAX, 0)? as usize;
    let desc = match p.get("order") {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(bad("order", format!("order `{o}` is not asc or desc"))),
    };
    let filter = p.get("filter").map(str::to_lowercase);
    let q = SignalsQuery {
        from_day: from - 3 * DAY,
        to_day: to,
        facet,
        subaccount,
    };
    let rows = blocking(state, move |s| s.daily(&q)).await?;
    let mut by_value: BTreeMap<String, BTreeMap<i64, Daily>> = BTreeMap::new();
    for row in rows {
        by_value
            .entry(row.value.clone())
            .or_default()
            .entry(row.day)
            .or_default()
            .add(&row.daily);
        if facet == SignalsFacet::Subaccount && subaccount.is_none() {
            by_value
                .entry("-1".into())
                .or_default()
                .entry(row.day)
                .or_default()
                .add(&row.daily);
        }
    }
    let mut out: Vec<(Value, Value)> = Vec::new();
    for (value, days) in &by_value {
        if filter
            .as_ref()
            .is_some_and(|f| !value.to_lowercase().contains(f))
        {
            continue;
        }
        let s = Series { days };
        let mut history = Vec::new();
        let mut current = None;
        let mut day = from;
        while day <= to {
            let (mut fields, main) = day_fields(r, &s, day);
            let injections = s.get(day).injections;
            fields.insert("dt".into(), json!(dt(day)));
            if day == today {
                fields.insert("partial".into(), json!(true));
            }
            if injections > 0 {
                current = Some((day, fields.clone(), main));
            }
            history.push(Value::Object(fields));
            day += DAY;
        }
        let Some((cday, cfields, cmain)) = current else {
            continue;
        };
        let mut row = Map::new();
        let v = if key == "sid" {
            json!(value.parse::<i64>().unwrap_or(0))
        } else {
            json!(value)
        };
        row.insert(key.into(), v);
        for (k, val) in cfields {
            if k != "dt" && k != "partial" {
                row.insert(format!("current_{k}"), val);
            }
        }
        row.insert("current_dt".into(), json!(dt(cday)));
        row.insert("current_partial".into(), json!(cday == today));
        let (_, prev) = day_fields(r, &s, cday - 7 * DAY);
        row.insert("WoW".into(), wow(cmain, prev));
        row.insert("history".into(), Value::Array(history));
        let row = Value::Object(row);
        let default_order = match r {
            Report::HealthScore => "total_injection_count".to_string(),
            Report::SpamHits => "trap_hits".to_string(),
            Report::CohortEngagement => "c_14d".to_string(),
            Report::Behaviour(kind) => format!("c_total_{kind}"),
        };
        let order_by = p.get("order_by").unwrap_or(&default_order);
        let sort_key = if order_by == key || order_by == "sid" {
            row[key].clone()
        } else {
            let field = match order_by {
                "perc" => "current_relative_trap_hits".to_string(),
                other => format!("current_{other}"),
            };
            match row.get(&field) {
                Some(v) => v.clone(),
                None => {
                    return Err(bad(
                        "order_by",
                        format!("order_by `{order_by}` is not a field of this report"),
                    ))
                }
            }
        };
        out.push((sort_key, row));
    }
    let num = |v: &Value| match v {
        Value::String(s) => s.parse::<f64>().ok(),
        other => other.as_f64(),
    };
    out.sort_by(|(a, _), (b, _)| {
        let o = match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
            _ => a.to_string().cmp(&b.to_string()),
        };
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    let total = out.len();
    let data: Vec<Value> = out
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, r)| r)
        .collect();
    Ok(Json(
        json!({"results": {"total_count": total, "data": data}}),
    ))
}
