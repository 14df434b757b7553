//! The SQLite backend (embedded default): raw events, batch records, API keys, the Metrics
//! rollups, the daily Signals counters and recipients' engagement state in one file.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one writer anyway)
//! while a separate reader connection serves queries; WAL mode lets the two run at the same
//! time. A batch is one transaction: raw events, rollups and engagement state move together.
//!
//! Layout (details in `docs/signals-service.md`):
//! - `events`, `batches`, `api_keys`: raw events for the search, batch records, keys.
//! - dictionaries (`dict`): facet values, sender and recipient dims, reason texts → ids.
//! - Metrics counter tables per shape and increment, reason tables, daily Signals counters:
//!   [`catalog`] lists them all.
//! - `recipients`: first-mailed, last-mailed and last-engaged time per recipient (cohorts).

mod catalog;
mod dict;
mod ingest;
mod packed;
mod read;
mod retention;
mod rollup;
mod search;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

pub use search::{BatchPage, EventPage};

use super::{
    AnalyticsStore, DailyRow, Expired, Facet, PreparedBatch, ReasonQuery, ReasonRow, Retention,
    RollupQuery, RollupRow, SignalsQuery, StoreError,
};
use crate::query::{BatchQuery, EventQuery};
use crate::timefmt;
use crate::Permission;

pub(crate) use search::decode_event_cursor;

/// A group commit takes waiting batches up to this many events: several uploads' worth,
/// few enough that a group's transaction stays well under a second.
const GROUP_EVENTS: usize = 40_000;

/// How long a batch status record claims its batch stays downloadable (spec §1.7 example).
const EXPIRATION_SECS: i64 = 10 * 24 * 3600;

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

/// The writer connection and its copy of the dictionaries.
struct Writer {
    conn: Connection,
    dict: dict::Dict,
    /// False after a rolled-back transaction: the copy may name rows that do not exist.
    dict_valid: bool,
    /// The rollup upserts' SQL text.
    upsert_sql: rollup::UpsertSql,
}

/// The reader connection and its copy of the dictionaries (brought up to date per read).
struct Reader {
    conn: Connection,
    dict: dict::Dict,
}

/// The SQLite store; share it behind an `Arc` between the HTTP router and the daemon.
pub struct SqliteStore {
    /// Batches waiting for the writer (group commit).
    queue: super::group_commit::GroupQueue<ingest::Queued>,
    writer: Mutex<Writer>,
    reader: Mutex<Reader>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    ts INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    rcpt_to TEXT,
    message_id TEXT,
    bounce_class TEXT,
    link_name TEXT,
    machine INTEGER NOT NULL,
    cohort INTEGER,
    sdim INTEGER NOT NULL,
    rdim INTEGER NOT NULL,
    json BLOB NOT NULL
);
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
    last_engaged INTEGER,
    last_mailed INTEGER
) WITHOUT ROWID;
";

/// `PRAGMA user_version` of the current layout: 3 = events without an `event_id` key, their
/// JSON packed (`packed`). A database of an earlier layout is refused at open.
const LAYOUT_VERSION: i64 = 3;

/// The indexes of `events`, five B-trees with the table (each is written per event).
///
/// `events_ts` serves ranges and paging and is also the de-duplication key: an event is a
/// duplicate when one with the same timestamp and `event_id` is stored (a re-sent event
/// carries both unchanged). Keyed by time first, a batch's entries land together at the
/// end of the index; a unique index on `event_id` alone took each at a random place.
///
/// The recipient index is keyed by the hour first (`ts / 3600`, then the recipient) for the
/// same reason: by recipient alone, a batch of 5,000 events dirtied 5,000 of its pages
/// (20 MiB written to the WAL, and again at checkpoint). A recipient search seeks once per
/// hour of its range (see `search`). The others serve the message history (enrichment,
/// uniques) and facet searches (one integer index on the sender dim instead of one text
/// index per facet).
const EVENT_INDEXES: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS events_ts ON events(ts, event_id);
CREATE INDEX IF NOT EXISTS events_rcpt_hour ON events(ts / 3600, rcpt_to) WHERE rcpt_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_message ON events(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_sdim ON events(sdim, ts);
";

/// Ids as an SQL list (`1,2,3`): ids come from the dictionaries, never from users.
fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

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

/// Opens a connection. `synchronous` is FULL on the writer: in WAL mode that is one fsync
/// of the WAL per committed batch, so a batch the ingest API acknowledged survives a power
/// loss (NORMAL would fsync only at checkpoints and could lose the last batches, which
/// their uploader has already deleted). A batch of thousands of events pays one fsync.
fn open_conn(path: &Path, writer: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if writer { "FULL" } else { "NORMAL" })?;
    // 64 MiB of page cache: inserts touch many B-tree pages (event indexes, rollups) and the
    // default 2 MiB cache makes them re-read pages from the OS on every batch.
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Checkpoint every ~40 MiB of WAL instead of 4 MiB: pages rewritten by several batches
    // are then copied back to the database once, not once per batch.
    conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
    // Ingest prepares one upsert per rollup table (about 40 with the week tables) and set of
    // counter families a row writes, well over a thousand in all; with 512 the cache kept
    // evicting them and re-preparing took ~6 % of ingest CPU (perf, analytics bench).
    // Reads use one statement per table shape.
    conn.set_prepared_statement_cache_capacity(4096);
    Ok(conn)
}

