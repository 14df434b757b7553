//! Retention in ClickHouse: whole day partitions are dropped once the day has ended before
//! the cutoff (`ALTER TABLE … DROP PARTITION`, a metadata operation: no rows are rewritten).
//! A day is therefore kept until all of it is older than the retention, up to a day longer
//! than the SQLite backend's row-by-row deletes.

use petrel_signals_model::daily::DAY;

use super::rowbinary::RowReader;
use super::schema::day_partitioned_tables;
use super::ClickHouseStore;
use crate::store::{Expired, Retention, StoreError};

/// The ingest lease table keeps this many days.
const LEASE_DAYS: i64 = 2;

impl ClickHouseStore {
    /// Active partitions of a table with their row counts.
    fn partitions(&self, table: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let body = self.client.select(&format!(
            "SELECT partition, sum(rows) FROM system.parts WHERE database = {} AND table = {} \
             AND active GROUP BY partition",
            super::http::quote(&self.db),
            super::http::quote(table)
        ))?;
        let mut r = RowReader::new(&body);
        let mut out = Vec::new();
        while !r.done() {
            let p = r.string()?;
            out.push((p, r.u64()?));
        }
        Ok(out)
    }

    /// Drops the partitions `doomed` picks; returns the rows they held.
    fn drop_partitions(
        &self,
        table: &str,
        doomed: impl Fn(&str) -> bool,
    ) -> Result<u64, StoreError> {
        let mut rows = 0;
        for (p, n) in self.partitions(table)? {
            if doomed(&p) {
                self.client
                    .execute(&format!("ALTER TABLE {} DROP PARTITION {p}", self.t(table)))?;
                rows += n;
            }
        }
        Ok(rows)
    }

    pub(super) fn expire_impl(&self, r: &Retention, now: i64) -> Result<Expired, StoreError> {
        let mut out = Expired::default();
        for (table, events) in day_partitioned_tables() {
            let cutoff = now
                - if events {
                    r.events_secs
                } else {
                    r.metrics_secs
                };
            // Partition values are day numbers (`intDiv(time, 86400)`).
            let rows = self.drop_partitions(&table, |p| {
                p.parse::<i64>().is_ok_and(|day| (day + 1) * DAY <= cutoff)
            })?;
            match table.as_str() {
                "events" => out.events += rows,
                "batches" => out.batches += rows,
                "event_ids" | "message_history" => {}
                _ => out.rollup_rows += rows,
            }
        }
        let keep_from = yyyymmdd(now - LEASE_DAYS * DAY);
        self.drop_partitions("ingest_lease", |p| {
            p.parse::<i64>().is_ok_and(|d| d < keep_from)
        })?;
        Ok(out)
    }
}

/// The `toYYYYMMDD` number of a unix time (UTC).
fn yyyymmdd(secs: i64) -> i64 {
    let date = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    i64::from(date.year()) * 10_000
        + i64::from(u8::from(date.month())) * 100
        + i64::from(date.day())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lease_partition_names() {
        assert_eq!(super::yyyymmdd(1_793_577_600), 20261102);
    }
}
