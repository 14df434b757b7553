//! How a batch's counts reach the rollup tables: they are added up in memory per table, key
//! and bucket for the whole batch, and each distinct key is then written once with an
//! upsert that adds only the counters the batch changed (a delivery touches 7 of the 35
//! columns), so the statement binds and adds a handful of values instead of every column.

use std::collections::HashMap;

use petrel_signals_model::counters::{CounterSet, Counters, Increment};
use petrel_signals_model::daily::Daily;
use rusqlite::Transaction;

use super::catalog::{metric_tables, reason_table, MetricTable, Shape, SIGNALS_TABLE};
use super::dict::Dict;
use super::StoreError;

/// The ids an event is counted under: every facet's value id (in [`crate::store::Facet::ALL`]
/// order) and its sender and recipient dims.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keys {
    pub values: [i64; 9],
    pub sdim: i64,
    pub rdim: i64,
}

/// The counter families: counters that the same kind of event sets together. An upsert
/// writes the columns of the families its row touched.
const FAMILIES: &[&[&str]] = &[
    &[
        "injected",
        "policy_rejection",
        "generation_rejection",
        "generation_failed",
    ],
    &[
        "delivered",
        "delivered_first",
        "delivered_second",
        "delivered_subsequent",
        "delivery_time_first",
        "delivery_time_subsequent",
        "msg_volume",
    ],
    &[
        "inband_bounce",
        "outofband_bounce",
        "hard_bounce",
        "soft_bounce",
        "block_bounce",
        "undetermined_bounce",
        "admin_bounce",
    ],
    &["delayed", "delayed_first"],
    &[
        "rendered",
        "nonprefetched_rendered",
        "initial_rendered",
        "nonprefetched_initial_rendered",
        "unique_rendered",
        "nonprefetched_unique_rendered",
        "unique_initial_rendered",
        "nonprefetched_unique_initial_rendered",
        "unique_confirmed_opened",
        "nonprefetched_unique_confirmed_opened",
    ],
    &["clicked", "unique_clicked", "raw_clicked"],
    &["spam_complaint", "unsubscribe"],
];

/// [`FAMILIES`] as sets.
fn family_sets() -> &'static [CounterSet] {
    static SETS: std::sync::OnceLock<Vec<CounterSet>> = std::sync::OnceLock::new();
    SETS.get_or_init(|| FAMILIES.iter().map(|f| CounterSet::of(f)).collect())
}

/// The columns written for a row whose non-zero counters are `nonzero`: every counter of
/// each family that has one.
fn columns_for(nonzero: CounterSet) -> CounterSet {
    family_sets()
        .iter()
        .filter(|set| set.intersects(nonzero))
        .fold(CounterSet::NONE, |out, set| out.union(*set))
}

/// The upsert statements' SQL text per table and set of columns written, built once per
/// writer: formatting them per batch and table took ~3 % of the writer's time (perf).
#[derive(Default)]
pub(super) struct UpsertSql(HashMap<(MetricTable, CounterSet), String>);

impl UpsertSql {
    fn get(&mut self, table: MetricTable, cols: CounterSet) -> &str {
        self.0.entry((table, cols)).or_insert_with(|| {
            let names: Vec<&str> = cols.iter().map(|i| Counters::NAMES[i]).collect();
            upsert_sql(&table.name(), table.shape.key(), &names)
        })
    }
}

/// The key of a pending Metrics row: (first key, second key, bucket).
type RowKey = (i64, i64, i64);
/// The key of a pending reason row: (reason, sdim, bucket, rdim).
type ReasonKey = (i64, i64, i64, i64);

/// A batch's counts, added up in memory before they are written.
///
/// Every table's key is a function of (bucket, sender dim, recipient dim), so an event is
/// added once per increment, under that key; the other tables' rows are summed from those
/// when the batch is written (a batch has far fewer distinct keys than events).
#[derive(Default)]
pub(super) struct Pending {
    /// Per increment (index in [`Increment::ALL`]): (sdim, rdim, bucket) → counters.
    full: [HashMap<RowKey, Counters>; 3],
    /// Per increment: (reason, sdim, bucket, rdim) → counts.
    reasons: [HashMap<ReasonKey, [i64; 4]>; 3],
    /// (day, sdim, provider value id) → daily Signals counters.
    daily: HashMap<(i64, i64, i64), Daily>,
}

fn inc_index(inc: Increment) -> usize {
    Increment::ALL.iter().position(|i| *i == inc).unwrap_or(0)
}

impl Pending {
    /// Adds what an event counts at increment `inc` (bucket start `bucket`).
    pub(super) fn add(&mut self, keys: &Keys, inc: Increment, bucket: i64, c: &Counters) {
        self.full[inc_index(inc)]
            .entry((keys.sdim, keys.rdim, bucket))
            .or_default()
            .add(c);
    }

    /// Adds a reason count.
    pub(super) fn add_reason(
        &mut self,
        inc: Increment,
        reason: i64,
        keys: &Keys,
        bucket: i64,
        counts: [i64; 4],
    ) {
        let slot = self.reasons[inc_index(inc)]
            .entry((reason, keys.sdim, bucket, keys.rdim))
            .or_default();
        for (a, b) in slot.iter_mut().zip(counts) {
            *a += b;
        }
    }

    /// Adds daily Signals counters.
    pub(super) fn add_daily(&mut self, day: i64, sdim: i64, provider: i64, d: &Daily) {
        self.daily.entry((day, sdim, provider)).or_default().add(d);
    }

