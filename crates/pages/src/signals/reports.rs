//! The Spam Traps and Engagement Recency pages and their drill-downs (spec §4.5): each is
//! the report of the whole account (or of one facet value) over a range of days, above the
//! facet table.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::Value;

use super::common::{
    self, current_day, day_labels, facet, facet_table, history, num, one_row, partial_last, Cell,
    ColumnSpec, DayRange, Facet, FacetTable, ReportQuery, TableSpec, FACETS,
};
use super::health::{onwards, range_error};
use super::{Pages, View, Viewer};
use crate::api::Failure;
use crate::chart::{self, BarChart, Line, LineChart, Stack};
use crate::format;
use crate::web::{self, qs, Chrome};

const TRAPS: &str = "/signals/spam-traps";
const ENGAGEMENT: &str = "/signals/engagement";

/// How a page of these reports is headed and where it sits.
struct Frame {
    heading: String,
    subheading: String,
    back: Option<(String, String)>,
    onwards: Vec<(String, String)>,
    caption: String,
    error: Option<String>,
}

fn frame(
    page: &str,
    report_name: &str,
    about: &str,
    value: Option<(&Facet, &str)>,
    range: &DayRange,
) -> Frame {
    match value {
        None => Frame {
            heading: report_name.into(),
            subheading: about.into(),
            back: None,
            onwards: vec![],
            caption: range.caption(),
            error: range_error(range),
        },
        Some((f, v)) => Frame {
            heading: f.display(v),
            subheading: format!("{} · {report_name}", f.label),
            back: Some((
                format!("All {}s", f.label.to_lowercase()),
                format!(
                    "{page}?{}#table",
                    qs(range
                        .page_pairs()
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .chain([("facet", f.id)]))
                ),
            )),
            onwards: onwards(f, v, range)
                .into_iter()
                .filter(|(l, _)| l != report_name)
                .collect(),
            caption: range.caption(),
            error: range_error(range),
        },
    }
}

