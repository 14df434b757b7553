//! Retention: raw events and batch records are kept `event-retention`, rollups and daily
//! Signals counters `metrics-retention`, recipients' engagement state for a year or
//! `metrics-retention` after their last activity, whichever is longer. Deletes run in small
//! transactions so ingest never waits long for the writer.

use petrel_signals_model::cohort::{self, RecipientState};
use petrel_signals_model::counters::Increment;
use rusqlite::params;

use super::catalog::{metric_tables, reason_table, META_METRICS_FLOOR, SIGNALS_TABLE, WEEK};
use super::{lock, SqliteStore, StoreError};
use crate::store::{Expired, Retention};

/// Rows deleted per transaction.
const CHUNK: i64 = 5_000;
/// Leading keys handled per transaction when a table is emptied key by key.
const KEYS_PER_TX: usize = 200;
/// Recipients examined per step of the state expiry.
const RECIPIENT_PAGE: i64 = 20_000;

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

    /// Deletes the rows of `table` older than `cutoff` (column `time`), one leading key
    /// (`lead`, every id in `keys`) at a time, so every delete is a range of the primary
    /// key, not a scan.
    fn delete_by_lead(
        &self,
        table: &str,
        lead: &str,
        time: &str,
        cutoff: i64,
        keys: &[i64],
    ) -> Result<u64, StoreError> {
        let mut total = 0u64;
        for chunk in keys.chunks(KEYS_PER_TX) {
            let mut w = lock(&self.writer)?;
            let tx = w.conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE {lead} = ?1 AND {time} < ?2"
                ))?;
                for k in chunk {
                    total += stmt.execute(params![k, cutoff])? as u64;
                }
            }
            tx.commit()?;
        }
        Ok(total)
    }

    /// Forgets recipients whose state has expired, a page of recipients at a time.
    fn expire_recipients(&self, now: i64, metrics_secs: i64) -> Result<u64, StoreError> {
        let mut after = String::new();
        let mut total = 0u64;
        loop {
            let page: Vec<(String, RecipientState)> = {
                let reader = lock(&self.reader)?;
                let mut stmt = reader.conn.prepare_cached(
                    "SELECT rcpt, first_mailed, last_engaged, last_mailed FROM recipients \
                     WHERE rcpt > ?1 ORDER BY rcpt LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![after, RECIPIENT_PAGE], |r| {
                    Ok((
                        r.get(0)?,
                        RecipientState {
                            first_mailed: r.get(1)?,
                            last_engaged: r.get(2)?,
                            last_mailed: r.get(3)?,
                        },
                    ))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let Some((last, _)) = page.last() else {
                return Ok(total);
            };
            after = last.clone();
            let doomed: Vec<&String> = page
                .iter()
                .filter(|(_, s)| cohort::expired(*s, now, metrics_secs))
                .map(|(r, _)| r)
                .collect();
            if !doomed.is_empty() {
                let mut w = lock(&self.writer)?;
                let tx = w.conn.transaction()?;
                {
                    // Checked again under the writer: an injection may have just renewed it.
                    let mut read = tx.prepare_cached(
                        "SELECT first_mailed, last_engaged, last_mailed FROM recipients \
                         WHERE rcpt = ?1",
                    )?;
                    let mut delete = tx.prepare_cached("DELETE FROM recipients WHERE rcpt = ?1")?;
                    for r in doomed {
                        let s = read.query_row([r], |row| {
                            Ok(RecipientState {
                                first_mailed: row.get(0)?,
                                last_engaged: row.get(1)?,
                                last_mailed: row.get(2)?,
                            })
                        });
                        if s.is_ok_and(|s| cohort::expired(s, now, metrics_secs)) {
                            total += delete.execute([r])? as u64;
                        }
                    }
                }
                tx.commit()?;
            }
            if (page.len() as i64) < RECIPIENT_PAGE {
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
            recipients: self.expire_recipients(now, r.metrics_secs)?,
        };
        let reasons = {
            let mut reader = lock(&self.reader)?;
            let super::Reader { conn, dict } = &mut *reader;
            dict.refresh(conn)?;
            dict.reason_ids()
        };
        // Reads take week rows only from here on: older ones may hold deleted days.
        lock(&self.writer)?.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
            params![META_METRICS_FLOOR, metrics_cutoff],
        )?;
        for t in metric_tables() {
            // Keyed by bucket first: the old rows are one range at the start of the table.
            // A week row goes once its whole week is older than the cutoff.
            let name = t.name();
            let key = t.shape.key().join(", ");
            let cutoff = if t.weekly {
                metrics_cutoff - WEEK + 1
            } else {
                metrics_cutoff
            };
            out.rollup_rows += self.delete_chunked(
                &format!(
                    "DELETE FROM {name} WHERE ({key}) IN \
                     (SELECT {key} FROM {name} WHERE bucket < ?1 LIMIT ?2)"
                ),
                cutoff,
            )?;
        }
        for inc in Increment::ALL {
            for full in [false, true] {
                out.rollup_rows += self.delete_by_lead(
                    &reason_table(full, inc),
                    "reason",
                    "bucket",
                    metrics_cutoff,
                    &reasons,
                )?;
            }
        }
        out.rollup_rows += self.delete_chunked(
            &format!(
                "DELETE FROM {SIGNALS_TABLE} WHERE (day, sdim, provider) IN \
                 (SELECT day, sdim, provider FROM {SIGNALS_TABLE} WHERE day < ?1 LIMIT ?2)"
            ),
            metrics_cutoff,
        )?;
        Ok(out)
    }
}
