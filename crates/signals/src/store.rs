//! The SQLite database: events, ingest batch outcomes and API keys.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one writer anyway)
//! while a separate reader connection serves searches; WAL mode lets the two run at the same
//! time. Decompression and JSON validation happen before the writer lock is taken, so two
//! uploads use both cores and only the inserts are serial.

use std::io::Read;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use base64::Engine as _;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::{json, Value};

use crate::event::{self, StoredEvent};
use crate::timefmt;
use crate::{BatchQuery, EventQuery, Permission};

/// The most uncompressed NDJSON one batch may hold: SparkPost's 5 MB, read as the safe
/// (uncompressed, MiB) interpretation of spec §1.3.
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// How long a batch status record claims its batch stays downloadable (spec §1.7 example).
const EXPIRATION_SECS: i64 = 10 * 24 * 3600;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused; the database is unusable or full.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The operating system random generator failed (needed for keys and batch ids).
    #[error("random number generator failed")]
    Random,
    /// A mutex was poisoned by a panicking thread.
    #[error("database lock poisoned")]
    Poisoned,
}

/// Why an ingest request is refused outright (no batch record is written).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch is larger than [`MAX_BATCH_BYTES`] before or after decompression.
    #[error("batch exceeds {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for IngestError {
    fn from(e: rusqlite::Error) -> Self {
        IngestError::Store(StoreError::Sqlite(e))
    }
}

/// The recorded outcome of one ingest batch, as returned by the POST and kept for
/// `GET /api/v1/events/ingest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    /// The batch id (UUID v4) returned to the client.
    pub id: String,
    /// `None` for success, else SparkPost's `error_type` (`validation`, `decompress`,
    /// `duplicate_batch`, `empty_batch`).
    pub error_type: Option<&'static str>,
    /// Events stored.
    pub accepted: u64,
    /// Lines dropped by validation.
    pub failed: u64,
    /// Events whose `event_id` was already stored.
    pub duplicates: u64,
}

/// The event store; share it behind an `Arc` between the HTTP router and the daemon.
pub struct SignalsStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    campaign_id TEXT,
    rcpt_to TEXT,
    subaccount_id INTEGER,
    ip_pool TEXT,
    sending_ip TEXT,
    sending_domain TEXT,
    message_id TEXT,
    bounce_class TEXT,
    batch_id TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts, event_id);
CREATE INDEX IF NOT EXISTS events_campaign ON events(campaign_id) WHERE campaign_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_rcpt ON events(rcpt_to) WHERE rcpt_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_pool ON events(ip_pool) WHERE ip_pool IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_ip ON events(sending_ip) WHERE sending_ip IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_sdomain ON events(sending_domain) WHERE sending_domain IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_message ON events(message_id) WHERE message_id IS NOT NULL;
-- bounce_class has a dozen values: an index would cost every insert and barely narrow a
-- search, which the time-range index already bounds.
DROP INDEX IF EXISTS events_bounce;
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    record_id TEXT NOT NULL,
    error_type TEXT,
    received_at INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS batches_hash ON batches(content_hash);
CREATE INDEX IF NOT EXISTS batches_received ON batches(received_at);
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    permissions TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

fn lock(m: &Mutex<Connection>) -> Result<MutexGuard<'_, Connection>, StoreError> {
    m.lock().map_err(|_| StoreError::Poisoned)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    use ring::rand::SecureRandom;
    let mut buf = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| StoreError::Random)?;
    Ok(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn uuid_v4() -> Result<String, StoreError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 64 MiB of page cache: with ten secondary indexes, inserts touch many B-tree pages and
    // the default 2 MiB cache makes them re-read pages from the OS on every batch.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoint every ~40 MiB of WAL instead of 4 MiB: index pages rewritten by several
    // batches are then copied back to the database once, not once per batch.
    conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
    Ok(conn)
}

/// Result of decoding a body: the NDJSON, or the batch-level error it deserves.
enum Decoded {
    Ndjson(Vec<u8>),
    Empty,
    Corrupt,
}

fn decompress(body: &[u8]) -> Result<Decoded, IngestError> {
    if body.is_empty() {
        return Ok(Decoded::Empty);
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(6).min(MAX_BATCH_BYTES + 1));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(MAX_BATCH_BYTES as u64 + 1);
    if dec.read_to_end(&mut out).is_err() {
        return Ok(Decoded::Corrupt);
    }
    if out.len() > MAX_BATCH_BYTES {
        return Err(IngestError::TooLarge);
    }
    Ok(Decoded::Ndjson(out))
}

