//! The Health Score page and its drill-downs: the score with its band, the score over time,
//! what each component added or took away each day (click one to chart its raw rate), the
//! two recommendations in plain words, the formula with every number of the current day,
//! and the facet table.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use petrel_signals_model::health::{Component, BASELINE, COMPONENTS};
use serde_json::Value;

use super::common::{
    self, current_day, day_labels, facet, facet_table, history, num, partial_last, Cell,
    ColumnSpec, DayRange, FacetTable, ReportQuery, TableSpec, FACETS,
};
use super::{Pages, View, Viewer};
use crate::chart::{self, BarChart, Line, LineChart, Stack};
use crate::format::{self, Band};
use crate::web::{self, qs, Chrome};

const PAGE: &str = "/signals/health-score";

/// A component's weight in the current day's score, with what the page says about it.
pub struct ComponentRow {
    pub name: &'static str,
    pub class: String,
    pub rate: String,
    pub points: String,
    pub points_class: &'static str,
    pub max: String,
    pub saturation: String,
    pub how: &'static str,
    pub href: String,
    pub current: bool,
}

/// One of the two recommendations.
pub struct Recommendation {
    pub title: &'static str,
    pub rate: String,
    pub points: String,
    pub advice: &'static str,
}

/// A day of the score table (the chart's data for screen readers and scripts).
pub struct DayRow {
    pub day: String,
    pub score: String,
    pub band: &'static str,
    pub injections: String,
}

/// The chart of one component's raw rate.
pub struct ComponentChart {
    pub name: &'static str,
    pub how: &'static str,
    pub svg: String,
}

/// Everything about one row's score (the whole account, or one facet value).
pub struct ScorePanel {
    pub score: String,
    pub score_exact: String,
    pub band_label: &'static str,
    pub band_class: &'static str,
    pub day: String,
    pub injections: String,
    pub wow: String,
    pub wow_class: &'static str,
    pub average: String,
    pub score_chart: String,
    pub days: Vec<DayRow>,
    pub recommendations: Vec<Recommendation>,
    pub components: Vec<ComponentRow>,
    pub sum_line: String,
    /// `sum_line` after the score: ` = 70.0 baseline − 3.1 hard bounces …`.
    pub sum_rest: String,
    pub weights_chart: String,
    pub component: Option<ComponentChart>,
    pub baseline: String,
}

