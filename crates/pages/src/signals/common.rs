//! What the three Signals reports (Health Score, Spam Traps, Engagement Recency) share: the
//! facets, the day range, reading the API's rows, and the facet table with its tabs,
//! sorting, filter and paging.

use serde::Deserialize;
use serde_json::Value;

use crate::api::Failure;
use crate::web::{path_segment, qs};

use super::View;

/// A Signals facet: how the API, the pages and the Metrics API name it.
pub struct Facet {
    /// The API's path segment and row key (`sid` for subaccounts, which has no segment).
    pub id: &'static str,
    /// The tab's label.
    pub label: &'static str,
    /// The Metrics API and Events API filter of the same facet (for links onwards).
    pub filter: &'static str,
}

/// The facets of SparkPost's Signals pages, in their order.
pub const FACETS: [Facet; 5] = [
    Facet {
        id: "sid",
        label: "Subaccount",
        filter: "subaccounts",
    },
    Facet {
        id: "campaign_id",
        label: "Campaign",
        filter: "campaigns",
    },
    Facet {
        id: "ip_pool",
        label: "IP Pool",
        filter: "ip_pools",
    },
    Facet {
        id: "mb_provider",
        label: "Mailbox Provider",
        filter: "mailbox_providers",
    },
    Facet {
        id: "sending_domain",
        label: "Sending Domain",
        filter: "sending_domains",
    },
];

/// The facet named `id`, or subaccounts.
pub fn facet(id: Option<&str>) -> &'static Facet {
    FACETS
        .iter()
        .find(|f| Some(f.id) == id)
        .unwrap_or(&FACETS[0])
}

impl Facet {
    /// `/api/v1/signals/{report}` or `/api/v1/signals/{report}/{facet}`.
    pub fn api_path(&self, report: &str) -> String {
        if self.id == "sid" {
            format!("/api/v1/signals/{report}")
        } else {
            format!("/api/v1/signals/{report}/{}", self.id)
        }
    }

    /// A facet value as people read it (subaccount numbers get words).
    pub fn display(&self, value: &str) -> String {
        if self.id != "sid" {
            return if value.is_empty() {
                "(none)".into()
            } else {
                value.to_string()
            };
        }
        match value {
            "-1" => "All subaccounts".into(),
            "0" => "Primary account".into(),
            n => format!("Subaccount {n}"),
        }
    }

    /// The row's value of this facet, as text.
    pub fn value_of(&self, row: &Value) -> String {
        text(&row[self.id])
    }
}

/// The query string every Signals report page understands.
#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    /// `7`, `14`, `30`, `90` or `custom`.
    pub range: Option<String>,
    /// `YYYY-MM-DD` of a custom range.
    pub from: Option<String>,
    /// `YYYY-MM-DD` of a custom range.
    pub to: Option<String>,
    /// The facet of the table.
    pub facet: Option<String>,
    /// Only facet values containing this text.
    pub filter: Option<String>,
    /// 1-based page of the table.
    pub page: Option<usize>,
    /// The table's sort field (the API's `order_by`).
    pub order_by: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// Health Score: the component whose raw rate is charted.
    pub component: Option<String>,
    /// Spam Traps: `relative` (share of injections, default) or `absolute` (hits).
    pub mode: Option<String>,
}

/// Rows per table page, as in SparkPost's app.
pub const PER_PAGE: usize = 25;

/// The days a report covers: one of the presets ending today, or a custom range.
pub struct DayRange {
    /// `7`, `14`, `30`, `90` or `custom`.
    pub preset: String,
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day, `YYYY-MM-DD` (inclusive).
    pub to: String,
}

/// Today's date in UTC (the Signals API's days are UTC days).
pub fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

impl DayRange {
    /// The range a query asks for; presets end today (the API marks today as partial).
    pub fn of(q: &ReportQuery) -> DayRange {
        let preset = q.range.clone().unwrap_or_else(|| "14".into());
        if preset == "custom" {
            if let (Some(f), Some(t)) = (&q.from, &q.to) {
                return DayRange {
                    preset,
                    from: f.trim().to_string(),
                    to: t.trim().to_string(),
                };
            }
        }
        let days: i64 = match preset.as_str() {
            "7" => 7,
            "30" => 30,
            "90" => 90,
            _ => 14,
        };
        let to = today();
        let from = to
            .checked_sub(jiff::Span::new().days(days - 1))
            .unwrap_or(to);
        DayRange {
            preset: days.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }

    /// `range=…` (and the dates of a custom range) for links within the pages.
    pub fn page_pairs(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("range", self.preset.clone())];
        if self.preset == "custom" {
            v.push(("from", self.from.clone()));
            v.push(("to", self.to.clone()));
        }
        v
    }

