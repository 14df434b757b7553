//! The two searches over raw data: message events and ingest batch records.

use base64::Engine as _;
use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Value};

use super::{lock, SqliteStore, StoreError, EXPIRATION_SECS};
use crate::query::{BatchQuery, EventQuery};
use crate::timefmt;

impl SqliteStore {
    /// One page of stored events, newest first, plus the total matching count and the
    /// cursor of the next page. Events are returned as their stored public-form JSON.
    pub(super) fn search_events_impl(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let mut clauses = vec!["ts >= ?".to_string(), "ts < ?".to_string()];
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(q.from), SqlValue::Integer(q.to)];
        let text_filters: [(&str, &Vec<String>); 12] = [
            ("type", &q.events),
            ("campaign_id", &q.campaigns),
            ("rcpt_to", &q.recipients),
            ("ip_pool", &q.ip_pools),
            ("sending_ip", &q.sending_ips),
            ("sending_domain", &q.sending_domains),
            ("message_id", &q.message_ids),
            ("bounce_class", &q.bounce_classes),
            ("event_id", &q.event_ids),
            ("recipient_domain", &q.recipient_domains),
            ("mailbox_provider", &q.mailbox_providers),
            ("template_id", &q.templates),
        ];
        for (col, values) in text_filters {
            if q.impossible {
                clauses.push("0".into());
                break;
            }
            if !values.is_empty() {
                clauses.push(format!("{col} IN ({})", placeholders(values.len())));
                args.extend(values.iter().map(|v| SqlValue::Text(v.clone())));
            }
        }
        if !q.subaccounts.is_empty() {
            clauses.push(format!(
                "subaccount_id IN ({})",
                placeholders(q.subaccounts.len())
            ));
            args.extend(q.subaccounts.iter().map(|v| SqlValue::Integer(*v)));
        }
        let filter = clauses.join(" AND ");
        let conn = lock(&self.reader)?;
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
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
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
        let conn = lock(&self.reader)?;
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
