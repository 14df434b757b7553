//! The two searches over raw data: message events and ingest batch records.

use base64::Engine as _;
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Value};

use super::dict::Dict;
use super::{id_list, lock, SqliteStore, StoreError, EXPIRATION_SECS};
use crate::query::{address_of, keyword_matches, BatchQuery, EventQuery};
use crate::store::Facet;
use crate::timefmt;

impl SqliteStore {
    /// One page of stored events, newest first, plus the total matching count and the
    /// cursor of the next page. Events are returned as their stored public-form JSON.
    pub(super) fn search_events_impl(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let mut reader = lock(&self.reader)?;
        reader.conn.execute_batch("BEGIN")?;
        let result = search_events(&mut reader, q);
        let _ = reader.conn.execute_batch("COMMIT");
        result
    }

    /// One page of batch status records (spec §1.7 fields), newest first.
    pub(super) fn search_batches_impl(&self, q: &BatchQuery) -> Result<BatchPage, StoreError> {
        let mut clauses = vec![
            "received_at >= ?".to_string(),
            "received_at < ?".to_string(),
        ];
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(q.from), SqlValue::Integer(q.to)];
        match (q.success, q.error) {
            (true, false) => clauses.push("error_type IS NULL".into()),
            (false, true) => clauses.push("error_type IS NOT NULL".into()),
            _ => {}
        }
        if !q.error_types.is_empty() {
            clauses.push(format!(
                "error_type IN ({})",
                placeholders(q.error_types.len())
            ));
            args.extend(q.error_types.iter().map(|v| SqlValue::Text(v.clone())));
        }
        if !q.batch_ids.is_empty() {
            clauses.push(format!("id IN ({})", placeholders(q.batch_ids.len())));
            args.extend(q.batch_ids.iter().map(|v| SqlValue::Text(v.clone())));
        }
        let filter = clauses.join(" AND ");
        let reader = lock(&self.reader)?;
        let conn = &reader.conn;
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM batches WHERE {filter}"),
            params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        let mut page_filter = filter;
        if let Some(seq) = q.cursor {
            page_filter.push_str(" AND seq < ?");
            args.push(SqlValue::Integer(seq));
        }
        args.push(SqlValue::Integer(i64::from(q.per_page) + 1));
        let mut stmt = conn.prepare(&format!(
            "SELECT seq, id, record_id, error_type, received_at, accepted, failed, duplicates, \
             error FROM batches WHERE {page_filter} ORDER BY seq DESC LIMIT ?"
        ))?;
        let mut rows: Vec<(i64, Value)> = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                let error_type: Option<String> = r.get(3)?;
                let received: i64 = r.get(4)?;
                let mut rec = json!({
                    "type": if error_type.is_some() { "error" } else { "success" },
                    "batch_id": r.get::<_, String>(1)?,
                    "event_id": r.get::<_, String>(2)?,
                    "timestamp": timefmt::iso(received),
                    "expiration_timestamp": timefmt::iso(received + EXPIRATION_SECS),
                    "number_succeeded": r.get::<_, i64>(5)?,
                    "number_failed": r.get::<_, i64>(6)?,
                    "number_duplicates": r.get::<_, i64>(7)?,
                    "retryable": false,
                });
                if let Some(et) = error_type {
                    rec["error_type"] = Value::String(et);
                }
                if let Some(msg) = r.get::<_, Option<String>>(8)? {
                    rec["error_message"] = Value::String(msg);
                }
                Ok((r.get(0)?, rec))
            })?
            .collect::<Result<_, _>>()?;
        let next = if rows.len() > q.per_page as usize {
            rows.truncate(q.per_page as usize);
            rows.last().map(|(seq, _)| seq.to_string())
        } else {
            None
        };
        Ok(BatchPage {
            results: rows.into_iter().map(|(_, v)| v).collect(),
            total_count: total as u64,
            next_cursor: next,
        })
    }
}

