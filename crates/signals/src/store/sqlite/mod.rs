//! The SQLite backend (embedded default): raw events, batch records, API keys, the Metrics
//! rollups, the daily Signals counters and recipients' engagement state in one file.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one writer anyway)
//! while a separate reader connection serves queries; WAL mode lets the two run at the same
//! time. A batch is one transaction: raw events, rollups and engagement state move together.
//!
//! Layout (details in `docs/signals-service.md`):
//! - `dims`: one row per distinct facet tuple of a "cube" (a subset of the facets). Rollup
//!   rows are keyed by `(dim, bucket)`, so a row is a few integers, and filters run on the
//!   small `dims` table.
//! - `roll_<cube>_<increment>`: Metrics counters per dim and minute / hour / day bucket.
//!   Cubes: `full` (every facet), `sender` (no recipient side: small, for campaign / pool /
//!   IP / sending-domain reports), `recipient` (subaccount and recipient side; hour and day).
//! - `roll_reason_<increment>`: bounce, delay, rejection and link counts per reason.
//! - `signals_day`: the daily Signals counters per `signals` cube dim.
//! - `recipients`: first-mailed and last-engaged time per recipient (cohorts).

mod ingest;
mod read;
mod retention;
mod rollup;
mod search;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

pub use search::{BatchPage, EventPage};

use super::{
    AnalyticsStore, DailyRow, Dims, Expired, Facet, PreparedBatch, ReasonQuery, ReasonRow,
    Retention, RollupQuery, RollupRow, SignalsQuery,
};
use crate::query::{BatchQuery, EventQuery};
use crate::timefmt;
use crate::Permission;

pub(crate) use search::decode_event_cursor;

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

/// The writer connection and what it caches: facet tuples → dim ids, reasons → ids.
struct Writer {
    conn: Connection,
    dims: HashMap<(i64, Dims), i64>,
    reasons: HashMap<(i64, i64, String), i64>,
    /// False after a rolled-back transaction: cached ids may name rows that do not exist.
    caches_valid: bool,
}

/// The SQLite store; share it behind an `Arc` between the HTTP router and the daemon.
pub struct SqliteStore {
    writer: Mutex<Writer>,
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
CREATE TABLE IF NOT EXISTS recipients (
    rcpt TEXT PRIMARY KEY,
    first_mailed INTEGER,
    last_engaged INTEGER
) WITHOUT ROWID;
";

/// Columns added to `events` after the first release: (name, type). Added on open when
/// missing, so an existing database keeps working.
const EVENT_COLUMNS: &[(&str, &str)] = &[
    ("recipient_domain", "TEXT"),
    ("mailbox_provider", "TEXT"),
    ("template_id", "TEXT"),
    ("link_name", "TEXT"),
    ("machine", "INTEGER"),
    ("cohort", "INTEGER"),
];

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
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
    // 64 MiB of page cache: inserts touch many B-tree pages (event indexes, rollups) and the
    // default 2 MiB cache makes them re-read pages from the OS on every batch.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoint every ~40 MiB of WAL instead of 4 MiB: pages rewritten by several batches
    // are then copied back to the database once, not once per batch.
    conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
    // Ingest uses about twenty statements (event insert, history, recipients, dims, eight
    // rollup upserts, reasons, daily counters); the default cache of 16 would re-prepare
    // the wide upserts on every batch.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn add_missing_event_columns(conn: &Connection) -> Result<(), StoreError> {
    let have: Vec<String> = conn
        .prepare("PRAGMA table_info(events)")?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    for (name, ty) in EVENT_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {name} {ty}"))?;
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_conn(path)?;
        conn.execute_batch(SCHEMA)?;
        add_missing_event_columns(&conn)?;
        rollup::create_tables(&conn)?;
        let reader = open_conn(path)?;
        Ok(SqliteStore {
            writer: Mutex::new(Writer {
                conn,
                dims: HashMap::new(),
                reasons: HashMap::new(),
                caches_valid: false,
            }),
            reader: Mutex::new(reader),
        })
    }
}

impl AnalyticsStore for SqliteStore {
    fn create_api_key(
        &self,
        label: &str,
        permissions: &[Permission],
    ) -> Result<String, StoreError> {
        let key = hex(&random_bytes::<20>()?);
        self.ensure_api_key(&key, label, permissions)?;
        Ok(key)
    }

    fn ensure_api_key(
        &self,
        key: &str,
        label: &str,
        permissions: &[Permission],
    ) -> Result<(), StoreError> {
        let perms: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
        lock(&self.writer)?.conn.execute(
            "INSERT INTO api_keys (key_hash, label, permissions, created_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key_hash) DO UPDATE SET label = excluded.label, permissions = excluded.permissions",
            params![sha256_hex(key.as_bytes()), label, perms.join(","), timefmt::now_secs()],
        )?;
        Ok(())
    }

    fn key_permissions(&self, key: &str) -> Result<Option<Vec<Permission>>, StoreError> {
        let perms: Option<String> = lock(&self.reader)?
            .query_row(
                "SELECT permissions FROM api_keys WHERE key_hash = ?1",
                [sha256_hex(key.as_bytes())],
                |r| r.get(0),
            )
            .optional()?;
        Ok(perms.map(|p| p.split(',').filter_map(Permission::parse).collect()))
    }

    fn ingest(&self, batch: PreparedBatch) -> Result<BatchOutcome, StoreError> {
        self.ingest_impl(batch)
    }

    fn search_events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        self.search_events_impl(q)
    }

    fn search_batches(&self, q: &BatchQuery) -> Result<BatchPage, StoreError> {
        self.search_batches_impl(q)
    }

    fn facet_values(&self, facet: Facet) -> Result<Vec<String>, StoreError> {
        self.facet_values_impl(facet)
    }

    fn rollups(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError> {
        self.rollups_impl(q)
    }

    fn reasons(&self, q: &ReasonQuery<'_>) -> Result<Vec<ReasonRow>, StoreError> {
        self.reasons_impl(q)
    }

    fn daily(&self, q: &SignalsQuery) -> Result<Vec<DailyRow>, StoreError> {
        self.daily_impl(q)
    }

    fn expire(&self, retention: &Retention, now: i64) -> Result<Expired, StoreError> {
        self.expire_impl(retention, now)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The facet filters must use their partial indexes (a `col IN (…)` term implies
    /// `col IS NOT NULL`), or search would scan the whole time range.
    #[test]
    fn facet_filters_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
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
}