    /// A caption: `Dec 1 – Dec 14, 2026`.
    pub fn caption(&self) -> String {
        format!(
            "{} – {}",
            crate::format::short_date(&self.from),
            crate::format::short_date(&self.to)
        ) + self
            .to
            .get(..4)
            .map_or(String::new(), |y| format!(", {y}"))
            .as_str()
    }

    /// The presets for the range form: (value, label, selected).
    pub fn options(&self) -> Vec<(&'static str, &'static str, bool)> {
        [
            ("7", "Last 7 days"),
            ("14", "Last 14 days"),
            ("30", "Last 30 days"),
            ("90", "Last 90 days"),
            ("custom", "Custom"),
        ]
        .into_iter()
        .map(|(v, l)| (v, l, v == self.preset))
        .collect()
    }
}

pub use crate::json::{int, num, text};

/// The first non-blank value of `key` in a query string's pairs, trimmed.
pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == key && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// The cursor of the next page, from an Events API answer's `links.next`.
pub fn next_cursor(resp: &Value) -> Option<String> {
    let q = resp["links"]["next"].as_str()?.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
}

/// `results.data` of a Signals API answer.
pub fn data(resp: &Value) -> &[Value] {
    resp["results"]["data"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// A row's `history` (one entry per day of the range).
pub fn history(row: &Value) -> &[Value] {
    row["history"].as_array().map_or(&[], Vec::as_slice)
}

/// The history's days as chart labels.
pub fn day_labels(row: &Value) -> Vec<String> {
    history(row)
        .iter()
        .map(|h| crate::format::short_date(h["dt"].as_str().unwrap_or("")))
        .collect()
}

/// The last history day is today, still counting.
pub fn partial_last(row: &Value) -> bool {
    history(row)
        .last()
        .is_some_and(|h| h["partial"].as_bool() == Some(true))
}

/// When the row's `current_*` values are from: `Dec 7` or `today (so far)`.
pub fn current_day(row: &Value) -> String {
    let dt = row["current_dt"].as_str().unwrap_or("");
    if row["current_partial"].as_bool() == Some(true) {
        "today (so far)".into()
    } else {
        crate::format::short_date(dt)
    }
}

/// Fetches the row of one facet value over the range: the API's `filter` narrows by
/// substring, then the exact value is picked. `None` when the value has no injections.
pub async fn one_row(
    view: &mut View,
    report: &str,
    facet: &Facet,
    value: &str,
    range: &DayRange,
    extra: &str,
) -> Result<Option<Value>, Failure> {
    let filter = if facet.id == "sid" && value == "-1" {
        ""
    } else {
        value
    };
    let q = qs([
        ("from", range.from.as_str()),
        ("to", range.to.as_str()),
        ("filter", filter),
        ("limit", if value == "-1" { "1" } else { "1000" }),
        ("order_by", if value == "-1" { "sid" } else { "" }),
        ("order", if value == "-1" { "asc" } else { "" }),
    ]);
    let path = format!("{}?{q}{extra}", facet.api_path(report));
    let resp = view.api.get(&path).await?;
    Ok(data(&resp)
        .iter()
        .find(|r| facet.value_of(r) == value)
        .cloned())
}

/// A facet tab above a table.
pub struct Tab {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A column heading; sortable ones link to the sorted table.
pub struct Column {
    pub label: &'static str,
    pub help: &'static str,
    pub numeric: bool,
    pub sort_href: Option<String>,
    /// `ascending` / `descending` when the table is sorted by it (`aria-sort`).
    pub sorted: Option<&'static str>,
}

/// One table cell: text, a CSS class (band colours, number alignment) and a tooltip.
pub struct Cell {
    pub text: String,
    pub class: String,
    pub title: String,
}

impl Cell {
    /// A right-aligned number.
    pub fn number(text: String) -> Cell {
        Cell {
            text,
            class: "num".into(),
            title: String::new(),
        }
    }
}

/// One row: the facet value (linking to its drill-down), its sparkline and its cells.
pub struct TableRow {
    pub name: String,
    pub href: String,
    pub spark: String,
    pub cells: Vec<Cell>,
}

/// The facet table of a report page.
pub struct FacetTable {
    pub tabs: Vec<Tab>,
    pub facet_label: &'static str,
    pub spark_label: &'static str,
    pub name_sort: Option<String>,
    pub name_sorted: Option<&'static str>,
    pub columns: Vec<Column>,
    pub rows: Vec<TableRow>,
    /// Hidden fields of the filter form (range, facet, mode).
    pub hidden: Vec<(&'static str, String)>,
    pub filter: String,
    pub summary: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub empty: String,
}

/// A sortable or plain column of a facet table.
pub struct ColumnSpec {
    pub label: &'static str,
    pub help: &'static str,
    /// The API's `order_by` for this column.
    pub order_by: Option<&'static str>,
    /// Right-aligned (numbers).
    pub numeric: bool,
    pub cell: fn(&Value) -> Cell,
}

/// What differs between the reports' tables.
pub struct TableSpec {
    /// The API report (`health-score`, `spam-hits`, `cohort-engagement`).
    pub report: &'static str,
    /// The page (`/signals/health-score`).
    pub page: &'static str,
    /// Facets offered (spam traps have no mailbox provider).
    pub facets: Vec<&'static Facet>,
    /// The API's default sort.
    pub default_order: &'static str,
    /// Heading of the sparkline column.
    pub spark_label: &'static str,
    pub spark: Box<dyn Fn(&Value) -> String + Send + Sync>,
    pub columns: Vec<ColumnSpec>,
    /// Query pairs the page carries in every link (e.g. `mode`).
    pub carry: Vec<(&'static str, String)>,
}

/// Builds a report's facet table from one API request (the page of rows asked for).
pub async fn facet_table(
    view: &mut View,
    spec: &TableSpec,
    q: &ReportQuery,
    range: &DayRange,
) -> Result<FacetTable, Failure> {
    let facet = spec
        .facets
        .iter()
        .copied()
        .find(|f| Some(f.id) == q.facet.as_deref())
        .unwrap_or(spec.facets[0]);
    let page = q.page.unwrap_or(1).max(1);
    let order_by = q
        .order_by
        .clone()
        .filter(|o| o == facet.id || spec.columns.iter().any(|c| c.order_by == Some(o.as_str())))
        .unwrap_or_else(|| spec.default_order.to_string());
    let order = match q.order.as_deref() {
        Some("asc") => "asc",
        _ => "desc",
    };
    let filter = q.filter.clone().unwrap_or_default();
    let offset = ((page - 1) * PER_PAGE).to_string();
    let limit = PER_PAGE.to_string();
    let api_q = qs([
        ("from", range.from.as_str()),
        ("to", range.to.as_str()),
        ("limit", limit.as_str()),
        ("offset", offset.as_str()),
        ("order_by", order_by.as_str()),
        ("order", order),
        ("filter", filter.trim()),
    ]);
    let resp = view
        .api
        .get(&format!("{}?{api_q}", facet.api_path(spec.report)))
        .await?;
    let total = resp["results"]["total_count"].as_u64().unwrap_or(0) as usize;

    // Links keep the range, facet, filter and the page's own pairs.
    let link = |facet_id: &str, order_by: &str, order: &str, page: usize, filter: &str| {
        let mut pairs: Vec<(&str, String)> = range.page_pairs();
        pairs.extend(spec.carry.iter().cloned());
        pairs.push(("facet", facet_id.to_string()));
        pairs.push(("filter", filter.to_string()));
        pairs.push(("order_by", order_by.to_string()));
        pairs.push(("order", order.to_string()));
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        format!(
            "{}?{}#table",
            spec.page,
            qs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        )
    };
    let sort_link = |key: &str| {
        // Clicking the sorted column flips it; another column starts descending.
        let next = if order_by == key && order == "desc" {
            "asc"
        } else {
            "desc"
        };
        link(facet.id, key, next, 1, &filter)
    };
    let sorted = |key: &str| {
        (order_by == key).then_some(if order == "asc" {
            "ascending"
        } else {
            "descending"
        })
    };
    let tabs = spec
        .facets
        .iter()
        .map(|f| Tab {
            label: f.label,
            href: link(f.id, "", "", 1, ""),
            current: f.id == facet.id,
        })
        .collect();
    let columns = spec
        .columns
        .iter()
        .map(|c| Column {
            label: c.label,
            help: c.help,
            numeric: c.numeric,
            sort_href: c.order_by.map(sort_link),
            sorted: c.order_by.and_then(sorted),
        })
        .collect();
    let mut carry_qs: Vec<(&str, String)> = range.page_pairs();
    carry_qs.extend(spec.carry.iter().cloned());
    let carry = qs(carry_qs.iter().map(|(k, v)| (*k, v.as_str())));
    let rows = data(&resp)
        .iter()
        .map(|row| {
            let value = facet.value_of(row);
            TableRow {
                name: facet.display(&value),
                href: format!(
                    "{}/{}/{}?{carry}",
                    spec.page,
                    facet.id,
                    path_segment(&value)
                ),
                spark: (spec.spark)(row),
                cells: spec.columns.iter().map(|c| (c.cell)(row)).collect(),
            }
        })
        .collect::<Vec<_>>();
    let first = (page - 1) * PER_PAGE + 1;
    let last = (page - 1) * PER_PAGE + rows.len();
    let summary = if rows.is_empty() {
        String::new()
    } else {
        format!(
            "{}–{} of {} {}",
            crate::format::int(first as i64),
            crate::format::int(last as i64),
            crate::format::int(total as i64),
            plural(facet.label, total)
        )
    };
    let empty = if !filter.trim().is_empty() {
        format!(
            "No {} with “{}” in its name sent mail in these days.",
            facet.label.to_lowercase(),
            filter.trim()
        )
    } else {
        format!(
            "No {} sent mail in these days. Rows appear once messages are injected.",
            facet.label.to_lowercase()
        )
    };
    let mut hidden: Vec<(&'static str, String)> = range.page_pairs();
    hidden.extend(spec.carry.iter().cloned());
    hidden.push(("facet", facet.id.to_string()));
    Ok(FacetTable {
        tabs,
        facet_label: facet.label,
        spark_label: spec.spark_label,
        name_sort: Some(sort_link(facet.id)),
        name_sorted: sorted(facet.id),
        columns,
        rows,
        hidden,
        filter,
        summary,
        prev: (page > 1).then(|| {
            link(
                facet.id,
                &order_by,
                order,
                page - 1,
                &q.filter.clone().unwrap_or_default(),
            )
        }),
        next: (last < total).then(|| {
            link(
                facet.id,
                &order_by,
                order,
                page + 1,
                &q.filter.clone().unwrap_or_default(),
            )
        }),
        empty,
    })
}

fn plural(label: &str, n: usize) -> String {
    let l = label.to_lowercase();
    if n == 1 {
        l
    } else if l.ends_with('y') && !l.ends_with("ey") {
        format!("{}ies", &l[..l.len() - 1])
    } else {
        format!("{l}s")
    }
}

/// The week-over-week cell, coloured by whether up is good for this report.
pub fn wow_cell(row: &Value, good_up: bool) -> Cell {
    let w = num(&row["WoW"]);
    Cell {
        text: crate::format::change(w),
        class: format!("num {}", crate::format::change_class(w, good_up)),
        title: "Change of the current value against the same weekday a week before".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_name_their_api_paths_and_values() {
        assert_eq!(
            facet(Some("campaign_id")).api_path("health-score"),
            "/api/v1/signals/health-score/campaign_id"
        );
        assert_eq!(
            facet(None).api_path("spam-hits"),
            "/api/v1/signals/spam-hits"
        );
        assert_eq!(facet(None).display("-1"), "All subaccounts");
        assert_eq!(facet(None).display("0"), "Primary account");
        assert_eq!(facet(None).display("7"), "Subaccount 7");
        assert_eq!(plural("IP Pool", 2), "ip pools");
        assert_eq!(plural("Mailbox Provider", 1), "mailbox provider");
        assert_eq!(plural("Subaccount", 3), "subaccounts");
    }

    #[test]
    fn presets_end_today_and_custom_ranges_pass_through() {
        let r = DayRange::of(&ReportQuery::default());
        assert_eq!(r.to, today().to_string());
        assert_eq!(r.preset, "14");
        let q = ReportQuery {
            range: Some("custom".into()),
            from: Some("2026-01-01".into()),
            to: Some("2026-01-31".into()),
            ..ReportQuery::default()
        };
        let r = DayRange::of(&q);
        assert_eq!(
            (r.from.as_str(), r.to.as_str()),
            ("2026-01-01", "2026-01-31")
        );
        assert_eq!(r.caption(), "Jan 1 – Jan 31, 2026");
        assert_eq!(num(&serde_json::json!("0.6870")), Some(0.687));
    }
}
