//! The two searches over raw data in ClickHouse. A page of events is found by its keys first
//! (`ts`, `event_id`: small columns), then only that page's JSON is read, so a page never
//! reads the JSON of every event in the time range.

use base64::Engine as _;
use serde_json::{json, Value};

use super::http::{number_list, quote, quoted_list};
use super::rowbinary::RowReader;
use super::ClickHouseStore;
use crate::query::{BatchQuery, EventQuery};
use crate::store::{BatchPage, EventPage, StoreError};
use crate::timefmt;

/// How long a batch status record claims its batch stays downloadable (spec §1.7 example).
const EXPIRATION_SECS: i64 = 10 * 24 * 3600;

fn in_list(col: &str, values: &[String]) -> Option<String> {
    (!values.is_empty()).then(|| {
        format!(
            "{col} IN {}",
            quoted_list(values.iter().map(String::as_str))
        )
    })
}

/// A string field of the event JSON (`''` when absent). `visitParam…` functions read flat
/// JSON objects, which stored events are, and exist on 18.16 as on current releases.
fn field(name: &str) -> String {
    format!("visitParamExtractString(json, '{name}')")
}

/// A field that may be a JSON string or number, as text (SQLite's `CAST(… AS TEXT)`).
fn scalar_field(name: &str) -> String {
    format!("replaceRegexpAll(visitParamExtractRaw(json, '{name}'), '^\"|\"$', '')")
}

