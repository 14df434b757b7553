//! Reading the rollups: pick the smallest cube that has every facet the query groups or
//! filters by, read the facet tuples (`dims`) of that cube — for the full cube, of its two
//! sides, the sender and the recipient cube — keep those the query layer's [`Filter`] may
//! pass, and let ClickHouse sum the rows per tuple (and bucket or reason). The service
//! then adds the tuples' sums into their groups.
//!
//! So a read's cost follows the rollup rows of its range and the tuples it names, not the
//! number of events: no full tuple is ever listed (there are about as many as rollup rows),
//! the SQL names only the tuples a filter keeps, and a filter to a few recipient tuples (a
//! domain) reads only their rows through the sort key (`dim` leads it).

use std::collections::{BTreeMap, HashMap};

use petrel_signals_model::counters::{Counters, Increment};
use petrel_signals_model::daily::Daily;

use super::http::number_list;
use super::rowbinary::RowReader;
use super::schema::tbl;
use super::ClickHouseStore;
use crate::store::counting::{cube_for, Cube, METRIC_TABLES};
use crate::store::{
    Condition, DailyRow, Dims, Facet, Filter, Grouping, ReasonQuery, ReasonRow, RollupQuery,
    RollupRow, SignalsQuery, StoreError,
};

/// Past this many tuples a side that is read per tuple anyway is filtered here rather
/// than by an `IN` list in the SQL (a long list costs the server more to parse than the
/// rows it saves).
const MAX_IN: usize = 5_000;

/// Whether a row whose facets outside `known` are not known yet may pass `filter`: false
/// only when it fails whatever those are.
fn may_pass(filter: &Filter, d: &Dims, known: impl Fn(Facet) -> bool) -> bool {
    filter.groupings.iter().all(|g| {
        let mut results = g.conditions.iter().map(|c| match c.facet {
            Some(f) if !known(f) => None,
            _ => Some(c.matches(d)),
        });
        if g.and {
            results.all(|r| r != Some(false))
        } else {
            results.any(|r| r != Some(false))
        }
    })
}

/// Which side of the full cube a facet is on: `Some(true)` recipient, `Some(false)`
/// sender, `None` both (the subaccount) or neither (a key with no data).
fn side_of(facet: Option<Facet>) -> Option<bool> {
    match facet {
        Some(f) if f.is_recipient_side() => Some(true),
        Some(Facet::Subaccount) | None => None,
        Some(_) => Some(false),
    }
}

/// True when a full tuple passes `filter` exactly when its sender and its recipient tuple
/// each may pass: every OR grouping tests facets of one side only.
fn separable(filter: &Filter) -> bool {
    filter.groupings.iter().all(|g| {
        g.and || {
            let sides: Vec<bool> = g
                .conditions
                .iter()
                .filter_map(|c| side_of(c.facet))
                .collect();
            sides.iter().all(|s| *s) || sides.iter().all(|s| !*s)
        }
    })
}

/// A full tuple from its recipient tuple and its sender tuple (the subaccount from the
/// sender's unless only the recipient's is read).
fn merge(recipient: &Dims, sender: &Dims, sender_read: bool) -> Dims {
    Dims {
        subaccount: if sender_read {
            sender.subaccount
        } else {
            recipient.subaccount
        },
        domain: recipient.domain.clone(),
        mailbox_provider: recipient.mailbox_provider.clone(),
        region: recipient.region.clone(),
        ..sender.clone()
    }
}

/// One key column of a read (`dim` or `sdim`): the tuples of its cube that may pass.
struct Side {
    col: &'static str,
    /// The tuples that may pass, by id.
    pass: HashMap<u64, Dims>,
    /// Every tuple of the cube may pass (no `IN` needed).
    all: bool,
    /// Summed per tuple (the answer names it); otherwise over every tuple that passes.
    grouped: bool,
}

impl Side {
    /// ` AND col IN (…)`, when the SQL must (or had better) leave out tuples.
    fn clause(&self) -> String {
        if self.all || (self.grouped && self.pass.len() > MAX_IN) {
            return String::new();
        }
        let mut ids: Vec<u64> = self.pass.keys().copied().collect();
        ids.sort_unstable();
        format!(" AND {} IN {}", self.col, number_list(ids))
    }
}