/// Refuses a database of another layout (its tables would not match the statements), and
/// stamps a new one with the current layout. Nobody ran an earlier layout in production, so
/// there is no migration: re-ingest into a new file, or delete the old one.
fn check_layout(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let has_tables: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table')",
        [],
        |r| r.get(0),
    )?;
    if has_tables && version != LAYOUT_VERSION {
        return Err(StoreError::Layout {
            path: path.display().to_string(),
            found: version,
            need: LAYOUT_VERSION,
        });
    }
    conn.pragma_update(None, "user_version", LAYOUT_VERSION)?;
    Ok(())
}

/// Creates the rollup tables and dictionaries that are missing. A week table missing from a
/// database that has its day table (one made before week tables existed) is filled from
/// the day rows, so reads that take whole weeks from it see the days stored before.
fn create_rollup_tables(conn: &Connection) -> Result<(), StoreError> {
    let missing_weeks: Vec<catalog::MetricTable> = catalog::metric_tables()
        .into_iter()
        .filter(|t| t.weekly)
        .filter(|t| !table_exists(conn, &t.name()).unwrap_or(true))
        .collect();
    conn.execute_batch(&catalog::ddl())?;
    for t in missing_weeks {
        conn.execute_batch(&catalog::week_backfill(t))?;
    }
    Ok(())
}

/// Whether the database has a table called `name`.
fn table_exists(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = open_conn(path, true)?;
        check_layout(&conn, path)?;
        conn.execute_batch(SCHEMA)?;
        create_rollup_tables(&conn)?;
        conn.execute_batch(EVENT_INDEXES)?;
        let writer = Writer {
            conn,
            dict: dict::Dict::default(),
            dict_valid: false,
            upsert_sql: rollup::UpsertSql::default(),
        };
        let reader = open_conn(path, false)?;
        search::register_functions(&reader)?;
        Ok(SqliteStore {
            queue: super::group_commit::GroupQueue::new(GROUP_EVENTS),
            writer: Mutex::new(writer),
            reader: Mutex::new(Reader {
                conn: reader,
                dict: dict::Dict::default(),
            }),
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
            .conn
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

    /// A database of another layout is refused with a message that says what to do, and
    /// left as it was; one of this layout opens again.
    #[test]
    fn other_layouts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        {
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(
                "CREATE TABLE events (event_id TEXT PRIMARY KEY, json TEXT);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let err = SqliteStore::open(&old).err().expect("refused").to_string();
        assert!(
            err.contains("database layout 2, this petrel needs layout 3")
                && err.contains("re-ingest"),
            "{err}"
        );
        let conn = Connection::open(&old).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);

        let new = dir.path().join("new.db");
        drop(SqliteStore::open(&new).unwrap());
        assert!(SqliteStore::open(&new).is_ok());
    }

    /// The facet filters must use their indexes (a `col IN (…)` term implies
    /// `col IS NOT NULL` for the partial ones), or search would scan the whole time range.
    #[test]
    fn facet_filters_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let reader = lock(&store.reader).unwrap();
        let conn = &reader.conn;
        for (col, index) in [
            ("sdim", "events_sdim"),
            ("(ts / 3600) IN (0, 1) AND rcpt_to", "events_rcpt_hour"),
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
