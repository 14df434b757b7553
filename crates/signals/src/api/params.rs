//! Query parameters shared by the Metrics API endpoints: lists with `delimiter`, the simple
//! facet filters and the `query_filters` groupings (spec §4.2), as a [`DimFilter`].

use std::collections::HashMap;

use serde_json::Value;

use super::ApiError;
use crate::store::{DimFilter, Dims, Facet};

/// A 400 naming `param`.
pub(crate) fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadParam {
        message: message.into(),
        param,
        validation_errors: Vec::new(),
    }
}

/// The query string as a map (the last value of a repeated key wins) and its delimiter.
pub(crate) struct Params {
    map: HashMap<String, String>,
    delimiter: String,
}

impl Params {
    pub(crate) fn new(pairs: Vec<(String, String)>) -> Result<Params, ApiError> {
        let map: HashMap<String, String> = pairs.into_iter().collect();
        let delimiter = map.get("delimiter").cloned().unwrap_or_else(|| ",".into());
        if delimiter.is_empty() {
            return Err(bad("delimiter", "delimiter must not be empty"));
        }
        Ok(Params { map, delimiter })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(self.delimiter.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An integer in `range`, or `default` when absent.
    pub(crate) fn int(
        &self,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    bad(
                        key,
                        format!(
                            "{key} must be an integer between {} and {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }
}

/// The filter keys of the Metrics API and the facet each filters.
const FILTER_KEYS: &[(&str, Option<Facet>)] = &[
    ("domains", Some(Facet::Domain)),
    ("campaigns", Some(Facet::Campaign)),
    ("templates", Some(Facet::Template)),
    ("sending_ips", Some(Facet::SendingIp)),
    ("ip_pools", Some(Facet::IpPool)),
    ("sending_domains", Some(Facet::SendingDomain)),
    ("subaccounts", Some(Facet::Subaccount)),
    ("mailbox_providers", Some(Facet::MailboxProvider)),
    ("mailbox_provider_regions", Some(Facet::Region)),
    // Deliverability add-on data petrel does not have: every message's value is "".
    ("subject_campaigns", None),
];

fn value_of(d: &Dims, facet: Option<Facet>) -> String {
    facet.map(|f| d.get(f)).unwrap_or_default()
}

/// One key's comparisons inside a grouping.
#[derive(Debug, Default)]
struct Condition {
    facet: Option<Facet>,
    eq: Vec<String>,
    like: Vec<String>,
    not_eq: Vec<String>,
    not_like: Vec<String>,
}

impl Condition {
    fn matches(&self, d: &Dims) -> bool {
        let v = value_of(d, self.facet).to_lowercase();
        let included = (self.eq.is_empty() && self.like.is_empty())
            || self.eq.contains(&v)
            || self.like.iter().any(|l| v.contains(l.as_str()));
        included
            && !self.not_eq.contains(&v)
            && !self.not_like.iter().any(|l| v.contains(l.as_str()))
    }
}

/// A grouping: its conditions joined by AND or OR.
#[derive(Debug)]
struct Grouping {
    and: bool,
    conditions: Vec<Condition>,
}

/// The Metrics API filter: the simple list filters, or (when given) `query_filters`, whose
/// groupings are ANDed. Comparisons ignore case.
#[derive(Debug, Default)]
pub(crate) struct MetricsFilter {
    groupings: Vec<Grouping>,
}

impl DimFilter for MetricsFilter {
    fn matches(&self, d: &Dims) -> bool {
        self.groupings.iter().all(|g| {
            if g.and {
                g.conditions.iter().all(|c| c.matches(d))
            } else {
                g.conditions.iter().any(|c| c.matches(d))
            }
        })
    }

    fn facets(&self) -> Vec<Facet> {
        self.groupings
            .iter()
            .flat_map(|g| g.conditions.iter().filter_map(|c| c.facet))
            .collect()
    }
}

impl MetricsFilter {
    /// Reads `query_filters` if present (simple filters are then ignored, as at SparkPost),
    /// else the simple list filters.
    pub(crate) fn from_params(p: &Params) -> Result<MetricsFilter, ApiError> {
        if let Some(raw) = p.get("query_filters") {
            return parse_query_filters(raw);
        }
        let mut g = Grouping {
            and: true,
            conditions: Vec::new(),
        };
        for (key, facet) in FILTER_KEYS {
            let values = p.list(key);
            if values.is_empty() {
                continue;
            }
            if *key == "subaccounts" {
                for v in &values {
                    if v.parse::<i64>().is_err() {
                        return Err(bad(
                            "subaccounts",
                            format!("subaccounts: `{v}` is not an integer"),
                        ));
                    }
                }
            }
            g.conditions.push(Condition {
                facet: *facet,
                eq: values.iter().map(|v| v.to_lowercase()).collect(),
                ..Condition::default()
            });
        }
        Ok(MetricsFilter {
            groupings: if g.conditions.is_empty() {
                Vec::new()
            } else {
                vec![g]
            },
        })
    }

    /// A filter on one facet's exact values (used by the Signals API's `filter`).
    pub(crate) fn none() -> MetricsFilter {
        MetricsFilter::default()
    }
}

fn invalid(errors: Vec<String>) -> ApiError {
    ApiError::BadParam {
        message: format!("query_filters is not valid: {}", errors.join("; ")),
        param: "query_filters",
        validation_errors: errors,
    }
}

/// Parses and validates `query_filters` against SparkPost's schema (spec §4.2).
pub(crate) fn parse_query_filters(raw: &str) -> Result<MetricsFilter, ApiError> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| invalid(vec![format!("not JSON: {e}")]))?;
    let mut errors = Vec::new();
    let Some(root) = v.as_object() else {
        return Err(invalid(vec!["the root must be an object".into()]));
    };
    for k in root.keys() {
        if k != "groupings" {
            errors.push(format!(
                "/{k}: unknown property (only `groupings` is allowed)"
            ));
        }
    }
    let Some(groupings) = root.get("groupings") else {
        errors.push("/groupings: required".into());
        return Err(invalid(errors));
    };
    let Some(groupings) = groupings.as_array() else {
        errors.push("/groupings: must be an array".into());
        return Err(invalid(errors));
    };
    let mut out = Vec::new();
    for (gi, g) in groupings.iter().enumerate() {
        let at = format!("/groupings/{gi}");
        let Some(obj) = g.as_object().filter(|o| o.len() == 1) else {
            errors.push(format!(
                "{at}: must be an object with exactly one of AND, OR"
            ));
            continue;
        };
        let (op, body) = obj.iter().next().expect("one entry");
        let and = match op.as_str() {
            "AND" => true,
            "OR" => false,
            other => {
                errors.push(format!("{at}: `{other}` is not AND or OR"));
                continue;
            }
        };
        let Some(keys) = body.as_object().filter(|k| !k.is_empty()) else {
            errors.push(format!(
                "{at}/{op}: must be a non-empty object of filter keys"
            ));
            continue;
        };
        let mut conditions = Vec::new();
        for (key, comps) in keys {
            let at = format!("{at}/{op}/{key}");
            let Some((_, facet)) = FILTER_KEYS.iter().find(|(k, _)| k == key) else {
                errors.push(format!("{at}: unknown filter key"));
                continue;
            };
            let Some(comps) = comps.as_object().filter(|c| !c.is_empty()) else {
                errors.push(format!("{at}: must be a non-empty object of comparators"));
                continue;
            };
            let mut c = Condition {
                facet: *facet,
                ..Condition::default()
            };
            for (comp, values) in comps {
                let at = format!("{at}/{comp}");
                let Some(values) = values.as_array().filter(|a| !a.is_empty()) else {
                    errors.push(format!("{at}: must be a non-empty array"));
                    continue;
                };
                let mut texts = Vec::new();
                for v in values {
                    match v {
                        Value::String(s) => texts.push(s.to_lowercase()),
                        Value::Number(n) if *key == "subaccounts" => texts.push(n.to_string()),
                        _ => errors.push(format!("{at}: values must be strings")),
                    }
                }
                let like = comp == "like" || comp == "notLike";
                if like && texts.iter().any(|t| t.chars().count() < 3) {
                    errors.push(format!("{at}: values must be at least 3 characters long"));
                }
                match comp.as_str() {
                    "eq" => c.eq = texts,
                    "like" => c.like = texts,
                    "notEq" => c.not_eq = texts,
                    "notLike" => c.not_like = texts,
                    other => {
                        errors.push(format!("{at}: `{other}` is not eq, like, notEq or notLike"))
                    }
                }
            }
            conditions.push(c);
        }
        out.push(Grouping { and, conditions });
    }
    if errors.is_empty() {
        Ok(MetricsFilter { groupings: out })
    } else {
        Err(invalid(errors))
    }
}

/// The JSON Schema of `query_filters` (`GET /api/v1/metrics/deliverability/query-filters-schema`).
pub(crate) fn query_filters_schema() -> Value {
    let keys: Vec<&str> = FILTER_KEYS.iter().map(|(k, _)| *k).collect();
    let values = serde_json::json!({"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}});
    let like = serde_json::json!({"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 3}});
    let comparators = serde_json::json!({
        "type": "object", "minProperties": 1, "additionalProperties": false,
        "properties": {"eq": values, "notEq": values, "like": like, "notLike": like}
    });
    let mut filter_props = serde_json::Map::new();
    for k in &keys {
        filter_props.insert(
            (*k).to_string(),
            serde_json::json!({"$ref": "#/$defs/comparators"}),
        );
    }
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema",
        "$id": "root",
        "type": "object",
        "title": "query_filters",
        "required": ["groupings"],
        "additionalProperties": false,
        "properties": {"groupings": {"type": "array", "items": {"$ref": "#/$defs/grouping"}}},
        "$defs": {
            "grouping": {
                "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
                "properties": {"AND": {"$ref": "#/$defs/filters"}, "OR": {"$ref": "#/$defs/filters"}}
            },
            "filters": {"type": "object", "minProperties": 1, "additionalProperties": false, "properties": filter_props},
            "comparators": comparators
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(campaign: &str, domain: &str) -> Dims {
        Dims {
            campaign: campaign.into(),
            domain: domain.into(),
            ..Dims::default()
        }
    }

    #[test]
    fn groupings_and_comparators() {
        let f = parse_query_filters(
            r#"{"groupings":[{"AND":{"domains":{"eq":["gmail.com"],"like":["yahoo"]}}},{"OR":{"campaigns":{"notLike":["friday"],"notEq":["stuff"]}}}]}"#,
        )
        .unwrap();
        assert!(f.matches(&dims("spring", "gmail.com")));
        assert!(f.matches(&dims("spring", "yahoo.co.uk")));
        assert!(!f.matches(&dims("spring", "example.com")));
        assert!(!f.matches(&dims("black-Friday", "gmail.com")));
        assert!(!f.matches(&dims("stuff", "gmail.com")));
        assert_eq!(f.facets(), vec![Facet::Domain, Facet::Campaign]);
    }

    #[test]
    fn schema_violations() {
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"groupings":{}}"#,
            r#"{"groupings":[{"XOR":{"domains":{"eq":["a"]}}}]}"#,
            r#"{"groupings":[{"AND":{"colors":{"eq":["a"]}}}]}"#,
            r#"{"groupings":[{"AND":{"domains":{"like":["ab"]}}}]}"#,
            r#"{"groupings":[{"AND":{"domains":{"gt":["abc"]}}}]}"#,
            r#"{"groupings":[],"extra":1}"#,
        ] {
            let err = parse_query_filters(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ApiError::BadParam {
                        param: "query_filters",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }
}
