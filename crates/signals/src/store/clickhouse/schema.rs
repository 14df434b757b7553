//! The ClickHouse schema: created at start when missing (`IF NOT EXISTS`), in SQL that
//! ClickHouse 18.16 and current releases both accept (`PARTITION BY` / `ORDER BY` table
//! syntax, no `TTL`, no `DateTime64`, no `LowCardinality`, no codecs).
//!
//! Every batch is one `INSERT` into the `ingest` table (engine `Null`: it keeps nothing), and
//! materialized views route its rows into the real tables. One insert is stored whole or
//! not at all, so a service killed mid-ingest leaves no half-counted batch. Rows carry a
//! `row` kind:
//!
//! | `row` | what | goes to |
//! |---|---|---|
//! | 1 | a new event | `events`, `event_ids`, `message_history` (types later events look back at), `recipients` (injections, opens, clicks) |
//! | 2 | counters of one (`tbl`, dim, bucket, reason): Metrics counters of a cube and increment, reason counts of an increment, or daily Signals counters | `rollups` (SummingMergeTree) |
//! | 5 | a facet tuple of a cube | `dims` |
//! | 6 | a reason text | `reasons` |
//! | 7 | the batch record | `batches` |
//!
//! Counters are computed by the service (`petrel-signals-model`, with the message's earlier
//! events for the exact per-increment uniques), added up per batch, and summed by the
//! SummingMergeTree tables; the views only route. Metrics and daily Signals counters are
//! kept sparse, as a `…Map` nested column of (counter number, value) pairs that
//! SummingMergeTree adds up key by key: a rollup row holds the few counters an event type
//! touches, not all 35. All cubes and increments, the reason counts and the daily Signals
//! counters share one `rollups` table (`tbl` leads its sort key, see [`tbl`]), so an
//! insert writes one part per day it touches there, not one per rollup table: on 18.16
//! every part is a directory with two files per column, and creating those files is the
//! largest single cost of an insert (measured: docs/BENCHMARKS.md, issue 16).
//!
//! A row of any other cube (total, one facet, sender, recipient, Signals: see
//! `counting::METRIC_TABLES`) is keyed by that cube's facet tuple (`dim`, `sdim` 0). A row of the full cube (every facet) and a reason-count row are
//! keyed by the pair of their recipient tuple (`dim`) and sender tuple (`sdim`), as in the
//! SQLite backend: a full tuple is the two put together, so `dims` needs no row per full
//! tuple (there are about as many of those as rollup rows), a read fetches only the two
//! small sides' tuples, and a read filtered to a few recipient tuples (a domain) finds
//! their rows through the sort key. Granules of 1,024 rows keep the read of a small `tbl`
//! (a day table, a few hundred rows per day) from dragging in its 8,192-row neighbours
//! of each day partition.

use super::super::StoreError;
use super::http::Client;

/// Row kinds of the `ingest` table.
pub(super) mod row {
    pub const EVENT: u8 = 1;
    pub const COUNTERS: u8 = 2;
    pub const DIM: u8 = 5;
    pub const REASON_TEXT: u8 = 6;
    pub const BATCH: u8 = 7;
}

/// What a `rollups` row counts (its `tbl`).
pub(super) mod tbl {
    /// Reason counts of the increment at this index of `Increment::ALL` are
    /// `REASONS + index`; Metrics counters use the index in `METRIC_TABLES` (below this).
    pub const REASONS: u8 = 100;
    /// Daily Signals counters (`bucket` is the day).
    pub const DAILY: u8 = 200;
}

/// The oldest server petrel runs on (the Debian package it is tested against).
pub(super) const MIN_VERSION: (u32, u32) = (18, 16);