/// 1 when one of `terms` is a keyword of `value` (`query::keyword_matches`: the whole value
/// or one of its tokens split at space, `-` and `_`, ignoring case).
fn keyword_any(terms: &[String], value: &str) -> String {
    let lower = terms.iter().map(|t| t.to_lowercase()).collect::<Vec<_>>();
    let list = quoted_list(lower.iter().map(String::as_str));
    format!(
        "(lowerUTF8({value}) IN {list} OR hasAny(splitByChar(' ', \
         replaceRegexpAll(lowerUTF8({value}), '[-_]', ' ')), [{}]))",
        lower
            .iter()
            .map(|t| quote(t))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The filters on event content that have no column (subjects, reasons, A/B tests,
/// friendly-from addresses, transmissions, regions), read from the event JSON with the
/// same rules as the SQLite backend.
fn content_filters(q: &EventQuery) -> Vec<String> {
    let mut out = Vec::new();
    if !q.subjects.is_empty() {
        out.push(keyword_any(&q.subjects, &field("subject")));
    }
    if !q.reasons.is_empty() {
        out.push(format!(
            "({} OR {})",
            keyword_any(&q.reasons, &field("reason")),
            keyword_any(&q.reasons, &field("raw_reason"))
        ));
    }
    if !q.ab_tests.is_empty() {
        out.push(keyword_any(&q.ab_tests, &field("ab_test_id")));
    }
    if !q.from_addresses.is_empty() {
        // `query::address_of`: the part in the last angle brackets, else the whole value.
        let from = field("friendly_from");
        out.push(format!(
            "lowerUTF8(replaceRegexpAll(if(match({from}, '<[^<>]*>'), \
             extract({from}, '.*<([^<>]*)>'), {from}), '^ +| +$', '')) IN {}",
            quoted_list(q.from_addresses.iter().map(String::as_str))
        ));
    }
    for (name, values) in [
        ("transmission_id", &q.transmissions),
        ("ab_test_version", &q.ab_test_versions),
    ] {
        if !values.is_empty() {
            out.push(format!(
                "{} IN {}",
                scalar_field(name),
                quoted_list(values.iter().map(String::as_str))
            ));
        }
    }
    if !q.mailbox_provider_regions.is_empty() {
        // The event's region, else "Global" for any recipient domain (`counting::dims_of`).
        out.push(format!(
            "if(visitParamHas(json, 'mailbox_provider_region'), {}, \
             if(recipient_domain = '', '', 'Global')) IN {}",
            field("mailbox_provider_region"),
            quoted_list(q.mailbox_provider_regions.iter().map(String::as_str))
        ));
    }
    out
}

/// The same cursor the SQLite backend hands out: `base64url(ts:event_id)`.
fn encode_event_cursor(ts: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ts}:{id}"))
}

impl ClickHouseStore {
    pub(super) fn search_events_impl(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let mut clauses = vec![format!("ts >= {}", q.from), format!("ts < {}", q.to)];
        if q.impossible {
            clauses.push("0".into());
        }
        clauses.extend(q.column_filters().iter().filter_map(|(c, v)| in_list(c, v)));
        if !q.subaccounts.is_empty() {
            clauses.push(format!("subaccount_id IN {}", number_list(&q.subaccounts)));
        }
        clauses.extend(content_filters(q));
        let filter = clauses.join(" AND ");
        let events = self.t("events");
        let body = self
            .client
            .select(&format!("SELECT count() FROM {events} WHERE {filter}"))?;
        let total = RowReader::new(&body).u64()?;
        let mut page_filter = filter;
        if let Some((ts, id)) = &q.cursor {
            page_filter.push_str(&format!(
                " AND (ts < {ts} OR (ts = {ts} AND event_id < {}))",
                quote(id)
            ));
        }
        let body = self.client.select(&format!(
            "SELECT ts, event_id FROM {events} WHERE {page_filter} \
             ORDER BY ts DESC, event_id DESC LIMIT {}",
            u64::from(q.per_page) + 1
        ))?;
        let mut r = RowReader::new(&body);
        let mut keys: Vec<(i64, String)> = Vec::new();
        while !r.done() {
            keys.push((r.i64()?, r.string()?));
        }
        let next = if keys.len() > q.per_page as usize {
            keys.truncate(q.per_page as usize);
            keys.last().map(|(ts, id)| encode_event_cursor(*ts, id))
        } else {
            None
        };
        let mut json = std::collections::HashMap::new();
        if !keys.is_empty() {
            let mut stamps: Vec<i64> = keys.iter().map(|(t, _)| *t).collect();
            stamps.dedup();
            let body = self.client.select(&format!(
                "SELECT event_id, json FROM {events} WHERE ts IN {} AND event_id IN {}",
                number_list(&stamps),
                quoted_list(keys.iter().map(|(_, id)| id.as_str()))
            ))?;
            let mut r = RowReader::new(&body);
            while !r.done() {
                let id = r.string()?;
                json.insert(id, r.string()?);
            }
        }
        Ok(EventPage {
            results: keys
                .iter()
                .filter_map(|(_, id)| json.get(id).cloned())
                .collect(),
            total_count: total,
            next_cursor: next,
        })
    }

    pub(super) fn search_batches_impl(&self, q: &BatchQuery) -> Result<BatchPage, StoreError> {
        let mut clauses = vec![
            format!("received_at >= {}", q.from),
            format!("received_at < {}", q.to),
        ];
        match (q.success, q.error) {
            (true, false) => clauses.push("error_type = ''".into()),
            (false, true) => clauses.push("error_type != ''".into()),
            _ => {}
        }
        clauses.extend(in_list("error_type", &q.error_types));
        clauses.extend(in_list("id", &q.batch_ids));
        let filter = clauses.join(" AND ");
        let batches = self.t("batches");
        let body = self
            .client
            .select(&format!("SELECT count() FROM {batches} WHERE {filter}"))?;
        let total = RowReader::new(&body).u64()?;
        let mut page_filter = filter;
        if let Some(seq) = q.cursor {
            page_filter.push_str(&format!(" AND seq < {seq}"));
        }
        let body = self.client.select(&format!(
            "SELECT seq, id, record_id, error_type, received_at, accepted, failed, duplicates, \
             error FROM {batches} WHERE {page_filter} ORDER BY seq DESC LIMIT {}",
            u64::from(q.per_page) + 1
        ))?;
        let mut r = RowReader::new(&body);
        let mut rows: Vec<(i64, Value)> = Vec::new();
        while !r.done() {
            let seq = r.i64()?;
            let id = r.string()?;
            let record_id = r.string()?;
            let error_type = r.string()?;
            let received = r.i64()?;
            let (accepted, failed, duplicates) = (r.i64()?, r.i64()?, r.i64()?);
            let error = r.string()?;
            let mut rec = json!({
                "type": if error_type.is_empty() { "success" } else { "error" },
                "batch_id": id,
                "event_id": record_id,
                "timestamp": timefmt::iso(received),
                "expiration_timestamp": timefmt::iso(received + EXPIRATION_SECS),
                "number_succeeded": accepted,
                "number_failed": failed,
                "number_duplicates": duplicates,
                "retryable": false,
            });
            if !error_type.is_empty() {
                rec["error_type"] = Value::String(error_type);
            }
            if !error.is_empty() {
                rec["error_message"] = Value::String(error);
            }
            rows.push((seq, rec));
        }
        let next = if rows.len() > q.per_page as usize {
            rows.truncate(q.per_page as usize);
            rows.last().map(|(seq, _)| seq.to_string())
        } else {
            None
        };
        Ok(BatchPage {
            results: rows.into_iter().map(|(_, v)| v).collect(),
            total_count: total,
            next_cursor: next,
        })
    }
}