    /// Writes every pending key of every table with one upsert each; `dict` gives the
    /// facet values of the dims.
    pub(super) fn flush(
        self,
        tx: &Transaction<'_>,
        dict: &Dict,
        sql: &mut UpsertSql,
    ) -> Result<(), StoreError> {
        for table in metric_tables() {
            let full = &self.full[inc_index(table.inc)];
            if table.shape == Shape::Full {
                flush_metrics(tx, sql, table, full)?;
                continue;
            }
            let mut rows: HashMap<RowKey, Counters> = HashMap::new();
            for ((sdim, rdim, day), c) in full {
                let bucket = &table.floor(*day);
                let a = match table.shape {
                    Shape::Narrow(f) => match dict.pair(*sdim, *rdim) {
                        Some(value) => value(f).unwrap_or(0),
                        None => continue,
                    },
                    Shape::Sender => *sdim,
                    Shape::Recipient => *rdim,
                    Shape::Total | Shape::Full => 0,
                };
                rows.entry((a, 0, *bucket)).or_default().add(c);
            }
            flush_metrics(tx, sql, table, &rows)?;
        }
        for (i, inc) in Increment::ALL.into_iter().enumerate() {
            let rows = &self.reasons[i];
            if rows.is_empty() {
                continue;
            }
            let abcd = ["a", "b", "c", "d"];
            let full = upsert_sql(
                &reason_table(true, inc),
                &["reason", "sdim", "bucket", "rdim"],
                &abcd,
            );
            let mut stmt = tx.prepare_cached(&full)?;
            let mut totals: HashMap<(i64, i64), [i64; 4]> = HashMap::new();
            for ((reason, sdim, bucket, rdim), counts) in rows {
                bind_all(&mut stmt, &[*reason, *sdim, *bucket, *rdim], counts)?;
                let slot = totals.entry((*reason, *bucket)).or_default();
                for (a, b) in slot.iter_mut().zip(counts) {
                    *a += b;
                }
            }
            let total = upsert_sql(&reason_table(false, inc), &["reason", "bucket"], &abcd);
            let mut stmt = tx.prepare_cached(&total)?;
            for ((reason, bucket), counts) in totals {
                bind_all(&mut stmt, &[reason, bucket], &counts)?;
            }
        }
        if !self.daily.is_empty() {
            let names = Daily::names();
            let cols: Vec<&str> = names.iter().map(String::as_str).collect();
            let sql = upsert_sql(SIGNALS_TABLE, &["day", "sdim", "provider"], &cols);
            let mut stmt = tx.prepare_cached(&sql)?;
            for ((day, sdim, provider), d) in &self.daily {
                bind_all(&mut stmt, &[*day, *sdim, *provider], &d.to_vec())?;
            }
        }
        Ok(())
    }
}

/// Binds the key then the values (parameters 1…) and runs the statement.
fn bind_all(
    stmt: &mut rusqlite::CachedStatement<'_>,
    key: &[i64],
    values: &[i64],
) -> Result<(), StoreError> {
    for (i, v) in key.iter().chain(values).enumerate() {
        stmt.raw_bind_parameter(i + 1, *v)?;
    }
    stmt.raw_execute()?;
    Ok(())
}

fn flush_metrics(
    tx: &Transaction<'_>,
    sql: &mut UpsertSql,
    table: MetricTable,
    rows: &HashMap<RowKey, Counters>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Rows grouped by the columns they write: one prepared statement per group.
    let mut groups: HashMap<CounterSet, Vec<(&RowKey, &Counters)>> = HashMap::new();
    for (k, c) in rows {
        groups
            .entry(columns_for(c.nonzero()))
            .or_default()
            .push((k, c));
    }
    let mut values: Vec<i64> = Vec::with_capacity(Counters::NAMES.len());
    for (cols, rows) in groups {
        let mut stmt = tx.prepare_cached(sql.get(table, cols))?;
        let idx: Vec<usize> = cols.iter().collect();
        for ((a, b, bucket), c) in rows {
            let keys: &[i64] = match table.shape {
                Shape::Total => &[*bucket],
                Shape::Full => &[*bucket, *a, *b],
                _ => &[*bucket, *a],
            };
            values.clear();
            values.extend(idx.iter().map(|i| c.get(*i)));
            bind_all(&mut stmt, keys, &values)?;
        }
    }
    Ok(())
}

/// `INSERT … ON CONFLICT DO UPDATE` adding `cols` to the row of `key`.
fn upsert_sql(table: &str, key: &[&str], cols: &[&str]) -> String {
    let all: Vec<&str> = key.iter().chain(cols).copied().collect();
    let marks: Vec<String> = (1..=all.len()).map(|i| format!("?{i}")).collect();
    let set: Vec<String> = cols
        .iter()
        .map(|c| format!("{c} = {c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        all.join(", "),
        marks.join(", "),
        key.join(", "),
        set.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_cover_every_counter_once() {
        let mut seen = CounterSet::NONE;
        for f in FAMILIES {
            let set = CounterSet::of(f);
            assert_eq!(set.iter().count(), f.len(), "{f:?}: unknown name");
            assert!(set.iter().all(|i| !seen.contains(i)), "{f:?}: twice");
            seen = seen.union(set);
        }
        assert_eq!(seen, CounterSet::all());
        let delivery = Counters {
            delivered: 1,
            msg_volume: 9,
            ..Counters::default()
        };
        assert_eq!(columns_for(delivery.nonzero()).iter().count(), 7);
    }
}
