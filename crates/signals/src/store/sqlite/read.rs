//! Reading the rollups: pick the smallest cube that has every facet the query groups or
//! filters by, select the matching dims (a small table, filtered in Rust by the query
//! layer's [`DimFilter`]), then sum that cube's rows for those dims over the time range.

use std::collections::{BTreeMap, HashMap};

use petrel_signals_model::counters::Counters;
use petrel_signals_model::daily::Daily;
use rusqlite::{params, Connection};

use super::rollup::{self, cube_for, metric_table, reason_table, Cube};
use super::{lock, SqliteStore, StoreError};
use crate::store::{
    DailyRow, DimFilter, Dims, Facet, ReasonQuery, ReasonRow, RollupQuery, RollupRow, SignalsFacet,
    SignalsQuery,
};

fn cube_dims(conn: &Connection, cube: Cube) -> Result<Vec<(i64, Dims)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, subaccount, campaign, template, ip_pool, sending_ip, sending_domain, domain, \
         mailbox_provider, region FROM dims WHERE cube = ?1",
    )?;
    let rows = stmt.query_map([cube.code()], |r| {
        Ok((r.get(0)?, rollup::dims_from_row(r, 1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The dims of `cube` that pass `filter`, with the values of `group_by`.
fn selected(
    conn: &Connection,
    cube: Cube,
    filter: &dyn DimFilter,
    group_by: &[Facet],
) -> Result<HashMap<i64, Vec<String>>, StoreError> {
    Ok(cube_dims(conn, cube)?
        .into_iter()
        .filter(|(_, d)| filter.matches(d))
        .map(|(id, d)| (id, group_by.iter().map(|f| d.get(*f)).collect()))
        .collect())
}

fn id_list(ids: impl Iterator<Item = i64>) -> String {
    ids.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

impl SqliteStore {
    pub(super) fn rollups_impl(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError> {
        let mut needed = q.group_by.to_vec();
        needed.extend(q.filter.facets());
        let cube = cube_for(&needed, q.increment);
        let conn = lock(&self.reader)?;
        let keys = selected(&conn, cube, q.filter, q.group_by)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sums: Vec<String> = Counters::NAMES
            .iter()
            .map(|n| format!("SUM({n})"))
            .collect();
        let (bucket, group) = if q.by_bucket {
            ("bucket", "dim, bucket")
        } else {
            ("0", "dim")
        };
        let sql = format!(
            "SELECT dim, {bucket}, {} FROM {} WHERE dim IN ({}) AND bucket >= ?1 AND bucket < ?2 \
             GROUP BY {group}",
            sums.join(", "),
            metric_table(cube, q.increment),
            id_list(keys.keys().copied())
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut out: BTreeMap<(Vec<String>, i64), Counters> = BTreeMap::new();
        let rows = stmt.query_map(params![q.from, q.to], |r| {
            let dim: i64 = r.get(0)?;
            let b: i64 = r.get(1)?;
            let mut v = Vec::with_capacity(Counters::NAMES.len());
            for i in 0..Counters::NAMES.len() {
                v.push(r.get::<_, i64>(i + 2)?);
            }
            Ok((dim, b, Counters::from_slice(&v)))
        })?;
        for row in rows {
            let (dim, b, c) = row?;
            let key = keys.get(&dim).cloned().unwrap_or_default();
            out.entry((key, b)).or_default().add(&c);
        }
        Ok(out
            .into_iter()
            .map(|((key, b), counters)| RollupRow {
                key,
                bucket: q.by_bucket.then_some(b),
                counters,
            })
            .collect())
    }

    pub(super) fn reasons_impl(&self, q: &ReasonQuery<'_>) -> Result<Vec<ReasonRow>, StoreError> {
        let conn = lock(&self.reader)?;
        let group: &[Facet] = if q.by_domain { &[Facet::Domain] } else { &[] };
        let keys = selected(&conn, Cube::Full, q.filter, group)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let texts: HashMap<i64, (i64, String)> = conn
            .prepare_cached("SELECT id, class, text FROM reasons WHERE kind = ?1")?
            .query_map([q.kind.code()], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?
            .collect::<Result<_, _>>()?;
        let sql = format!(
            "SELECT dim, reason, SUM(a), SUM(b), SUM(c), SUM(d) FROM {} WHERE dim IN ({}) \
             AND bucket >= ?1 AND bucket < ?2 GROUP BY dim, reason",
            reason_table(q.increment),
            id_list(keys.keys().copied())
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![q.from, q.to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                [r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            ))
        })?;
        let mut out: BTreeMap<(String, i64, Option<String>), [i64; 4]> = BTreeMap::new();
        for row in rows {
            let (dim, reason, counts) = row?;
            // Reasons of another kind share ids with none of this kind's rows.
            let Some((class, text)) = texts.get(&reason) else {
                continue;
            };
            let domain = q.by_domain.then(|| {
                keys.get(&dim)
                    .and_then(|k| k.first().cloned())
                    .unwrap_or_default()
            });
            let slot = out.entry((text.clone(), *class, domain)).or_default();
            for (a, b) in slot.iter_mut().zip(counts) {
                *a += b;
            }
        }
        Ok(out
            .into_iter()
            .map(|((reason, class, domain), counts)| ReasonRow {
                reason,
                class,
                domain,
                counts,
            })
            .collect())
    }

    pub(super) fn daily_impl(&self, q: &SignalsQuery) -> Result<Vec<DailyRow>, StoreError> {
        let conn = lock(&self.reader)?;
        let value = |d: &Dims| match q.facet {
            SignalsFacet::Subaccount => d.subaccount.to_string(),
            SignalsFacet::Campaign => d.campaign.clone(),
            SignalsFacet::IpPool => d.ip_pool.clone(),
            SignalsFacet::MailboxProvider => d.mailbox_provider.clone(),
            SignalsFacet::SendingDomain => d.sending_domain.clone(),
        };
        let keys: HashMap<i64, String> = cube_dims(&conn, Cube::Signals)?
            .into_iter()
            .filter(|(_, d)| q.subaccount.is_none_or(|s| s == d.subaccount))
            .map(|(id, d)| (id, value(&d)))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cols = Daily::names().join(", ");
        let sql = format!(
            "SELECT dim, day, {cols} FROM signals_day WHERE dim IN ({}) AND day >= ?1 AND day <= ?2",
            id_list(keys.keys().copied())
        );
        let n = Daily::names().len();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![q.from_day, q.to_day], |r| {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(r.get::<_, i64>(i + 2)?);
            }
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                Daily::from_slice(&v),
            ))
        })?;
        let mut out: BTreeMap<(String, i64), Daily> = BTreeMap::new();
        for row in rows {
            let (dim, day, d) = row?;
            let key = keys.get(&dim).cloned().unwrap_or_default();
            out.entry((key, day)).or_default().add(&d);
        }
        Ok(out
            .into_iter()
            .map(|((value, day), daily)| DailyRow { value, day, daily })
            .collect())
    }

    pub(super) fn facet_values_impl(&self, facet: Facet) -> Result<Vec<String>, StoreError> {
        let conn = lock(&self.reader)?;
        let mut values: Vec<String> = cube_dims(&conn, Cube::Full)?
            .into_iter()
            .map(|(_, d)| d.get(facet))
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}