/// The facet of a drill-down path, or the page saying there is none.
fn facet_or_404(view: &View, id: &str, page: &str) -> Result<&'static Facet, Box<Response>> {
    let f = facet(Some(id));
    if f.id == id {
        Ok(f)
    } else {
        Err(Box::new(view.failure(
            Failure {
                status: StatusCode::NOT_FOUND,
                message: format!("“{id}” is not a Signals facet."),
                param: None,
            },
            page,
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Spam traps

/// SparkPost's assessment of a trap-hit share: < 0.05 % few or none, 0.05–0.1 % some,
/// 0.1–1 % large, ≥ 1 % very large.
fn trap_assessment(rel: f64) -> (&'static str, &'static str) {
    if rel < 0.0005 {
        ("Few or no trap hits", "good")
    } else if rel < 0.001 {
        ("Some trap hits", "warn")
    } else if rel < 0.01 {
        ("A large number of trap hits", "bad")
    } else {
        ("A very large number of trap hits", "bad")
    }
}

const TRAP_TYPES: [(&str, &str, &str); 3] = [
    (
        "typo",
        "Typo domains",
        "addresses at look-alike domains of big providers (gmial.com)",
    ),
    (
        "recycled",
        "Recycled",
        "old addresses turned into traps, listed in spam-trap-file",
    ),
    (
        "parked",
        "Parked domains",
        "domains with no mail service; they carry no weight in the score",
    ),
];

/// A day of the trap table.
pub struct TrapDay {
    pub day: String,
    pub injections: String,
    pub hits: String,
    pub relative: String,
    pub by_type: Vec<String>,
}

/// The spam-trap report of one row.
pub struct TrapPanel {
    pub relative: String,
    pub hits: String,
    pub injections: String,
    pub day: String,
    pub wow: String,
    pub wow_class: &'static str,
    pub assessment: &'static str,
    pub assessment_class: &'static str,
    pub chart: String,
    pub types: Vec<(String, String, &'static str)>,
    pub days: Vec<TrapDay>,
}

fn trap_panel(row: &Value, relative: bool) -> TrapPanel {
    let rel = num(&row["current_relative_trap_hits"]).unwrap_or(0.0);
    let (assessment, class) = trap_assessment(rel);
    let hist = history(row);
    let stacks = TRAP_TYPES
        .iter()
        .enumerate()
        .map(|(i, (key, name, _))| Stack {
            name: name.to_string(),
            class: ["s8", "s2", "s5"][i].into(),
            values: hist
                .iter()
                .map(|h| {
                    let n = num(&h[format!("trap_hits_{key}")]).unwrap_or(0.0);
                    let inj = num(&h["injections"]).unwrap_or(0.0);
                    match (relative, inj > 0.0) {
                        (false, _) => n,
                        (true, true) => n / inj,
                        (true, false) => 0.0,
                    }
                })
                .collect(),
            notes: hist
                .iter()
                .map(|h| {
                    format!(
                        " (of {} injections)",
                        format::int(common::int(&h["injections"]))
                    )
                })
                .collect(),
        })
        .collect();
    let chart = BarChart {
        label: if relative {
            "Trap hits per day as a share of injections, by trap type".into()
        } else {
            "Trap hits per day, by trap type".into()
        },
        x: day_labels(row),
        stacks,
        fmt: if relative {
            format::pct
        } else {
            |v| format::int(v.round() as i64)
        },
        y_range: None,
        partial_last: partial_last(row),
        size: (720.0, 230.0),
    }
    .svg();
    let wow = num(&row["WoW"]);
    TrapPanel {
        relative: format::pct(rel),
        hits: format::int(common::int(&row["current_trap_hits"])),
        injections: format::int(common::int(&row["current_injections"])),
        day: current_day(row),
        wow: format::change(wow),
        wow_class: format::change_class(wow, false),
        assessment,
        assessment_class: class,
        chart,
        types: TRAP_TYPES
            .iter()
            .enumerate()
            .map(|(i, (key, name, about))| {
                let n = common::int(&row[format!("current_trap_hits_{key}")]);
                (
                    format!("{name}: {}", format::int(n)),
                    ["s8", "s2", "s5"][i].to_string(),
                    *about,
                )
            })
            .collect(),
        days: hist
            .iter()
            .map(|h| TrapDay {
                day: h["dt"].as_str().unwrap_or("").into(),
                injections: format::int(common::int(&h["injections"])),
                hits: format::int(common::int(&h["trap_hits"])),
                relative: format::pct_opt(num(&h["relative_trap_hits"])),
                by_type: TRAP_TYPES
                    .iter()
                    .map(|(k, _, _)| format::int(common::int(&h[format!("trap_hits_{k}")])))
                    .collect(),
            })
            .collect(),
    }
}

fn traps_spec(relative: bool) -> TableSpec {
    TableSpec {
        report: "spam-hits",
        page: TRAPS,
        facets: FACETS.iter().filter(|f| f.id != "mb_provider").collect(),
        default_order: if relative { "perc" } else { "trap_hits" },
        spark_label: if relative {
            "Daily share"
        } else {
            "Daily hits"
        },
        spark: Box::new(move |row| {
            let values: Vec<Option<f64>> = history(row)
                .iter()
                .map(|h| {
                    if relative {
                        num(&h["relative_trap_hits"])
                    } else {
                        num(&h["trap_hits"])
                    }
                })
                .collect();
            let rel = num(&row["current_relative_trap_hits"]).unwrap_or(0.0);
            chart::sparkline(&values, None, "Trap hits per day", trap_assessment(rel).1)
        }),
        columns: vec![
            ColumnSpec {
                label: "Trap hits %",
                help: "Trap hits as a share of the day's injections",
                order_by: Some("perc"),
                numeric: true,
                cell: |row| {
                    let rel = num(&row["current_relative_trap_hits"]).unwrap_or(0.0);
                    let (a, class) = trap_assessment(rel);
                    Cell {
                        text: format::pct(rel),
                        class: format!("num score-cell {class}"),
                        title: a.into(),
                    }
                },
            },
            ColumnSpec {
                label: "Trap hits",
                help: "Injections to spam traps on that day",
                order_by: Some("trap_hits"),
                numeric: true,
                cell: |row| Cell::number(format::int(common::int(&row["current_trap_hits"]))),
            },
            ColumnSpec {
                label: "WoW",
                help: "Week over week: change of the trap-hit share against 7 days before",
                order_by: None,
                numeric: true,
                cell: |row| common::wow_cell(row, false),
            },
            ColumnSpec {
                label: "Injections",
                help: "Messages injected on that day",
                order_by: Some("injections"),
                numeric: true,
                cell: |row| Cell::number(format::int(common::int(&row["current_injections"]))),
            },
            ColumnSpec {
                label: "Day",
                help: "The latest day with injections",
                order_by: None,
                numeric: false,
                cell: |row| Cell {
                    text: current_day(row),
                    class: "day".into(),
                    title: row["current_dt"].as_str().unwrap_or("").into(),
                },
            },
        ],
        carry: vec![(
            "mode",
            if relative { "relative" } else { "absolute" }.into(),
        )],
    }
}

#[derive(Template)]
#[template(path = "signals/traps.html")]
struct TrapsPage {
    chrome: Chrome,
    f: Frame,
    range: DayRange,
    hidden: Vec<(&'static str, String)>,
    relative: bool,
    mode_links: (String, String),
    panel: Option<TrapPanel>,
    empty: String,
    table: Option<FacetTable>,
}

async fn traps(
    pages: Pages,
    viewer: Viewer,
    headers: HeaderMap,
    q: ReportQuery,
    value: Option<(String, String)>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let range = DayRange::of(&q);
    let relative = q.mode.as_deref() != Some("absolute");
    let facet_value = match &value {
        Some((id, v)) => match facet_or_404(&view, id, TRAPS) {
            Ok(f) if f.id != "mb_provider" => Some((f, v.as_str())),
            Ok(_) | Err(_) => {
                return view.failure(
                    Failure {
                        status: StatusCode::NOT_FOUND,
                        message: format!("Spam traps have no “{id}” facet."),
                        param: None,
                    },
                    TRAPS,
                )
            }
        },
        None => None,
    };
    let mut hidden = vec![(
        "mode",
        if relative { "relative" } else { "absolute" }.to_string(),
    )];
    if let Some(f) = &q.facet {
        hidden.push(("facet", f.clone()));
    }
    let f = frame(
        TRAPS,
        "Spam Traps",
        "Mail sent to spam traps: addresses no person reads, which mailbox providers watch \
         to spot careless senders.",
        facet_value,
        &range,
    );
    let self_path = match facet_value {
        Some((fc, v)) => format!("{TRAPS}/{}/{}", fc.id, web::path_segment(v)),
        None => TRAPS.to_string(),
    };
    let mode_link = |mode: &str| {
        let mut p = range.page_pairs();
        p.push(("mode", mode.to_string()));
        if let (None, Some(fc)) = (facet_value, &q.facet) {
            p.push(("facet", fc.clone()));
        }
        format!(
            "{self_path}?{}",
            qs(p.iter().map(|(k, v)| (*k, v.as_str())))
        )
    };
    let mode_links = (mode_link("relative"), mode_link("absolute"));
    let (mut panel, mut table) = (None, None);
    if f.error.is_none() {
        let (fc, v) = facet_value.unwrap_or((&FACETS[0], "-1"));
        match one_row(&mut view, "spam-hits", fc, v, &range, "").await {
            Ok(row) => panel = row.map(|r| trap_panel(&r, relative)),
            Err(e) => return view.failure(e, TRAPS),
        }
        if facet_value.is_none() {
            match facet_table(&mut view, &traps_spec(relative), &q, &range).await {
                Ok(t) => table = Some(t),
                Err(e) => return view.failure(e, TRAPS),
            }
        }
    }
    let page = TrapsPage {
        chrome: view.chrome(
            format!(
                "Spam Traps{}",
                facet_value.map_or(String::new(), |(fc, v)| format!(" · {}", fc.display(v)))
            ),
            TRAPS,
        ),
        empty: "No messages were injected in these days, so no trap can have been hit.".into(),
        f,
        range,
        hidden,
        relative,
        mode_links,
        panel,
        table,
    };
    web::html(StatusCode::OK, &page)
}

/// `/signals/spam-traps` and its drill-down `/signals/spam-traps/{facet}/{value}`.
pub async fn traps_page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    value: Option<Path<(String, String)>>,
    Query(q): Query<ReportQuery>,
) -> Response {
    traps(pages, viewer, headers, q, value.map(|Path(v)| v)).await
}

// ---------------------------------------------------------------------------------------
// Engagement recency

/// An engagement cohort as the page shows it.
struct CohortInfo {
    /// The API's key (`c_14d`, `p_14d_eng`, …).
    key: &'static str,
    name: &'static str,
    rule: &'static str,
    /// Colour class.
    class: &'static str,
    /// The shares above which SparkPost's UI warns: (watch, high).
    limits: Option<(f64, f64)>,
}

const fn cohort(
    key: &'static str,
    name: &'static str,
    rule: &'static str,
    class: &'static str,
    limits: Option<(f64, f64)>,
) -> CohortInfo {
    CohortInfo {
        key,
        name,
        rule,
        class,
        limits,
    }
}

const COHORTS: [CohortInfo; 5] = [
    cohort(
        "14d",
        "Recently engaged",
        "opened or clicked within 14 days",
        "s6",
        None,
    ),
    cohort(
        "90d",
        "Semi-recently engaged",
        "last engaged 14–90 days ago",
        "s9",
        None,
    ),
    cohort(
        "new",
        "New",
        "first mailed within 7 days, not engaged yet",
        "s10",
        Some((0.10, 0.20)),
    ),
    cohort(
        "365d",
        "Not recently engaged",
        "last engaged 90–365 days ago",
        "s4",
        Some((0.10, 0.25)),
    ),
    cohort(
        "uneng",
        "Never engaged",
        "mailed for over 7 days and never engaged, or not for a year",
        "s1",
        Some((0.05, 0.15)),
    ),
];

/// One cohort's line in the engagement panel.
pub struct CohortRow {
    pub name: &'static str,
    pub rule: &'static str,
    pub class: &'static str,
    pub share: String,
    pub count: String,
    pub flag: &'static str,
    pub flag_text: String,
    pub eng: String,
    pub unsub: String,
    pub fbl: String,
}

/// The engagement report of one row.
pub struct EngagementPanel {
    pub day: String,
    pub injections: String,
    pub recent_share: String,
    pub wow: String,
    pub wow_class: &'static str,
    pub cohorts: Vec<CohortRow>,
    pub shares_chart: String,
    pub eng_chart: String,
    pub total_eng: String,
}

fn engagement_panel(
    row: &Value,
    eng: Option<&Value>,
    unsub: Option<&Value>,
    fbl: Option<&Value>,
) -> EngagementPanel {
    let total = num(&row["current_c_total"]).unwrap_or(0.0);
    let hist = history(row);
    let rate = |r: Option<&Value>, key: &str, kind: &str| {
        r.map_or("–".to_string(), |r| {
            format::pct_opt(num(&r[format!("current_p_{key}_{kind}")]))
        })
    };
    let cohorts = COHORTS
        .iter()
        .map(|c| {
            let (key, name, rule, class, limits) = (c.key, c.name, c.rule, c.class, &c.limits);
            let n = num(&row[format!("current_c_{key}")]).unwrap_or(0.0);
            let share = if total > 0.0 { n / total } else { 0.0 };
            let (flag, flag_text) = match limits {
                Some((_, bad)) if share > *bad => {
                    ("bad", format!("above {}: too many", format::pct(*bad)))
                }
                Some((warn, _)) if share > *warn => {
                    ("warn", format!("above {}: watch it", format::pct(*warn)))
                }
                _ => ("", String::new()),
            };
            CohortRow {
                name,
                rule,
                class,
                share: format::pct(share),
                count: format::int(n as i64),
                flag,
                flag_text,
                eng: rate(eng, key, "eng"),
                unsub: rate(unsub, key, "unsub"),
                fbl: rate(fbl, key, "fbl"),
            }
        })
        .collect();
    let shares_chart = BarChart {
        label: "Share of each day's injections by the recipient's engagement recency".into(),
        x: day_labels(row),
        stacks: COHORTS
            .iter()
            .map(|c| Stack {
                name: c.name.to_string(),
                class: c.class.to_string(),
                values: hist
                    .iter()
                    .map(|h| {
                        let t = num(&h["c_total"]).unwrap_or(0.0);
                        if t > 0.0 {
                            num(&h[format!("c_{}", c.key)]).unwrap_or(0.0) / t
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                notes: hist
                    .iter()
                    .map(|h| {
                        format!(
                            " ({} messages)",
                            format::int(common::int(&h[format!("c_{}", c.key)]))
                        )
                    })
                    .collect(),
            })
            .collect(),
        fmt: format::pct,
        y_range: Some((0.0, 1.0, vec![0.0, 0.25, 0.5, 0.75, 1.0])),
        partial_last: partial_last(row),
        size: (560.0, 250.0),
    }
    .svg();
    let eng_chart = match eng {
        Some(e) => LineChart {
            label: "Share of each day's messages that were opened or clicked, per cohort".into(),
            x: day_labels(e),
            lines: COHORTS
                .iter()
                .map(|c| Line {
                    name: c.name.to_string(),
                    class: c.class.to_string(),
                    values: history(e)
                        .iter()
                        .map(|h| num(&h[format!("p_{}_eng", c.key)]))
                        .collect(),
                })
                .collect(),
            y_range: None,
            fmt: format::pct,
            bands: vec![],
            partial_last: partial_last(e),
            size: (560.0, 250.0),
        }
        .svg(),
        None => String::new(),
    };
    let wow = num(&row["WoW"]);
    EngagementPanel {
        day: current_day(row),
        injections: format::int(total as i64),
        recent_share: format::pct_opt(num(&row["current_relative_c_14d"])),
        wow: format::change(wow),
        wow_class: format::change_class(wow, true),
        cohorts,
        shares_chart,
        eng_chart,
        total_eng: eng.map_or("–".into(), |e| {
            format::pct_opt(num(&e["current_p_total_eng"]))
        }),
    }
}

fn engagement_spec() -> TableSpec {
    TableSpec {
        report: "cohort-engagement",
        page: ENGAGEMENT,
        facets: FACETS.iter().collect(),
        default_order: "c_14d",
        spark_label: "Recently engaged, daily",
        spark: Box::new(|row| {
            let values: Vec<Option<f64>> = history(row)
                .iter()
                .map(|h| num(&h["relative_c_14d"]))
                .collect();
            chart::sparkline(&values, Some((0.0, 1.0)), "Share of recently engaged recipients per day", "good")
        }),
        columns: vec![
            ColumnSpec {
                label: "Recently engaged",
                help: "Share of the day's injections to recipients who opened or clicked within 14 days",
                order_by: Some("relative_c_14d"),
                numeric: true,
                cell: |row| Cell::number(format::pct_opt(num(&row["current_relative_c_14d"]))),
            },
            ColumnSpec {
                label: "Count",
                help: "Injections to recently engaged recipients that day",
                order_by: Some("c_14d"),
                numeric: true,
                cell: |row| Cell::number(format::int(common::int(&row["current_c_14d"]))),
            },
            ColumnSpec {
                label: "WoW",
                help: "Week over week: change of the recently engaged share against 7 days before",
                order_by: None,
                numeric: true,
                cell: |row| common::wow_cell(row, true),
            },
            ColumnSpec {
                label: "Injections",
                help: "Messages injected that day",
                order_by: Some("c_total"),
                numeric: true,
                cell: |row| Cell::number(format::int(common::int(&row["current_c_total"]))),
            },
            ColumnSpec {
                label: "Day",
                help: "The latest day with injections",
                order_by: None,
                numeric: false,
                cell: |row| Cell {
                    text: current_day(row),
                    class: "day".into(),
                    title: row["current_dt"].as_str().unwrap_or("").into(),
                },
            },
        ],
        carry: vec![],
    }
}

#[derive(Template)]
#[template(path = "signals/engagement.html")]
struct EngagementPage {
    chrome: Chrome,
    f: Frame,
    range: DayRange,
    hidden: Vec<(&'static str, String)>,
    panel: Option<EngagementPanel>,
    empty: String,
    table: Option<FacetTable>,
}

async fn engagement(
    pages: Pages,
    viewer: Viewer,
    headers: HeaderMap,
    q: ReportQuery,
    value: Option<(String, String)>,
) -> Response {
    let mut view = View::new(&pages, viewer, &headers);
    let range = DayRange::of(&q);
    let facet_value = match &value {
        Some((id, v)) => match facet_or_404(&view, id, ENGAGEMENT) {
            Ok(f) => Some((f, v.as_str())),
            Err(resp) => return *resp,
        },
        None => None,
    };
    let hidden: Vec<(&'static str, String)> =
        q.facet.iter().map(|f| ("facet", f.clone())).collect();
    let f = frame(
        ENGAGEMENT,
        "Engagement Recency",
        "Who your mail goes to, by when they last opened or clicked. Mail to people who \
         engage reaches the inbox; mail to people who never do hurts.",
        facet_value,
        &range,
    );
    let (mut panel, mut table) = (None, None);
    if f.error.is_none() {
        let (fc, v) = facet_value.unwrap_or((&FACETS[0], "-1"));
        let row = match one_row(&mut view, "cohort-engagement", fc, v, &range, "").await {
            Ok(r) => r,
            Err(e) => return view.failure(e, ENGAGEMENT),
        };
        if let Some(row) = row {
            let mut behaviour = Vec::new();
            for report in ["eng-cohort", "unsub-cohort", "fbl-cohort"] {
                match one_row(&mut view, report, fc, v, &range, "").await {
                    Ok(r) => behaviour.push(r),
                    Err(e) => return view.failure(e, ENGAGEMENT),
                }
            }
            panel = Some(engagement_panel(
                &row,
                behaviour[0].as_ref(),
                behaviour[1].as_ref(),
                behaviour[2].as_ref(),
            ));
        }
        if facet_value.is_none() {
            match facet_table(&mut view, &engagement_spec(), &q, &range).await {
                Ok(t) => table = Some(t),
                Err(e) => return view.failure(e, ENGAGEMENT),
            }
        }
    }
    let page = EngagementPage {
        chrome: view.chrome(
            format!(
                "Engagement Recency{}",
                facet_value.map_or(String::new(), |(fc, v)| format!(" · {}", fc.display(v)))
            ),
            ENGAGEMENT,
        ),
        empty: "No messages were injected in these days. Engagement recency needs open or \
                click tracking: recipients become engaged when their opens and clicks arrive."
            .into(),
        f,
        range,
        hidden,
        panel,
        table,
    };
    web::html(StatusCode::OK, &page)
}

/// `/signals/engagement` and its drill-down `/signals/engagement/{facet}/{value}`.
pub async fn engagement_page(
    State(pages): State<Pages>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    value: Option<Path<(String, String)>>,
    Query(q): Query<ReportQuery>,
) -> Response {
    engagement(pages, viewer, headers, q, value.map(|Path(v)| v)).await
}