impl SignalsStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = open_conn(path)?;
        writer.execute_batch(SCHEMA)?;
        let reader = open_conn(path)?;
        Ok(SignalsStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    /// Creates an API key and returns it; only its SHA-256 is stored, so a database leak
    /// does not leak usable keys. The key is 40 lowercase hex characters like SparkPost's.
    pub fn create_api_key(
        &self,
        label: &str,
        permissions: &[Permission],
    ) -> Result<String, StoreError> {
        let key = hex(&random_bytes::<20>()?);
        let perms: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
        lock(&self.writer)?.execute(
            "INSERT INTO api_keys (key_hash, label, permissions, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha256_hex(key.as_bytes()), label, perms.join(","), timefmt::now_secs()],
        )?;
        Ok(key)
    }

    /// Registers a key the operator already has (the `api-key` of `<signals>` when the
    /// daemon runs its own service), replacing the label and permissions of an existing one.
    pub fn ensure_api_key(
        &self,
        key: &str,
        label: &str,
        permissions: &[Permission],
    ) -> Result<(), StoreError> {
        let perms: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
        lock(&self.writer)?.execute(
            "INSERT INTO api_keys (key_hash, label, permissions, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key_hash) DO UPDATE SET label = excluded.label, permissions = excluded.permissions",
            params![sha256_hex(key.as_bytes()), label, perms.join(","), timefmt::now_secs()],
        )?;
        Ok(())
    }

    /// The permissions of `key`, or `None` for an unknown key. Lookup is by hash, so the
    /// comparison never touches the secret itself.
    pub fn key_permissions(&self, key: &str) -> Result<Option<Vec<Permission>>, StoreError> {
        let perms: Option<String> = lock(&self.reader)?
            .query_row(
                "SELECT permissions FROM api_keys WHERE key_hash = ?1",
                [sha256_hex(key.as_bytes())],
                |r| r.get(0),
            )
            .optional()?;
        Ok(perms.map(|p| p.split(',').filter_map(Permission::parse).collect()))
    }

    /// Processes one uploaded batch (the gzip body) and records its outcome. Refuses only
    /// oversize batches; every other problem becomes the batch's `error_type`, as at
    /// SparkPost, where the upload itself is answered 200.
    pub fn ingest(&self, body: &[u8]) -> Result<BatchOutcome, IngestError> {
        let id = uuid_v4()?;
        let content_hash = sha256_hex(body);
        let mut outcome = BatchOutcome {
            id,
            error_type: None,
            accepted: 0,
            failed: 0,
            duplicates: 0,
        };
        let mut events: Vec<StoredEvent> = Vec::new();
        let mut first_error: Option<String> = None;
        match decompress(body)? {
            Decoded::Empty => outcome.error_type = Some("empty_batch"),
            Decoded::Corrupt => outcome.error_type = Some("decompress"),
            Decoded::Ndjson(text) => {
                for (n, line) in text.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    match event::parse_line(line) {
                        Ok(ev) => events.push(ev),
                        Err(e) => {
                            outcome.failed += 1;
                            first_error.get_or_insert_with(|| format!("line {}: {e}", n + 1));
                        }
                    }
                }
                if events.is_empty() && outcome.failed == 0 {
                    outcome.error_type = Some("empty_batch");
                }
            }
        }

        let mut conn = lock(&self.writer)?;
        let tx = conn.transaction()?;
        if outcome.error_type.is_none() {
            let seen: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM batches WHERE content_hash = ?1 \
                     AND (error_type IS NULL OR error_type = 'validation') LIMIT 1",
                    [&content_hash],
                    |r| r.get(0),
                )
                .optional()?;
            if seen.is_some() {
                outcome.error_type = Some("duplicate_batch");
                outcome.failed = 0;
                first_error = None;
                events.clear();
            }
        }
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (event_id, ts, type, campaign_id, rcpt_to, \
                 subaccount_id, ip_pool, sending_ip, sending_domain, message_id, bounce_class, \
                 batch_id, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for ev in &mut events {
                crate::enrich::enrich(&tx, ev)?;
                let n = insert.execute(params![
                    ev.event_id,
                    ev.timestamp,
                    ev.event_type,
                    ev.campaign_id,
                    ev.rcpt_to,
                    ev.subaccount_id,
                    ev.ip_pool,
                    ev.sending_ip,
                    ev.sending_domain,
                    ev.message_id,
                    ev.bounce_class,
                    outcome.id,
                    ev.json,
                ])?;
                if n == 1 {
                    outcome.accepted += 1;
                } else {
                    outcome.duplicates += 1;
                }
            }
        }
        if outcome.error_type.is_none() && outcome.failed > 0 {
            outcome.error_type = Some("validation");
        }
        tx.execute(
            "INSERT INTO batches (id, record_id, error_type, received_at, content_hash, accepted, \
             failed, duplicates, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                outcome.id,
                uuid_v4()?,
                outcome.error_type,
                timefmt::now_secs(),
                content_hash,
                outcome.accepted as i64,
                outcome.failed as i64,
                outcome.duplicates as i64,
                first_error,
            ],
        )?;
        tx.commit()?;
        Ok(outcome)
    }

    /// One page of stored events, newest first, plus the total matching count and the
    /// cursor of the next page. Events are returned as their stored public-form JSON.
    pub fn search_events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        let mut clauses = vec!["ts >= ?".to_string(), "ts < ?".to_string()];
        let mut args: Vec<SqlValue> = vec![SqlValue::Integer(q.from), SqlValue::Integer(q.to)];
        let text_filters: [(&str, &Vec<String>); 9] = [
            ("type", &q.events),
            ("campaign_id", &q.campaigns),
            ("rcpt_to", &q.recipients),
            ("ip_pool", &q.ip_pools),
            ("sending_ip", &q.sending_ips),
            ("sending_domain", &q.sending_domains),
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
    pub fn search_batches(&self, q: &BatchQuery) -> Result<BatchPage, StoreError> {
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

    /// The facet filters must use their partial indexes (a `col IN (…)` term implies
    /// `col IS NOT NULL`), or search would scan the whole time range.
    #[test]
    fn facet_filters_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SignalsStore::open(&dir.path().join("s.db")).unwrap();
        let conn = lock(&store.reader).unwrap();
        for (col, index) in [
            ("campaign_id", "events_campaign"),
            ("rcpt_to", "events_rcpt"),
            ("ip_pool", "events_pool"),
            ("message_id", "events_message"),
        ] {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT json FROM events WHERE ts >= 0 AND ts < 10 \
                 AND {col} IN ('a','b') ORDER BY ts DESC, event_id DESC LIMIT 5"
            );
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{col}: {plan:?}");
        }
    }

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