#[derive(Template)]
#[template(path = "signals/health.html")]
struct HealthPage {
    chrome: Chrome,
    heading: String,
    subheading: String,
    back: Option<(String, String)>,
    range: DayRange,
    caption: String,
    hidden: Vec<(&'static str, String)>,
    panel: Option<ScorePanel>,
    empty: String,
    table: Option<FacetTable>,
    onwards: Vec<(String, String)>,
    error: Option<String>,
}

fn meta(name: &str) -> Option<(usize, &'static Component)> {
    COMPONENTS.iter().enumerate().find(|(_, c)| c.name == name)
}

/// What a person can do about a component that is pulling the score down.
fn advice(name: &str) -> (&'static str, &'static str) {
    match name {
        "List Quality" => (
            "Clean up the list",
            "Role addresses (info@, sales@ …) and misspelled domains (gmial.com) reach no \
             person who asked for the mail. Remove role accounts and correct or drop typo \
             domains before sending; confirm new sign-ups.",
        ),
        "Hard Bounces" => (
            "Stop mailing addresses that do not exist",
            "These recipients' servers said the address is unknown. Suppress them after the \
             first hard bounce, validate addresses where people sign up, and do not send to \
             old lists without asking again.",
        ),
        "Block Bounces" => (
            "Find out why mail is blocked",
            "Receiving servers refused mail because of your IP's or domain's reputation or a \
             blocklist. Read the block reasons in the Summary report, check the lists they \
             name, slow down to those providers, and make sure SPF, DKIM and DMARC pass.",
        ),
        "Complaints" => (
            "Fewer people should mark you as spam",
            "Recipients pressed “report spam”. Mail only people who asked, make the \
             unsubscribe link easy to find and honour it at once, and send less often to \
             those who do not open.",
        ),
        "Transient Failures" => (
            "Ease off where mail is deferred",
            "Messages were deferred on their first attempt (throttling, greylisting). Spread \
             sending over the day, respect providers' limits (max-smtp-out, max-msg-rate) and \
             warm up new IPs gradually.",
        ),
        "Other bounces" => (
            "Look at the other bounces",
            "Mail bounced as soft, undetermined or administrative (mailbox full, message too \
             large, policy). The bounce reason table of the Summary report lists them.",
        ),
        "eng cohorts: unengaged" => (
            "Stop mailing people who never engage",
            "Much of the mail went to recipients who never opened or clicked (or not for a \
             year). Send them a re-engagement message, then suppress those who stay silent.",
        ),
        "Spam Trap Hits" => (
            "Remove spam-trap addresses",
            "Mail went to spam traps or typo domains: addresses no person reads. Never buy or \
             rent lists, fix typo domains, and retire addresses that never engage.",
        ),
        "Suppression Hits" => (
            "Stop injecting suppressed recipients",
            "petrel refused recipients on its suppression list. Remove unsubscribed and \
             bounced addresses in the system that sends, so they are not injected at all.",
        ),
        "Unsubscribes" => (
            "Fewer people should need to leave",
            "Recipients unsubscribed. Check how often and what you send; offer less mail \
             instead of none.",
        ),
        "eng cohorts: new, 14-day" => (
            "Mail more people who engage",
            "Little mail went to new or recently engaged recipients.",
        ),
        _ => (
            "Raise engagement",
            "Few of the messages of the previous days were opened or clicked.",
        ),
    }
}

fn weights_of(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The score panel of one API row, with `link` building this page's URL with more pairs.
fn panel(row: &Value, component: Option<&str>, link: &dyn Fn(&str) -> String) -> ScorePanel {
    let score = num(&row["current_health_score"]).unwrap_or(0.0);
    let band = Band::of(score);
    let hist = history(row);
    let labels = day_labels(row);
    let partial = partial_last(row);
    let scores: Vec<Option<f64>> = hist.iter().map(|h| num(&h["health_score"])).collect();
    let known: Vec<f64> = scores.iter().flatten().copied().collect();
    let average = if known.is_empty() {
        "–".into()
    } else {
        format::score(known.iter().sum::<f64>() / known.len() as f64)
    };
    let score_chart = LineChart {
        label: "Health score per day, 0 to 100; below 55 is bad, 80 and above is good".into(),
        x: labels.clone(),
        lines: vec![Line {
            name: "Health score".into(),
            class: "score".into(),
            values: scores.iter().map(|s| s.map(|v| v * 100.0)).collect(),
        }],
        y_range: Some((0.0, 100.0, vec![0.0, 25.0, 55.0, 80.0, 100.0])),
        fmt: |v| format!("{v:.0}"),
        bands: vec![
            (0.0, 55.0, "bad"),
            (55.0, 80.0, "warn"),
            (80.0, 100.0, "good"),
        ],
        partial_last: partial,
        size: (720.0, 220.0),
    }
    .svg();
    let days = hist
        .iter()
        .zip(&scores)
        .map(|(h, s)| DayRow {
            day: h["dt"].as_str().unwrap_or("").to_string(),
            score: s.map_or("–".into(), format::score),
            band: s.map_or("", |s| Band::of(s).class()),
            injections: format::int(common::int(&h["total_injection_count"])),
        })
        .collect();

    // The current day's components, and the two that cost the most.
    let current = weights_of(&row["current_weights"]);
    let mut worst: Vec<&Value> = current
        .iter()
        .filter(|w| num(&w["weight"]).unwrap_or(0.0) < -0.0005)
        .collect();
    worst.sort_by(|a, b| {
        num(&a["weight"])
            .unwrap_or(0.0)
            .total_cmp(&num(&b["weight"]).unwrap_or(0.0))
    });
    let recommendations = worst
        .iter()
        .take(2)
        .map(|w| {
            let name = w["weight_type"].as_str().unwrap_or("");
            let (title, advice) = advice(name);
            Recommendation {
                title,
                rate: format::pct(num(&w["weight_value"]).unwrap_or(0.0)),
                points: format::points(num(&w["weight"]).unwrap_or(0.0)),
                advice,
            }
        })
        .collect();
    let chosen = component
        .filter(|c| meta(c).is_some())
        .map(str::to_string)
        .or_else(|| {
            worst
                .first()
                .and_then(|w| w["weight_type"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| COMPONENTS[1].name.to_string());
    let components: Vec<ComponentRow> = current
        .iter()
        .filter_map(|w| {
            let name = w["weight_type"].as_str()?;
            let (i, m) = meta(name)?;
            let weight = num(&w["weight"]).unwrap_or(0.0);
            Some(ComponentRow {
                name: m.name,
                class: format!("s{i}"),
                rate: format::pct(num(&w["weight_value"]).unwrap_or(0.0)),
                points: format::points(weight),
                points_class: if weight < -0.0005 {
                    "neg"
                } else if weight > 0.0005 {
                    "pos"
                } else {
                    "zero"
                },
                max: format!(
                    "{}{:.0}",
                    if m.sign < 0.0 { "−" } else { "+" },
                    m.max_effect * 100.0
                ),
                saturation: format::pct(m.saturation),
                how: m.rate,
                href: link(&qs([("component", m.name)])) + "#component",
                current: m.name == chosen,
            })
        })
        .collect();
    let mut sum_line = format!(
        "{} = {} baseline",
        format::score_exact(score),
        format::score_exact(BASELINE)
    );
    for w in current {
        let weight = num(&w["weight"]).unwrap_or(0.0);
        if weight.abs() >= 0.0005 {
            sum_line.push_str(&format!(
                " {} {:.1} {}",
                if weight < 0.0 { "−" } else { "+" },
                weight.abs() * 100.0,
                w["weight_type"].as_str().unwrap_or("").to_lowercase()
            ));
        }
    }
    let raw_total = BASELINE
        + current
            .iter()
            .filter_map(|w| num(&w["weight"]))
            .sum::<f64>();
    if !(0.0..=1.0).contains(&raw_total) {
        sum_line.push_str(" (kept within 0–100)");
    }

    // What each component added or took away, per day.
    let mut stacks = Vec::new();
    for (i, c) in COMPONENTS.iter().enumerate() {
        let mut values = Vec::with_capacity(hist.len());
        let mut notes = Vec::with_capacity(hist.len());
        for h in hist {
            let w = weights_of(&h["weights"])
                .iter()
                .find(|w| w["weight_type"].as_str() == Some(c.name));
            values.push(w.and_then(|w| num(&w["weight"])).unwrap_or(0.0) * 100.0);
            notes.push(
                w.and_then(|w| num(&w["weight_value"]))
                    .map_or(String::new(), |r| {
                        format!(" points (rate {})", format::pct(r))
                    }),
            );
        }
        if values.iter().any(|v| v.abs() >= 0.05) {
            stacks.push(Stack {
                name: c.name.to_string(),
                class: format!("s{i}"),
                values,
                notes,
            });
        }
    }
    let weights_chart = BarChart {
        label: "What each component added to or took from the score, per day, in points".into(),
        x: labels.clone(),
        stacks,
        fmt: |v| {
            if v > 0.0 {
                format!("+{v:.1}")
            } else {
                format!("{v:.1}")
            }
        },
        y_range: None,
        partial_last: partial,
        size: (560.0, 250.0),
    }
    .svg();
    let component = meta(&chosen).map(|(i, m)| {
        let values = hist
            .iter()
            .map(|h| {
                weights_of(&h["weights"])
                    .iter()
                    .find(|w| w["weight_type"].as_str() == Some(m.name))
                    .and_then(|w| num(&w["weight_value"]))
            })
            .collect();
        ComponentChart {
            name: m.name,
            how: m.rate,
            svg: LineChart {
                label: format!("{} per day: {}", m.name, m.rate),
                x: labels.clone(),
                lines: vec![Line {
                    name: m.name.to_string(),
                    class: format!("s{i}"),
                    values,
                }],
                y_range: None,
                fmt: format::pct,
                bands: vec![],
                partial_last: partial,
                size: (560.0, 250.0),
            }
            .svg(),
        }
    });
    let wow = num(&row["WoW"]);
    ScorePanel {
        score: format::score(score),
        score_exact: format::score_exact(score),
        band_label: band.label(),
        band_class: band.class(),
        day: current_day(row),
        injections: format::int(common::int(&row["current_total_injection_count"])),
        wow: format::change(wow),
        wow_class: format::change_class(wow, true),
        average,
        score_chart,
        days,
        recommendations,
        components,
        sum_rest: sum_line
            .split_once(' ')
            .map_or(String::new(), |(_, rest)| format!(" {rest}")),
        sum_line,
        weights_chart,
        component,
        baseline: format::score_exact(BASELINE),
    }
}

fn table_spec() -> TableSpec {
    TableSpec {
        report: "health-score",
        page: PAGE,
        facets: FACETS.iter().collect(),
        default_order: "total_injection_count",
        spark_label: "Daily score",
        spark: Box::new(|row| {
            let values: Vec<Option<f64>> = history(row)
                .iter()
                .map(|h| num(&h["health_score"]))
                .collect();
            let last = num(&row["current_health_score"]).map_or("", |s| Band::of(s).class());
            chart::sparkline(&values, Some((0.0, 1.0)), "Health score per day", last)
        }),
        columns: vec![
            ColumnSpec {
                label: "Score",
                numeric: true,
                help: "Health score of the latest day with injections (0–100)",
                order_by: Some("health_score"),
                cell: |row| {
                    let s = num(&row["current_health_score"]).unwrap_or(0.0);
                    let band = Band::of(s);
                    Cell {
                        text: format::score(s),
                        class: format!("num score-cell {}", band.class()),
                        title: format!("{} on {}", band.label(), current_day(row)),
                    }
                },
            },
            ColumnSpec {
                label: "Injections",
                numeric: true,
                help: "Messages injected on that day",
                order_by: Some("total_injection_count"),
                cell: |row| {
                    Cell::number(format::int(common::int(
                        &row["current_total_injection_count"],
                    )))
                },
            },
            ColumnSpec {
                label: "WoW",
                numeric: true,
                help: "Week over week: change of the score against 7 days before",
                order_by: None,
                cell: |row| common::wow_cell(row, true),
            },
            ColumnSpec {
                label: "Average",
                numeric: true,
                help: "Mean of the daily scores in the range (days with injections)",
                order_by: None,
                cell: |row| {
                    let known: Vec<f64> = history(row)
                        .iter()
                        .filter_map(|h| num(&h["health_score"]))
                        .collect();
                    Cell::number(if known.is_empty() {
                        "–".into()
                    } else {
                        format::score(known.iter().sum::<f64>() / known.len() as f64)
                    })
                },
            },
            ColumnSpec {
                label: "Day",
                help: "The latest day with injections, which the score and injections describe",
                order_by: None,
                numeric: false,
                cell: |row| Cell {
                    text: current_day(row),
                    class: "day".into(),
                    title: row["current_dt"].as_str().unwrap_or("").to_string(),
                },
            },
        ],
        carry: vec![],
    }
}

fn hidden_for(q: &ReportQuery) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for (k, val) in [("facet", &q.facet), ("component", &q.component)] {
        if let Some(val) = val {
            v.push((k, val.clone()));
        }
    }
    v
}

/// Validates a custom range before asking the API, so the page can say what is wrong.
pub(super) fn range_error(range: &DayRange) -> Option<String> {
    let parse = |s: &str| s.parse::<jiff::civil::Date>().ok();
    match (parse(&range.from), parse(&range.to)) {
        (Some(f), Some(t)) => {
            let days = (t - f).get_days() + 1;
            if !(7..=90).contains(&days) {
                Some(format!(
                    "A range must span 7 to 90 days; {} – {} spans {days}.",
                    range.from, range.to
                ))
            } else {
                None
            }
        }
        _ => Some("Give both dates of a custom range (YYYY-MM-DD).".into()),
    }
}

/// `/signals/health-score`: the whole account's score and the facet table.
pub async fn overview(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let range = DayRange::of(&q);
    let error = range_error(&range);
    let mut panel_data = None;
    let mut table = None;
    if error.is_none() {
        let row =
            match common::one_row(&mut view, "health-score", &FACETS[0], "-1", &range, "").await {
                Ok(r) => r,
                Err(f) => return view.failure(f, PAGE),
            };
        let base_pairs = {
            let mut p = range.page_pairs();
            if let Some(f) = &q.facet {
                p.push(("facet", f.clone()));
            }
            p
        };
        let link = |extra: &str| {
            format!(
                "{PAGE}?{}&{extra}",
                qs(base_pairs.iter().map(|(k, v)| (*k, v.as_str())))
            )
        };
        panel_data = row.map(|r| panel(&r, q.component.as_deref(), &link));
        table = match facet_table(&mut view, &table_spec(), &q, &range).await {
            Ok(t) => Some(t),
            Err(f) => return view.failure(f, PAGE),
        };
    }
    let page = HealthPage {
        chrome: view.chrome("Health Score", PAGE),
        heading: "Health Score".into(),
        subheading: "How mailbox providers are likely to see your mail, day by day: 0–100, \
                     from bounces, complaints, traps and engagement."
            .into(),
        back: None,
        caption: range.caption(),
        hidden: hidden_for(&q),
        range,
        panel: panel_data,
        empty: "No messages were injected in these days, so there is nothing to score. The \
                score is computed per day from injections; with open tracking on, engagement \
                counts too. The Integration page shows whether event batches are arriving."
            .into(),
        table,
        onwards: vec![],
        error,
    };
    web::html(StatusCode::OK, &page)
}

/// `/signals/health-score/{facet}/{value}`: one subaccount, campaign, pool, provider or
/// sending domain.
pub async fn detail(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    Path((facet_id, value)): Path<(String, String)>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let f = facet(Some(&facet_id));
    if f.id != facet_id {
        return view.failure(
            crate::api::Failure {
                status: StatusCode::NOT_FOUND,
                message: format!("“{facet_id}” is not a Signals facet."),
                param: None,
            },
            PAGE,
        );
    }
    let range = DayRange::of(&q);
    let error = range_error(&range);
    let mut panel_data = None;
    if error.is_none() {
        let row = match common::one_row(&mut view, "health-score", f, &value, &range, "").await {
            Ok(r) => r,
            Err(fail) => return view.failure(fail, PAGE),
        };
        let self_path = format!("{PAGE}/{}/{}", f.id, web::path_segment(&value));
        let pairs = range.page_pairs();
        let link = |extra: &str| {
            format!(
                "{self_path}?{}&{extra}",
                qs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            )
        };
        panel_data = row.map(|r| panel(&r, q.component.as_deref(), &link));
    }
    let name = f.display(&value);
    let page = HealthPage {
        chrome: view.chrome(format!("Health Score · {name}"), PAGE),
        heading: name.clone(),
        subheading: format!("{} · Health Score", f.label),
        back: Some((
            format!("All {}s", f.label.to_lowercase()),
            format!(
                "{PAGE}?{}#table",
                qs(range
                    .page_pairs()
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .chain([("facet", f.id)]))
            ),
        )),
        caption: range.caption(),
        hidden: vec![],
        onwards: onwards(f, &value, &range)
            .into_iter()
            .filter(|(l, _)| l != "Health Score")
            .collect(),
        range,
        panel: panel_data,
        empty: format!(
            "{name} has no injections in these days, so there is nothing to score. Try a \
             longer range."
        ),
        table: None,
        error,
    };
    web::html(StatusCode::OK, &page)
}

/// Links from a facet value's drill-down to the same value in the other pages.
pub(super) fn onwards(f: &common::Facet, value: &str, range: &DayRange) -> Vec<(String, String)> {
    let seg = web::path_segment(value);
    let days = qs(range.page_pairs().iter().map(|(k, v)| (*k, v.as_str())));
    let mut v = vec![(
        "Health Score".to_string(),
        format!("{PAGE}/{}/{seg}?{days}", f.id),
    )];
    if f.id != "mb_provider" {
        v.push((
            "Spam Traps".into(),
            format!("/signals/spam-traps/{}/{seg}?{days}", f.id),
        ));
    }
    v.push((
        "Engagement Recency".into(),
        format!("/signals/engagement/{}/{seg}?{days}", f.id),
    ));
    if value != "-1" {
        let from = format!("{}T00:00", range.from);
        v.push((
            "Summary report".into(),
            format!(
                "/signals/analytics?{}",
                qs([
                    ("range", "custom"),
                    ("from", from.as_str()),
                    (f.filter, value)
                ])
            ),
        ));
        if f.id != "mb_provider" {
            v.push((
                "Events".into(),
                format!(
                    "/reports/message-events?{}",
                    qs([("range", "10d"), (f.filter, value)])
                ),
            ));
        }
    }
    v
}