/// The columns of `ingest`, in `RowBinary` order (`ingest::IngestRow::write` follows it).
pub(super) const INGEST_COLUMNS: &[(&str, &str)] = &[
    ("row", "UInt8"),
    ("event_id", "String"),
    ("ts", "Int64"),
    ("type", "String"),
    ("campaign_id", "String"),
    ("rcpt_to", "String"),
    ("subaccount_id", "Nullable(Int64)"),
    ("ip_pool", "String"),
    ("sending_ip", "String"),
    ("sending_domain", "String"),
    ("message_id", "String"),
    ("bounce_class", "String"),
    ("batch_id", "String"),
    ("json", "String"),
    ("recipient_domain", "String"),
    ("mailbox_provider", "String"),
    ("template_id", "String"),
    ("history", "UInt8"),
    ("link", "String"),
    ("machine", "UInt8"),
    ("cohort", "Int8"),
    ("seq", "Int64"),
    ("pos", "UInt32"),
    ("recipient", "UInt8"),
    ("mailed_at", "Int64"),
    ("engaged_at", "Int64"),
    ("tbl", "UInt8"),
    ("dim", "UInt64"),
    ("sdim", "UInt64"),
    ("bucket", "Int64"),
    ("reason", "UInt64"),
    ("keys", "Array(UInt8)"),
    ("vals", "Array(Int64)"),
    ("strs", "Array(String)"),
];

/// The columns the events table keeps for search (types as in `ingest`).
const EVENT_COLUMNS: &[&str] = &[
    "event_id",
    "ts",
    "type",
    "campaign_id",
    "rcpt_to",
    "subaccount_id",
    "ip_pool",
    "sending_ip",
    "sending_domain",
    "message_id",
    "bounce_class",
    "batch_id",
    "recipient_domain",
    "mailbox_provider",
    "template_id",
    "json",
];

fn event_columns() -> Vec<(&'static str, &'static str)> {
    EVENT_COLUMNS
        .iter()
        .filter_map(|n| INGEST_COLUMNS.iter().find(|(c, _)| c == n).copied())
        .collect()
}

/// Every table that is partitioned by day, with the retention it follows
/// (`true`: `event-retention`, `false`: `metrics-retention`).
pub(super) fn day_partitioned_tables() -> Vec<(String, bool)> {
    let events = ["events", "event_ids", "message_history", "batches"];
    let metrics = ["rollups"];
    events
        .iter()
        .map(|t| (t.to_string(), true))
        .chain(metrics.iter().map(|t| (t.to_string(), false)))
        .collect()
}