fn search_events(reader: &mut super::Reader, q: &EventQuery) -> Result<EventPage, StoreError> {
    reader.dict.refresh(&reader.conn)?;
    // The times of the oldest and newest stored events, for a recipient search only: two
    // index probes, as two subqueries (`SELECT MIN(ts), MAX(ts)` in one select scans a
    // whole index: about a second at 10 million events).
    let span: Option<(i64, i64)> = if q.recipients.is_empty() {
        None
    } else {
        reader.conn.query_row(
            "SELECT (SELECT MIN(ts) FROM events), (SELECT MAX(ts) FROM events)",
            [],
            |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
        )?
    };
    let (filter, mut args) = match event_filter(&reader.dict, q, span) {
        Some(f) => f,
        None => {
            return Ok(EventPage {
                results: Vec::new(),
                total_count: 0,
                next_cursor: None,
            })
        }
    };
    let conn = &reader.conn;
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM events WHERE {filter}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let mut page_filter = filter;
    if let Some((ts, id)) = &q.cursor {
        page_filter.push_str(" AND (ts < ? OR (ts = ? AND event_id < ?))");
        args.push(SqlValue::Integer(*ts));
        args.push(SqlValue::Integer(*ts));
        args.push(SqlValue::Text(id.clone()));
    }
    args.push(SqlValue::Integer(i64::from(q.per_page) + 1));
    let mut stmt = conn.prepare(&format!(
        "SELECT ts, event_id, json FROM events WHERE {page_filter} \
         ORDER BY ts DESC, event_id DESC LIMIT ?"
    ))?;
    let mut rows: Vec<(i64, String, String)> = stmt
        .query_map(params_from_iter(args.iter()), |r| {
            let json = super::packed::unpack(&r.get::<_, Vec<u8>>(2)?).unwrap_or_default();
            Ok((r.get(0)?, r.get(1)?, json))
        })?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() > q.per_page as usize {
        rows.truncate(q.per_page as usize);
        rows.last().map(|(ts, id, _)| encode_event_cursor(*ts, id))
    } else {
        None
    };
    Ok(EventPage {
        results: rows.into_iter().map(|(_, _, j)| j).collect(),
        total_count: total as u64,
        next_cursor: next,
    })
}

/// The `WHERE` clause of an events search and its parameters, `None` when nothing can
/// match. Facet filters become tests on the event's dims: the values are looked up in the
/// dictionary once and every sender-side filter is one `sdim IN (…)` (indexed), every
/// recipient-side one `rdim IN (…)`. Fields that are no facet (subject, reason,
/// friendly-from, transmission and A/B test ids) are read from the stored JSON.
fn event_filter(
    dict: &Dict,
    q: &EventQuery,
    span: Option<(i64, i64)>,
) -> Option<(String, Vec<SqlValue>)> {
    if q.impossible {
        return None;
    }
    let mut clauses = vec!["ts >= ?".to_string(), "ts < ?".to_string()];
    let mut args: Vec<SqlValue> = vec![SqlValue::Integer(q.from), SqlValue::Integer(q.to)];
    if !q.recipients.is_empty() {
        // The recipient index is keyed by hour: name every hour of the range (clamped to
        // the events there are) so that the search seeks instead of scanning.
        let (first, last) = span.unwrap_or((q.from, q.from));
        let (from, to) = (q.from.max(first), q.to.min(last + 1));
        if from >= to {
            return None;
        }
        let hours: Vec<i64> = (from.div_euclid(3600)..=(to - 1).div_euclid(3600)).collect();
        clauses.push(format!(
            "(ts / 3600) IN ({}) AND rcpt_to IN ({})",
            id_list(&hours),
            placeholders(q.recipients.len())
        ));
        args.extend(q.recipients.iter().map(|v| SqlValue::Text(v.clone())));
    }
    let text_filters: [(&str, &Vec<String>); 4] = [
        ("type", &q.events),
        ("message_id", &q.message_ids),
        ("bounce_class", &q.bounce_classes),
        ("event_id", &q.event_ids),
    ];
    for (col, values) in text_filters {
        if !values.is_empty() {
            clauses.push(format!("{col} IN ({})", placeholders(values.len())));
            args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
        }
    }
    let subaccounts: Vec<String> = q.subaccounts.iter().map(|n| n.to_string()).collect();
    let sender: [(Facet, &Vec<String>); 6] = [
        (Facet::Subaccount, &subaccounts),
        (Facet::Campaign, &q.campaigns),
        (Facet::Template, &q.templates),
        (Facet::IpPool, &q.ip_pools),
        (Facet::SendingIp, &q.sending_ips),
        (Facet::SendingDomain, &q.sending_domains),
    ];
    let recipient: [(Facet, &Vec<String>); 3] = [
        (Facet::Domain, &q.recipient_domains),
        (Facet::MailboxProvider, &q.mailbox_providers),
        (Facet::Region, &q.mailbox_provider_regions),
    ];
    // A dim passes when each of its facets that is filtered has one of the values.
    let passes = |lists: &[(Facet, &Vec<String>)], value: &dyn Fn(Facet) -> Option<i64>| {
        lists
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .all(|(f, values)| {
                value(*f).is_some_and(|id| values.iter().any(|x| x == dict.value(id)))
            })
    };
    for (col, lists, ids) in [
        (
            "sdim",
            &sender[..],
            dict.sender.ids_where(|v| passes(&sender, v)),
        ),
        (
            "rdim",
            &recipient[..],
            dict.recipient.ids_where(|v| passes(&recipient, v)),
        ),
    ] {
        if lists.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        if ids.is_empty() {
            return None;
        }
        clauses.push(format!("{col} IN ({})", id_list(&ids)));
    }
    let joined = |v: &[String]| SqlValue::Text(v.join(TERM_SEPARATOR));
    if !q.subjects.is_empty() {
        clauses.push("petrel_keyword(?, json_extract(petrel_json(json), '$.subject')) = 1".into());
        args.push(joined(&q.subjects));
    }
    if !q.reasons.is_empty() {
        clauses.push(
            "(petrel_keyword(?, json_extract(petrel_json(json), '$.reason')) = 1 \
             OR petrel_keyword(?, json_extract(petrel_json(json), '$.raw_reason')) = 1)"
                .into(),
        );
        args.push(joined(&q.reasons));
        args.push(joined(&q.reasons));
    }
    if !q.ab_tests.is_empty() {
        clauses
            .push("petrel_keyword(?, json_extract(petrel_json(json), '$.ab_test_id')) = 1".into());
        args.push(joined(&q.ab_tests));
    }
    if !q.from_addresses.is_empty() {
        clauses.push(
            "petrel_address(?, json_extract(petrel_json(json), '$.friendly_from')) = 1".into(),
        );
        args.push(joined(&q.from_addresses));
    }
    for (path, values) in [
        ("$.transmission_id", &q.transmissions),
        ("$.ab_test_version", &q.ab_test_versions),
    ] {
        if !values.is_empty() {
            clauses.push(format!(
                "CAST(json_extract(petrel_json(json), '{path}') AS TEXT) IN ({})",
                placeholders(values.len())
            ));
            args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
        }
    }
    Some((clauses.join(" AND "), args))
}

