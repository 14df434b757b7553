//! Retention: raw events and batch records are kept `event-retention`, rollups and daily
//! Signals counters `metrics-retention`. Deletes run in chunks so ingest never waits long
//! for the writer.

use petrel_signals_model::counters::Increment;
use rusqlite::params;

use super::rollup::{metric_table, reason_table, METRIC_TABLES};
use super::{lock, SqliteStore, StoreError};
use crate::store::{Expired, Retention};

/// Rows deleted per transaction.
const CHUNK: i64 = 5_000;

impl SqliteStore {
    fn delete_chunked(&self, sql: &str, cutoff: i64) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let n = lock(&self.writer)?
                .conn
                .execute(sql, params![cutoff, CHUNK])?;
            total += n as u64;
            if (n as i64) < CHUNK {
                return Ok(total);
            }
        }
    }

    pub(super) fn expire_impl(&self, r: &Retention, now: i64) -> Result<Expired, StoreError> {
        let events_cutoff = now - r.events_secs;
        let metrics_cutoff = now - r.metrics_secs;
        let mut out = Expired {
            events: self.delete_chunked(
                "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE ts < ?1 LIMIT ?2)",
                events_cutoff,
            )?,
            batches: self.delete_chunked(
                "DELETE FROM batches WHERE seq IN (SELECT seq FROM batches WHERE received_at < ?1 LIMIT ?2)",
                events_cutoff,
            )?,
            rollup_rows: 0,
        };
        let mut tables: Vec<(String, &str)> = METRIC_TABLES
            .iter()
            .map(|(c, i)| (metric_table(*c, *i), "bucket"))
            .collect();
        tables.extend(Increment::ALL.iter().map(|i| (reason_table(*i), "bucket")));
        tables.push(("signals_day".into(), "day"));
        for (table, col) in tables {
            // The time column is second in the key: select the doomed keys first.
            let key = if table.starts_with("roll_reason") {
                "dim, bucket, reason"
            } else {
                &format!("dim, {col}")
            };
            out.rollup_rows += self.delete_chunked(
                &format!(
                    "DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {col} < ?1 LIMIT ?2)"
                ),
                metrics_cutoff,
            )?;
        }
        Ok(out)
    }
}