fn columns(cols: &[(&str, &str)]) -> String {
    cols.iter()
        .map(|(n, t)| format!("{n} {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every DDL statement, in the order they must run, for database `db`.
pub(super) fn statements(db: &str) -> Vec<String> {
    let t = |name: &str| format!("{db}.{name}");
    let by_day = |col: &str| format!("PARTITION BY intDiv({col}, 86400)");
    let mut s = vec![
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = Null",
            t("ingest"),
            columns(INGEST_COLUMNS)
        ),
        // Raw events for the events search: newest first within a time range.
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = MergeTree {} ORDER BY (ts, event_id)",
            t("events"),
            columns(&event_columns()),
            by_day("ts")
        ),
        // Event ids alone, sorted, for de-duplication at ingest.
        format!(
            "CREATE TABLE IF NOT EXISTS {} (event_id String, ts Int64) ENGINE = MergeTree {} \
             ORDER BY event_id SETTINGS index_granularity = 1024",
            t("event_ids"),
            by_day("ts")
        ),
        // What later events of a message look back at, sorted by message.
        format!(
            "CREATE TABLE IF NOT EXISTS {} (message_id String, seq Int64, pos UInt32, ts Int64, \
             type String, event_id String, link String, machine UInt8, cohort Int8) \
             ENGINE = MergeTree {} ORDER BY (message_id, seq, pos) \
             SETTINGS index_granularity = 1024",
            t("message_history"),
            by_day("ts")
        ),
        // Engagement state per recipient (first injection, last open or click), kept forever.
        format!(
            "CREATE TABLE IF NOT EXISTS {} (rcpt String, first_mailed AggregateFunction(min, Int64), \
             last_engaged AggregateFunction(max, Int64)) ENGINE = AggregatingMergeTree \
             ORDER BY rcpt SETTINGS index_granularity = 1024",
            t("recipients")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (id String, record_id String, error_type String, \
             received_at Int64, content_hash String, accepted Int64, failed Int64, \
             duplicates Int64, error String, seq Int64) ENGINE = MergeTree {} \
             ORDER BY content_hash",
            t("batches"),
            by_day("received_at")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (key_hash String, label String, permissions String, \
             created_at Int64, version UInt64) ENGINE = ReplacingMergeTree(version) \
             ORDER BY key_hash",
            t("api_keys")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (cube UInt8, dim UInt64, subaccount Int64, \
             campaign String, template String, ip_pool String, sending_ip String, \
             sending_domain String, domain String, mailbox_provider String, region String, \
             seen_at DateTime) ENGINE = ReplacingMergeTree ORDER BY (cube, dim)",
            t("dims")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (kind Int64, reason UInt64, class Int64, text String) \
             ENGINE = ReplacingMergeTree ORDER BY (kind, reason)",
            t("reasons")
        ),
        // The ingest lease (lease.rs): who may ingest right now.
        format!(
            "CREATE TABLE IF NOT EXISTS {} (holder String, n UInt64, state UInt8, \
             at DateTime DEFAULT now()) ENGINE = MergeTree PARTITION BY toYYYYMMDD(at) \
             ORDER BY (at, holder)",
            t("ingest_lease")
        ),
    ];
    // Every counter: Metrics of every cube and increment, reasons, daily Signals (`tbl`).
    s.push(format!(
        "CREATE TABLE IF NOT EXISTS {} (tbl UInt8, dim UInt64, sdim UInt64, bucket Int64, \
         reason UInt64, countersMap Nested(key UInt8, value Int64)) \
         ENGINE = SummingMergeTree {} ORDER BY (tbl, dim, sdim, bucket, reason) \
         SETTINGS index_granularity = 1024",
        t("rollups"),
        by_day("bucket")
    ));
    // The views that route `ingest` rows.
    let view = |name: &str, target: &str, select: String| {
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {} TO {} AS {select}",
            t(name),
            t(target)
        )
    };
    let ingest = t("ingest");
    s.push(view(
        "mv_events",
        "events",
        format!(
            "SELECT {} FROM {ingest} WHERE row = {}",
            EVENT_COLUMNS.join(", "),
            row::EVENT
        ),
    ));
    s.push(view(
        "mv_event_ids",
        "event_ids",
        format!(
            "SELECT event_id, ts FROM {ingest} WHERE row = {}",
            row::EVENT
        ),
    ));
    s.push(view(
        "mv_message_history",
        "message_history",
        format!(
            "SELECT message_id, seq, pos, ts, type, event_id, link, machine, cohort \
             FROM {ingest} WHERE row = {} AND history = 1",
            row::EVENT
        ),
    ));
    s.push(view(
        "mv_recipients",
        "recipients",
        format!(
            "SELECT rcpt_to AS rcpt, minState(mailed_at) AS first_mailed, \
             maxState(engaged_at) AS last_engaged FROM {ingest} \
             WHERE row = {} AND recipient = 1 GROUP BY rcpt",
            row::EVENT
        ),
    ));
    s.push(view(
        "mv_batches",
        "batches",
        format!(
            "SELECT batch_id AS id, strs[1] AS record_id, strs[2] AS error_type, \
             bucket AS received_at, strs[3] AS content_hash, vals[1] AS accepted, \
             vals[2] AS failed, vals[3] AS duplicates, strs[4] AS error, seq \
             FROM {ingest} WHERE row = {}",
            row::BATCH
        ),
    ));
    s.push(view(
        "mv_dims",
        "dims",
        format!(
            "SELECT tbl AS cube, dim, vals[1] AS subaccount, strs[1] AS campaign, \
             strs[2] AS template, strs[3] AS ip_pool, strs[4] AS sending_ip, \
             strs[5] AS sending_domain, strs[6] AS domain, strs[7] AS mailbox_provider, \
             strs[8] AS region, now() AS seen_at FROM {ingest} WHERE row = {}",
            row::DIM
        ),
    ));
    s.push(view(
        "mv_reasons",
        "reasons",
        format!(
            "SELECT vals[1] AS kind, reason, vals[2] AS class, strs[1] AS text \
             FROM {ingest} WHERE row = {}",
            row::REASON_TEXT
        ),
    ));
    s.push(view(
        "mv_rollups",
        "rollups",
        format!(
            "SELECT tbl, dim, sdim, bucket, reason, keys AS `countersMap.key`, \
             vals AS `countersMap.value` FROM {ingest} WHERE row = {}",
            row::COUNTERS
        ),
    ));
    s
}

