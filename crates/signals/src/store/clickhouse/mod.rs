//! The ClickHouse backend (scale-out): the same [`AnalyticsStore`] answers as the SQLite
//! backend, over a ClickHouse server that any number of service instances share.
//!
//! - [`schema`]: tables, materialized views, version check (18.16 and later);
//! - [`ingest`]: one `INSERT` per group of waiting batches (group commit), counts computed
//!   here exactly as SQLite's;
//! - [`lease`]: one instance ingests at a time (exact de-duplication across instances);
//! - [`read`], [`search`]: Metrics / Signals rollup reads, events and batch searches;
//! - [`retention`]: whole day partitions dropped.
//!
//! Nothing is kept in the service between requests except a short cache of API-key
//! permissions, so instances are interchangeable. `docs/signals-service.md` ("ClickHouse")
//! has the layout and the reasons behind it.

mod http;
mod ingest;
mod lease;
mod read;
mod retention;
mod rowbinary;
mod schema;
mod search;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rowbinary::{RowReader, RowWriter};

use super::counting::Cube;
use super::{
    AnalyticsStore, BatchOutcome, BatchPage, DailyRow, Dims, EventPage, Expired, Facet,
    PreparedBatch, ReasonQuery, ReasonRow, Retention, RollupQuery, RollupRow, SignalsQuery,
    StoreError,
};
use crate::query::{BatchQuery, EventQuery};
use crate::timefmt;
use crate::Permission;

/// Where the ClickHouse store lives (`<signals-service>` `clickhouse-*` directives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// The HTTP interface, e.g. `http://127.0.0.1:8123` (`https://` works too).
    pub url: String,
    /// Database name (created when missing); letters, digits and `_`.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (empty for none).
    pub password: String,
    /// Appends every statement sent (JSON lines) to this file: the test suite replays them
    /// against current ClickHouse (chDB) to check that both engines accept the SQL.
    pub statement_log: Option<PathBuf>,
}

impl Default for ClickHouseSettings {
    fn default() -> Self {
        ClickHouseSettings {
            url: "http://127.0.0.1:8123".into(),
            database: "petrel".into(),
            user: "default".into(),
            password: String::new(),
            statement_log: None,
        }
    }
}

/// How long a key's permissions are trusted without asking the server again (a key
/// created on another instance is never cached as unknown, so it works at once).
const KEY_CACHE: Duration = Duration::from_secs(30);