/// Separates the terms of a list passed to `petrel_keyword` and `petrel_address`.
const TERM_SEPARATOR: &str = "\u{1f}";

/// Registers the SQL functions the events search uses on `conn`:
/// `petrel_keyword(terms, value)` (1 when one of the terms is a keyword of the value,
/// SparkPost's token rule), `petrel_address(addresses, value)` (1 when the address of
/// a `From`-style value is one of the addresses) and `petrel_json(stored)` (an event's
/// JSON text from its packed form, for `json_extract`).
pub(super) fn register_functions(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("petrel_json", 1, flags, |ctx| {
        let stored = ctx.get_raw(0).as_blob_or_null()?.unwrap_or_default();
        Ok(super::packed::unpack(stored))
    })?;
    conn.create_scalar_function("petrel_keyword", 2, flags, |ctx| {
        let terms: String = ctx.get(0)?;
        let Some(value) = ctx.get::<Option<String>>(1)? else {
            return Ok(0);
        };
        Ok(i64::from(
            terms
                .split(TERM_SEPARATOR)
                .any(|t| keyword_matches(t, &value, false)),
        ))
    })?;
    conn.create_scalar_function("petrel_address", 2, flags, |ctx| {
        let addresses: String = ctx.get(0)?;
        let Some(value) = ctx.get::<Option<String>>(1)? else {
            return Ok(0);
        };
        let a = address_of(&value);
        Ok(i64::from(addresses.split(TERM_SEPARATOR).any(|x| x == a)))
    })?;
    Ok(())
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn encode_event_cursor(ts: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ts}:{id}"))
}

/// Decodes a cursor made by a previous events page.
pub(crate) fn decode_event_cursor(s: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (ts, id) = text.split_once(':')?;
    Some((ts.parse().ok()?, id.to_string()))
}

/// A page of event search results.
#[derive(Debug)]
pub struct EventPage {
    /// Events as stored (the uploaded event object, JSON text), newest first; the HTTP layer
    /// converts them to the public form.
    pub results: Vec<String>,
    /// How many events match the filters across all pages.
    pub total_count: u64,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of batch status records.
#[derive(Debug)]
pub struct BatchPage {
    /// Records, newest first.
    pub results: Vec<Value>,
    /// How many records match across all pages.
    pub total_count: u64,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        let c = encode_event_cursor(1767225600, "4812739012764551233");
        assert_eq!(
            decode_event_cursor(&c),
            Some((1767225600, "4812739012764551233".to_string()))
        );
        assert_eq!(decode_event_cursor("!!"), None);
    }
}
