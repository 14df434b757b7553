//! Reading the rollups: pick the smallest cube that has every facet the query groups or
//! filters by, read that cube's facet tuples (`dims`), keep those the query layer's
//! [`Filter`] passes, and let ClickHouse sum their rows into one row per group (and
//! bucket) — the group of each dim is sent along with `transform`.

use std::collections::{BTreeMap, HashMap};

use petrel_signals_model::counters::{Counters, Increment};
use petrel_signals_model::daily::Daily;

use super::http::number_list;
use super::rowbinary::RowReader;
use super::schema::tbl;
use super::ClickHouseStore;
use crate::store::counting::{cube_for, Cube, METRIC_TABLES};
use crate::store::{
    DailyRow, Dims, Facet, Filter, ReasonQuery, ReasonRow, RollupQuery, RollupRow, SignalsQuery,
    StoreError,
};

/// `CAST([a, b] AS Array(T))`: array literals otherwise take the smallest type that fits.
fn typed_array<T: std::fmt::Display>(items: &[T], ty: &str) -> String {
    let v: Vec<String> = items.iter().map(|x| x.to_string()).collect();
    format!("CAST([{}] AS Array({ty}))", v.join(", "))
}

/// Dims of `cube` that pass the filter, with their group number (from 1) per distinct
/// `key`; returns the groups' keys too.
struct Selection {
    dims: Vec<u64>,
    group_of: Vec<u32>,
    keys: Vec<Vec<String>>,
    /// True when every dim of the cube passed (no `IN` needed).
    all: bool,
}

impl Selection {
    fn new(
        all_dims: Vec<(u64, Dims)>,
        pass: impl Fn(&Dims) -> bool,
        key: impl Fn(&Dims) -> Vec<String>,
    ) -> Self {
        let total = all_dims.len();
        let mut index: HashMap<Vec<String>, u32> = HashMap::new();
        let mut sel = Selection {
            dims: Vec::new(),
            group_of: Vec::new(),
            keys: Vec::new(),
            all: false,
        };
        for (id, d) in all_dims {
            if !pass(&d) {
                continue;
            }
            let k = key(&d);
            let g = match index.get(&k) {
                Some(g) => *g,
                None => {
                    sel.keys.push(k.clone());
                    let g = sel.keys.len() as u32;
                    index.insert(k, g);
                    g
                }
            };
            sel.dims.push(id);
            sel.group_of.push(g);
        }
        sel.all = sel.dims.len() == total;
        sel
    }

    /// The `transform(dim, …)` expression naming each row's group.
    fn group_expr(&self) -> String {
        if self.keys.len() == 1 {
            return "toUInt32(1)".into();
        }
        format!(
            "transform(dim, {}, {}, toUInt32(0))",
            typed_array(&self.dims, "UInt64"),
            typed_array(&self.group_of, "UInt32")
        )
    }

    /// ` AND dim IN (…)` unless every dim passed.
    fn dim_clause(&self) -> String {
        if self.all {
            String::new()
        } else {
            format!(" AND dim IN {}", number_list(&self.dims))
        }
    }

    fn key(&self, group: u32) -> Option<&Vec<String>> {
        self.keys.get((group as usize).checked_sub(1)?)
    }
}

impl ClickHouseStore {
    /// Every facet tuple of `cube`.
    pub(super) fn cube_dims(&self, cube: Cube) -> Result<Vec<(u64, Dims)>, StoreError> {
        let body = self.client.select(&format!(
            "SELECT DISTINCT dim, subaccount, campaign, template, ip_pool, sending_ip, \
             sending_domain, domain, mailbox_provider, region FROM {} WHERE cube = {}",
            self.t("dims"),
            cube.code()
        ))?;
        let mut r = RowReader::new(&body);
        let mut out = Vec::new();
        while !r.done() {
            let id = r.u64()?;
            out.push((
                id,
                Dims {
                    subaccount: r.i64()?,
                    campaign: r.string()?,
                    template: r.string()?,
                    ip_pool: r.string()?,
                    sending_ip: r.string()?,
                    sending_domain: r.string()?,
                    domain: r.string()?,
                    mailbox_provider: r.string()?,
                    region: r.string()?,
                },
            ));
        }
        Ok(out)
    }

    fn selection(
        &self,
        cube: Cube,
        filter: &Filter,
        key: impl Fn(&Dims) -> Vec<String>,
    ) -> Result<Selection, StoreError> {
        Ok(Selection::new(
            self.cube_dims(cube)?,
            |d| filter.matches(d),
            key,
        ))
    }