/// How to read one cube's rows.
struct Plan<'f> {
    /// `dim`, and for the full cube `sdim`.
    sides: Vec<Side>,
    /// The filter, when only a whole full tuple can be tested (both sides grouped).
    exact: Option<&'f Filter>,
}

impl Plan<'_> {
    /// True when no tuple may pass: nothing to read.
    fn empty(&self) -> bool {
        self.sides.iter().any(|s| s.pass.is_empty())
    }
}

/// What a read sums per tuple besides the tuple itself.
#[derive(Clone, Copy)]
enum Extra {
    Nothing,
    Bucket,
    Reason,
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

    fn side(
        &self,
        col: &'static str,
        cube: Cube,
        filter: &Filter,
        grouped: bool,
    ) -> Result<Side, StoreError> {
        let dims = self.cube_dims(cube)?;
        let total = dims.len();
        let pass: HashMap<u64, Dims> = dims
            .into_iter()
            .filter(|(_, d)| may_pass(filter, d, |f| cube.has(f)))
            .collect();
        Ok(Side {
            col,
            all: pass.len() == total,
            pass,
            grouped,
        })
    }

    /// How to read `cube` for rows passing `filter`, grouped by `group_by` (`grouped`:
    /// grouped by something only the tuple tells, for cubes other than the full one).
    fn plan<'f>(
        &self,
        cube: Cube,
        filter: &'f Filter,
        group_by: &[Facet],
        grouped: bool,
    ) -> Result<Plan<'f>, StoreError> {
        if cube != Cube::Full {
            return Ok(Plan {
                sides: vec![self.side("dim", cube, filter, grouped)?],
                exact: None,
            });
        }
        let exact = !separable(filter);
        let sides: Vec<Option<bool>> = group_by.iter().map(|f| side_of(Some(*f))).collect();
        let by_recipient = exact || sides.contains(&Some(true));
        // The subaccount is on both sides; the sender side is the smaller.
        let by_sender =
            exact || sides.contains(&Some(false)) || (!by_recipient && !group_by.is_empty());
        Ok(Plan {
            sides: vec![
                self.side("dim", Cube::Recipient, filter, by_recipient)?,
                self.side("sdim", Cube::Sender, filter, by_sender)?,
            ],
            exact: exact.then_some(filter),
        })
    }

    /// Sums the `countersMap` of the rows of `table` within `range` (SQL on `bucket`) that
    /// `plan` keeps, per grouped tuple and `extra`; calls `add` with each row's (full)
    /// tuple — the facets of sides not grouped left blank —, its `extra` value and its
    /// `n` counters.
    fn sum(
        &self,
        plan: &Plan<'_>,
        table: u8,
        range: &str,
        extra: Extra,
        n: usize,
        mut add: impl FnMut(&Dims, i64, Vec<i64>),
    ) -> Result<(), StoreError> {
        let mut cols: Vec<&str> = plan
            .sides
            .iter()
            .filter(|s| s.grouped)
            .map(|s| s.col)
            .collect();
        match extra {
            Extra::Nothing => {}
            Extra::Bucket => cols.push("bucket"),
            Extra::Reason => cols.push("reason"),
        }
        // Grouped by something, so that no data gives no row.
        let keys = if cols.is_empty() {
            "toUInt8(0) AS g".to_string()
        } else {
            cols.join(", ")
        };
        let group = if cols.is_empty() { "g" } else { &keys };
        let clauses: String = plan.sides.iter().map(Side::clause).collect();
        let body = self.client.select(&format!(
            "SELECT {keys}, sumMap(countersMap.key, countersMap.value) FROM {} \
             WHERE tbl = {table} AND {range}{clauses} GROUP BY {group}",
            self.t("rollups"),
        ))?;
        let blank = Dims::default();
        let mut r = RowReader::new(&body);
        while !r.done() {
            if cols.is_empty() {
                r.u8()?;
            }
            let mut found: Vec<Option<&Dims>> = Vec::with_capacity(plan.sides.len());
            for side in &plan.sides {
                found.push(if side.grouped {
                    side.pass.get(&r.u64()?)
                } else {
                    Some(&blank)
                });
            }
            let x = match extra {
                Extra::Nothing => 0,
                Extra::Bucket => r.i64()?,
                Extra::Reason => r.u64()? as i64,
            };
            let values = r.sparse(n)?;
            // A tuple missing here did not pass (its side had no `IN` list).
            let dims = match found.as_slice() {
                [Some(d)] => (*d).clone(),
                [Some(rd), Some(sd)] => merge(rd, sd, plan.sides[1].grouped),
                _ => continue,
            };
            if plan.exact.is_some_and(|f| !f.matches(&dims)) {
                continue;
            }
            add(&dims, x, values);
        }
        Ok(())
    }

    pub(super) fn rollups_impl(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError> {
        let mut needed = q.group_by.to_vec();
        needed.extend(q.filter.facets());
        let cube = cube_for(&needed, q.increment);
        let Some(table) = METRIC_TABLES.iter().position(|t| *t == (cube, q.increment)) else {
            return Ok(Vec::new());
        };
        let plan = self.plan(cube, q.filter, q.group_by, !q.group_by.is_empty())?;
        if plan.empty() {
            return Ok(Vec::new());
        }
        let extra = if q.by_bucket {
            Extra::Bucket
        } else {
            Extra::Nothing
        };
        let range = format!("bucket >= {} AND bucket < {}", q.from, q.to);
        let mut out: BTreeMap<(Vec<String>, i64), Counters> = BTreeMap::new();
        self.sum(
            &plan,
            table as u8,
            &range,
            extra,
            Counters::NAMES.len(),
            |d, b, mut v| {
                // Counters not asked for come back 0, as the store interface says.
                for (i, x) in v.iter_mut().enumerate() {
                    if !q.counters.contains(i) {
                        *x = 0;
                    }
                }
                let key = q.group_by.iter().map(|f| d.get(*f)).collect();
                out.entry((key, b))
                    .or_default()
                    .add(&Counters::from_slice(&v));
            },
        )?;
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
        let group_by: &[Facet] = if q.by_domain { &[Facet::Domain] } else { &[] };
        let plan = self.plan(Cube::Full, q.filter, group_by, q.by_domain)?;
        if plan.empty() {
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
        let mut ids: Vec<u64> = texts.keys().copied().collect();
        ids.sort_unstable();
        let inc = Increment::ALL
            .iter()
            .position(|i| *i == q.increment)
            .unwrap_or(0);
        let range = format!(
            "bucket >= {} AND bucket < {} AND reason IN {}",
            q.from,
            q.to,
            number_list(&ids)
        );
        let mut out: BTreeMap<(String, i64, Option<String>), [i64; 4]> = BTreeMap::new();
        self.sum(
            &plan,
            tbl::REASONS + inc as u8,
            &range,
            Extra::Reason,
            4,
            |d, reason, v| {
                let Some((class, text)) = texts.get(&(reason as u64)) else {
                    return;
                };
                let domain = q.by_domain.then(|| d.domain.clone());
                let slot = out.entry((text.clone(), *class, domain)).or_default();
                for (a, b) in slot.iter_mut().zip(v) {
                    *a += b;
                }
            },
        )?;
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
        let filter = Filter {
            groupings: q
                .subaccount
                .map(|s| Grouping {
                    and: true,
                    conditions: vec![Condition {
                        facet: Some(Facet::Subaccount),
                        eq: vec![s.to_string()],
                        ..Condition::default()
                    }],
                })
                .into_iter()
                .collect(),
        };
        let plan = self.plan(Cube::Signals, &filter, &[], true)?;
        if plan.empty() {
            return Ok(Vec::new());
        }
        let range = format!("bucket >= {} AND bucket <= {}", q.from_day, q.to_day);
        let mut out: BTreeMap<(String, i64), Daily> = BTreeMap::new();
        self.sum(
            &plan,
            tbl::DAILY,
            &range,
            Extra::Bucket,
            Daily::names().len(),
            |d, day, v| {
                out.entry((q.facet.value(d), day))
                    .or_default()
                    .add(&Daily::from_slice(&v));
            },
        )?;
        Ok(out
            .into_iter()
            .map(|((value, day), daily)| DailyRow { value, day, daily })
            .collect())
    }

    pub(super) fn facet_values_impl(&self, facet: Facet) -> Result<Vec<String>, StoreError> {
        // Every event is counted in every cube, so the facet's own holds all its values.
        let mut values: Vec<String> = self
            .cube_dims(Cube::One(facet))?
            .into_iter()
            .map(|(_, d)| d.get(facet))
            .filter(|v| !v.is_empty())
            .collect();
        values.sort();
        values.dedup();
        Ok(values)
    }
}