/// Parses `18.16.1` / `24.8.4.13` into (major, minor).
pub(super) fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Checks the server and creates what is missing. Returns the server version.
pub(super) fn prepare(client: &mut Client, db: &str) -> Result<String, StoreError> {
    let body = client.select("SELECT version()")?;
    let version = super::rowbinary::RowReader::new(&body).string()?;
    match parse_version(&version) {
        Some(v) if v >= MIN_VERSION => {}
        _ => {
            return Err(StoreError::Backend(format!(
                "ClickHouse {version} is too old: petrel needs {}.{} or later",
                MIN_VERSION.0, MIN_VERSION.1
            )))
        }
    }
    // Servers since 19.x refuse an insert that touches more than 100 partitions by
    // default; a batch of late events can span more days than that.
    let body = client.select(
        "SELECT count() FROM system.settings WHERE name = 'max_partitions_per_insert_block'",
    )?;
    if super::rowbinary::RowReader::new(&body).u64()? > 0 {
        client.add_insert_setting("max_partitions_per_insert_block", "0");
    }
    // Databases of an earlier layout cannot be written by this one: before the counters
    // shared one `rollups` table (`reason_rollups`, `signals_day`), or before full-cube
    // rows were keyed by a recipient and a sender tuple (`rollups` without `sdim`). Say
    // so rather than count wrong.
    let q = super::http::quote(db);
    let body = client.select(&format!(
        "SELECT countIf(name = 'reason_rollups'), countIf(name = 'rollups') \
         FROM system.tables WHERE database = {q}"
    ))?;
    let mut r = super::rowbinary::RowReader::new(&body);
    let (old_tables, rollups) = (r.u64()?, r.u64()?);
    let body = client.select(&format!(
        "SELECT count() FROM system.columns WHERE database = {q} AND table = 'rollups' \
         AND name = 'sdim'"
    ))?;
    let has_sdim = super::rowbinary::RowReader::new(&body).u64()? > 0;
    if old_tables > 0 || (rollups > 0 && !has_sdim) {
        return Err(StoreError::Backend(format!(
            "ClickHouse database `{db}` has the table layout of an earlier petrel \
             ({}); point clickhouse-database at a new database and re-send the events, \
             or drop this one",
            if old_tables > 0 {
                "reason_rollups, signals_day"
            } else {
                "rollups without sdim"
            }
        )));
    }
    for stmt in statements(db) {
        client.execute(&stmt)?;
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("18.16.1"), Some((18, 16)));
        assert_eq!(parse_version("24.8.4.13"), Some((24, 8)));
        assert!(parse_version("18.14.19").unwrap() < MIN_VERSION);
        assert!(parse_version("26.9.2.1").unwrap() >= MIN_VERSION);
        assert_eq!(parse_version("banana"), None);
    }

    #[test]
    fn every_table_has_its_view() {
        let all = statements("petrel").join("\n");
        for (table, _) in day_partitioned_tables() {
            assert!(all.contains(&format!("TO petrel.{table} AS")), "{table}");
        }
        assert_eq!(event_columns().len(), EVENT_COLUMNS.len());
    }
}