    pub(super) fn rollups_impl(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError> {
        let mut needed = q.group_by.to_vec();
        needed.extend(q.filter.facets());
        let cube = cube_for(&needed, q.increment);
        let Some(table) = METRIC_TABLES.iter().position(|t| *t == (cube, q.increment)) else {
            return Ok(Vec::new());
        };
        let sel = self.selection(cube, q.filter, |d| {
            q.group_by.iter().map(|f| d.get(*f)).collect()
        })?;
        if sel.dims.is_empty() {
            return Ok(Vec::new());
        }
        let bucket = if q.by_bucket { "bucket" } else { "toInt64(0)" };
        let body = self.client.select(&format!(
            "SELECT {} AS g, {bucket} AS b, sumMap(countersMap.key, countersMap.value) FROM {} \
             WHERE tbl = {table} AND bucket >= {} AND bucket < {}{} GROUP BY g, b",
            sel.group_expr(),
            self.t("rollups"),
            q.from,
            q.to,
            sel.dim_clause()
        ))?;
        let mut r = RowReader::new(&body);
        let mut out: BTreeMap<(Vec<String>, i64), Counters> = BTreeMap::new();
        while !r.done() {
            let g = r.u32()?;
            let b = r.i64()?;
            let mut v = r.sparse(Counters::NAMES.len())?;
            // Counters not asked for come back 0, as the store interface says.
            for (i, x) in v.iter_mut().enumerate() {
                if !q.counters.contains(i) {
                    *x = 0;
                }
            }
            if let Some(key) = sel.key(g) {
                out.entry((key.clone(), b))
                    .or_default()
                    .add(&Counters::from_slice(&v));
            }
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
        let sel = self.selection(Cube::Full, q.filter, |d| {
            if q.by_domain {
                vec![d.domain.clone()]
            } else {
                Vec::new()
            }
        })?;
        if sel.dims.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.client.select(&format!(
            "SELECT DISTINCT reason, class, text FROM {} WHERE kind = {}",
            self.t("reasons"),
            q.kind.code()
        ))?;
        let mut r = RowReader::new(&body);
        let mut texts: HashMap<u64, (i64, String)> = HashMap::new();
        while !r.done() {
            let id = r.u64()?;
            let class = r.i64()?;
            texts.insert(id, (class, r.string()?));
        }
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<u64> = texts.keys().copied().collect();
        let inc = Increment::ALL
            .iter()
            .position(|i| *i == q.increment)
            .unwrap_or(0);
        let body = self.client.select(&format!(
            "SELECT {} AS g, reason, sumMap(countersMap.key, countersMap.value) FROM {} \
             WHERE tbl = {} AND bucket >= {} AND bucket < {} AND reason IN {}{} \
             GROUP BY g, reason",
            sel.group_expr(),
            self.t("rollups"),
            tbl::REASONS + inc as u8,
            q.from,
            q.to,
            number_list(&ids),
            sel.dim_clause()
        ))?;
        let mut r = RowReader::new(&body);
        let mut out: BTreeMap<(String, i64, Option<String>), [i64; 4]> = BTreeMap::new();
        while !r.done() {
            let g = r.u32()?;
            let reason = r.u64()?;
            let v = r.sparse(4)?;
            let counts = [v[0], v[1], v[2], v[3]];
            let (Some((class, text)), Some(key)) = (texts.get(&reason), sel.key(g)) else {
                continue;
            };
            let domain = q
                .by_domain
                .then(|| key.first().cloned().unwrap_or_default());
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
        let sel = Selection::new(
            self.cube_dims(Cube::Signals)?,
            |d| q.subaccount.is_none_or(|s| s == d.subaccount),
            |d| vec![q.facet.value(d)],
        );
        if sel.dims.is_empty() {
            return Ok(Vec::new());
        }
        let n = Daily::names().len();
        let body = self.client.select(&format!(
            "SELECT {} AS g, bucket AS day, sumMap(countersMap.key, countersMap.value) FROM {} \
             WHERE tbl = {} AND bucket >= {} AND bucket <= {}{} GROUP BY g, day",
            sel.group_expr(),
            self.t("rollups"),
            tbl::DAILY,
            q.from_day,
            q.to_day,
            sel.dim_clause()
        ))?;
        let mut r = RowReader::new(&body);
        let mut out: BTreeMap<(String, i64), Daily> = BTreeMap::new();
        while !r.done() {
            let g = r.u32()?;
            let day = r.i64()?;
            let v = r.sparse(n)?;
            if let Some(key) = sel.key(g) {
                let value = key.first().cloned().unwrap_or_default();
                out.entry((value, day))
                    .or_default()
                    .add(&Daily::from_slice(&v));
            }
        }
        Ok(out
            .into_iter()
            .map(|((value, day), daily)| DailyRow { value, day, daily })
            .collect())
    }

    pub(super) fn facet_values_impl(&self, facet: Facet) -> Result<Vec<String>, StoreError> {
        let mut values: Vec<String> = self
            .cube_dims(Cube::Full)?
            .into_iter()
            .map(|(_, d)| d.get(facet))
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}