/// The ClickHouse store; share it behind an `Arc`.
pub struct ClickHouseStore {
    client: http::Client,
    db: String,
    version: String,
    /// Batches waiting to be stored (group commit).
    queue: crate::store::group_commit::GroupQueue<PreparedBatch>,
    /// Serialises this instance's ingests; holds its side of the ingest lease.
    writer: Mutex<lease::Lease>,
    /// Facet tuples and reason texts already stored (not sent again).
    written: Mutex<ingest::Written>,
    keys: Mutex<HashMap<String, (Instant, Vec<Permission>)>>,
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

fn random_u16() -> u16 {
    random_bytes::<2>().map(u16::from_le_bytes).unwrap_or(7)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// A batch's sequence number: microseconds × 1000 plus a random tail, so batches from
/// several instances sort by arrival and practically never collide (batch-search cursor,
/// storage order of a message's events).
fn new_seq() -> Result<i64, StoreError> {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    Ok(micros * 1000 + i64::from(random_u16() % 1000))
}

/// FNV-1a, 64 bits: stable across builds and instances (std's hasher is not).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in (p.len() as u32).to_le_bytes().iter().chain(p.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The id of a cube's facet tuple: a hash, so every instance names it alike without
/// asking the server.
fn dim_id(cube: Cube, d: &Dims) -> u64 {
    fnv(&[
        &[cube.code()],
        &d.subaccount.to_le_bytes(),
        d.campaign.as_bytes(),
        d.template.as_bytes(),
        d.ip_pool.as_bytes(),
        d.sending_ip.as_bytes(),
        d.sending_domain.as_bytes(),
        d.domain.as_bytes(),
        d.mailbox_provider.as_bytes(),
        d.region.as_bytes(),
    ])
}

/// The id of a reason text of a report kind and class.
fn reason_id(kind: i64, class: i64, text: &str) -> u64 {
    fnv(&[&kind.to_le_bytes(), &class.to_le_bytes(), text.as_bytes()])
}

fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

impl ClickHouseStore {
    /// Connects, checks the server version and creates the database, tables and views that
    /// are missing. Fails with [`StoreError::Unavailable`] when the server cannot be reached
    /// and [`StoreError::Backend`] when it refuses (bad credentials, too old).
    pub fn connect(settings: &ClickHouseSettings) -> Result<Self, StoreError> {
        let db = &settings.database;
        if db.is_empty()
            || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || db.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(StoreError::Backend(format!(
                "clickhouse-database `{db}` must be letters, digits and _"
            )));
        }
        let mut client = http::Client::new(settings)?;
        let version = schema::prepare(&mut client, db)?;
        Ok(ClickHouseStore {
            client,
            db: db.clone(),
            version,
            queue: crate::store::group_commit::GroupQueue::new(ingest::GROUP_EVENTS),
            writer: Mutex::new(lease::Lease::new(hex(&random_bytes::<8>()?))),
            written: Mutex::new(ingest::Written::default()),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// The server's version, as it reports it.
    pub fn server_version(&self) -> &str {
        &self.version
    }

    /// A table name qualified with the database.
    fn t(&self, table: &str) -> String {
        format!("{}.{table}", self.db)
    }
}

impl AnalyticsStore for ClickHouseStore {
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
        let now = timefmt::now_secs();
        let mut w = RowWriter::default();
        w.str(&sha256_hex(key.as_bytes()));
        w.str(label);
        w.str(&perms.join(","));
        w.i64(now);
        w.u64(new_seq()? as u64);
        self.client.insert(
            &format!(
                "{} (key_hash, label, permissions, created_at, version)",
                self.t("api_keys")
            ),
            &w.buf,
            &format!("petrel-key-{}", uuid_v4()?),
        )?;
        lock(&self.keys)?.remove(key);
        Ok(())
    }

    fn key_permissions(&self, key: &str) -> Result<Option<Vec<Permission>>, StoreError> {
        if let Some((at, perms)) = lock(&self.keys)?.get(key) {
            if at.elapsed() < KEY_CACHE {
                return Ok(Some(perms.clone()));
            }
        }
        let body = self.client.select(&format!(
            "SELECT argMax(permissions, version) FROM {} WHERE key_hash = {} GROUP BY key_hash",
            self.t("api_keys"),
            http::quote(&sha256_hex(key.as_bytes()))
        ))?;
        let mut r = RowReader::new(&body);
        if r.done() {
            return Ok(None);
        }
        let perms: Vec<Permission> = r
            .string()?
            .split(',')
            .filter_map(Permission::parse)
            .collect();
        lock(&self.keys)?.insert(key.to_string(), (Instant::now(), perms.clone()));
        Ok(Some(perms))
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

    #[test]
    fn ids_are_stable() {
        let d = Dims {
            campaign: "spring".into(),
            ..Dims::default()
        };
        assert_eq!(dim_id(Cube::Full, &d), dim_id(Cube::Full, &d.clone()));
        assert_ne!(dim_id(Cube::Full, &d), dim_id(Cube::Sender, &d));
        // Field boundaries count: "ab" + "" is not "a" + "b".
        let a = Dims {
            campaign: "ab".into(),
            ..Dims::default()
        };
        let b = Dims {
            campaign: "a".into(),
            template: "b".into(),
            ..Dims::default()
        };
        assert_ne!(dim_id(Cube::Full, &a), dim_id(Cube::Full, &b));
        assert_ne!(reason_id(0, 10, "x"), reason_id(1, 10, "x"));
        assert!(new_seq().unwrap() > 1_700_000_000_000_000_000);
    }
}
