//! Reading the rollups. A read turns the query's [`Filter`] into per-value tests on the
//! dictionaries (a few thousand values, not millions of rows), picks the smallest table
//! that has every facet the query groups or filters by ([`catalog`](super::catalog)),
//! reads only the counter columns asked for, and seeks by the ids that can pass instead of
//! scanning.

use std::collections::{BTreeMap, HashMap};

use petrel_signals_model::counters::{CounterSet, Counters, Increment};
use petrel_signals_model::daily::Daily;
use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{
    is_recipient, is_sender, metric_tables, reason_table, week_floor, MetricTable, Shape,
    META_METRICS_FLOOR, SIGNALS_TABLE, WEEK,
};
use super::dict::Dict;
use super::{id_list, lock, SqliteStore, StoreError};
use crate::store::{
    DailyRow, Facet, Filter, ReasonQuery, ReasonRow, RollupQuery, RollupRow, SignalsFacet,
    SignalsQuery,
};

/// One condition of a [`Filter`], evaluated once per known value of its facet.
enum Test {
    /// A key with no data (`subject_campaigns`): the same answer for every row.
    Const(bool),
    /// `pass[value id]`.
    Values { facet: Facet, pass: Vec<bool> },
}

/// A [`Filter`] compiled against the dictionary.
struct Compiled {
    groupings: Vec<(bool, Vec<Test>)>,
}

impl Compiled {
    fn new(filter: &Filter, dict: &Dict) -> Compiled {
        let groupings = filter
            .groupings
            .iter()
            .map(|g| {
                let tests = g
                    .conditions
                    .iter()
                    .map(|c| match c.facet {
                        None => Test::Const(c.matches_value("")),
                        Some(facet) => {
                            let mut pass = vec![false; dict.value_slots()];
                            for (id, v) in dict.values_of(facet) {
                                pass[id as usize] = c.matches_value(v);
                            }
                            Test::Values { facet, pass }
                        }
                    })
                    .collect();
                (g.and, tests)
            })
            .collect();
        Compiled { groupings }
    }

    /// The facets whose values decide anything.
    fn facets(&self) -> Vec<Facet> {
        let mut out = Vec::new();
        for (_, tests) in &self.groupings {
            for t in tests {
                if let Test::Values { facet, .. } = t {
                    if !out.contains(facet) {
                        out.push(*facet);
                    }
                }
            }
        }
        out
    }

    /// True when nothing can pass (a grouping made only of false constants).
    fn never(&self) -> bool {
        self.groupings.iter().any(|(and, tests)| {
            let consts: Vec<bool> = tests
                .iter()
                .filter_map(|t| match t {
                    Test::Const(b) => Some(*b),
                    Test::Values { .. } => None,
                })
                .collect();
            if *and {
                consts.contains(&false)
            } else {
                consts.len() == tests.len() && !consts.contains(&true)
            }
        })
    }

    /// Whether a row passes, given the value id of each facet it knows (`None`: a facet the
    /// row does not have). With every facet known the answer is exact; with some unknown it
    /// is "may pass" (false only when the known ones already rule the row out).
    fn passes(&self, value: &dyn Fn(Facet) -> Option<i64>) -> bool {
        self.groupings.iter().all(|(and, tests)| {
            let mut unknown = false;
            for t in tests {
                let result = match t {
                    Test::Const(b) => *b,
                    Test::Values { facet, pass } => match value(*facet) {
                        Some(id) => pass.get(id as usize).copied().unwrap_or(false),
                        None => {
                            unknown = true;
                            continue;
                        }
                    },
                };
                if result != *and {
                    // AND: one false decides; OR: one true decides.
                    return result;
                }
            }
            *and || unknown
        })
    }
}

/// The smallest shape that has every facet in `needed` at this increment.
fn shape_for(needed: &[Facet], inc: Increment) -> Shape {
    let minute = inc == Increment::Minute;
    match needed.first() {
        None => Shape::Total,
        Some(f) if !minute && needed.iter().all(|x| x == f) => Shape::Narrow(*f),
        _ if needed.iter().all(|f| is_sender(*f)) => Shape::Sender,
        _ if !minute && needed.iter().all(|f| is_recipient(*f)) => Shape::Recipient,
        _ => Shape::Full,
    }
}

fn cols(counters: CounterSet) -> String {
    if counters.is_empty() {
        return "1".into();
    }
    counters
        .iter()
        .map(|i| Counters::NAMES[i])
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the counters asked for from columns `at…` of a row.
fn counters_at(r: &rusqlite::Row<'_>, at: usize, set: CounterSet) -> rusqlite::Result<Counters> {
    let mut c = Counters::default();
    for (n, i) in set.iter().enumerate() {
        c.set(i, r.get::<_, Option<i64>>(at + n)?.unwrap_or(0));
    }
    Ok(c)
}

/// Group key: the value ids of the group-by facets (at most 9), unused slots 0.
type GroupKey = [i64; 9];

/// Sums per (group key, bucket).
#[derive(Default)]
struct Sums(HashMap<(GroupKey, i64), Counters>);

impl Sums {
    fn add(&mut self, key: GroupKey, bucket: i64, c: &Counters) {
        self.0.entry((key, bucket)).or_default().add(c);
    }
}

/// What one read of a table needs to know.
struct Plan<'a> {
    q: &'a RollupQuery<'a>,
    f: &'a Compiled,
    dict: &'a Dict,
}

/// True when reading `ids` (of `all` ids) is better done by seeking to each (bucket, id)
/// than by scanning the whole range and skipping the others.
fn seek(ids: usize, all: usize) -> bool {
    ids * 8 <= all
}

/// A membership test by id.
fn member(ids: &[i64]) -> Vec<bool> {
    let mut v = vec![false; ids.iter().max().map_or(0, |m| *m as usize + 1)];
    for id in ids {
        v[*id as usize] = true;
    }
    v
}

fn is_in(set: &[bool], id: i64) -> bool {
    set.get(id as usize).copied().unwrap_or(false)
}

impl Plan<'_> {
    fn key(&self, value: impl Fn(Facet) -> Option<i64>) -> GroupKey {
        let mut k = [0i64; 9];
        for (i, f) in self.q.group_by.iter().enumerate().take(9) {
            k[i] = value(*f).unwrap_or(0);
        }
        k
    }

    fn bucket(&self, b: i64) -> i64 {
        if self.q.by_bucket {
            b
        } else {
            0
        }
    }

    /// Every bucket start of `table` in the range, as an SQL list.
    fn buckets(&self, table: MetricTable) -> String {
        let step = table.step();
        let mut b = table.floor(self.q.from);
        if b < self.q.from {
            b += step;
        }
        let mut out = Vec::new();
        while b < self.q.to {
            out.push(b.to_string());
            b += step;
        }
        out.join(",")
    }

    /// The `WHERE` clause and its parameters: seeks to (bucket, `col` in `ids`), or the
    /// whole bucket range.
    fn range(&self, table: MetricTable, col: &str, ids: Option<&[i64]>) -> (String, Vec<i64>) {
        match ids {
            Some(ids) => (
                format!(
                    "bucket IN ({}) AND {col} IN ({})",
                    self.buckets(table),
                    id_list(ids)
                ),
                Vec::new(),
            ),
            None => (
                "bucket >= ?1 AND bucket < ?2".into(),
                vec![self.q.from, self.q.to],
            ),
        }
    }

    /// The sender dims that may pass (all of them without a sender-side test).
    fn sdims(&self) -> Vec<i64> {
        self.dict.sender.ids_where(|v| self.f.passes(v))
    }

    /// The recipient dims that may pass.
    fn rdims(&self) -> Vec<i64> {
        self.dict.recipient.ids_where(|v| self.f.passes(v))
    }

    fn total(&self, conn: &Connection, table: &str, out: &mut Sums) -> Result<(), StoreError> {
        let set = self.q.counters;
        let sql = format!(
            "SELECT bucket, {} FROM {table} WHERE bucket >= ?1 AND bucket < ?2",
            cols(set)
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![self.q.from, self.q.to])?;
        while let Some(r) = rows.next()? {
            out.add([0; 9], self.bucket(r.get(0)?), &counters_at(r, 1, set)?);
        }
        Ok(())
    }

    /// A table keyed by the bucket then one id (a value, a sender dim, a recipient dim) of
    /// which `ids` (of `all`) may pass; `value(id, facet)` gives the facets of an id.
    fn keyed(
        &self,
        conn: &Connection,
        table: MetricTable,
        key_col: &str,
        (ids, all): (&[i64], usize),
        value: &dyn Fn(i64, Facet) -> Option<i64>,
        out: &mut Sums,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let set = self.q.counters;
        let by_seek = seek(ids.len(), all);
        let (cond, args) = self.range(table, key_col, by_seek.then_some(ids));
        let sql = format!(
            "SELECT {key_col}, bucket, {} FROM {} WHERE {cond}",
            cols(set),
            table.name()
        );
        let pass = member(ids);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            if !is_in(&pass, id) {
                continue;
            }
            let c = counters_at(r, 2, set)?;
            out.add(self.key(|f| value(id, f)), self.bucket(r.get(1)?), &c);
        }
        Ok(())
    }

    /// The full table: seeks by the few sender dims that may pass, or by the few recipient
    /// dims through its index, else scans the range; every row is then tested exactly.
    fn full(&self, conn: &Connection, t: MetricTable, out: &mut Sums) -> Result<(), StoreError> {
        let (s_ids, r_ids) = (self.sdims(), self.rdims());
        self.full_rows(conn, t, (&s_ids, &r_ids), true, self.q.counters, out)
    }

    /// Reads the rows of the full table whose sender dim is in `s_ids` and recipient dim in
    /// `r_ids` (and, with `exact`, that pass the filter), summing `set`.
    fn full_rows(
        &self,
        conn: &Connection,
        t: MetricTable,
        (s_ids, r_ids): (&[i64], &[i64]),
        exact: bool,
        set: CounterSet,
        out: &mut Sums,
    ) -> Result<(), StoreError> {
        if s_ids.is_empty() || r_ids.is_empty() {
            return Ok(());
        }
        let d = self.dict;
        let (s_all, r_all) = (d.sender.count(), d.recipient.count());
        let share = |n: usize, all: usize| n as f64 / all.max(1) as f64;
        let name = t.name();
        let (from, cond, args) =
            if seek(s_ids.len(), s_all) && share(s_ids.len(), s_all) <= share(r_ids.len(), r_all) {
                let (c, a) = self.range(t, "sdim", Some(s_ids));
                (name.clone(), c, a)
            } else if t.inc != Increment::Minute && seek(r_ids.len(), r_all) {
                let (c, a) = self.range(t, "rdim", Some(r_ids));
                (format!("{name} INDEXED BY {name}_rdim"), c, a)
            } else {
                let (c, a) = self.range(t, "", None);
                (name.clone(), c, a)
            };
        let sql = format!(
            "SELECT sdim, rdim, bucket, {} FROM {from} WHERE {cond}",
            cols(set)
        );
        let (s_pass, r_pass) = (member(s_ids), member(r_ids));
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            let (s, rd): (i64, i64) = (r.get(0)?, r.get(1)?);
            if !is_in(&s_pass, s) || !is_in(&r_pass, rd) {
                continue;
            }
            let Some(value) = d.pair(s, rd) else {
                continue;
            };
            if exact && !self.f.passes(&value) {
                continue;
            }
            let c = counters_at(r, 3, set)?;
            out.add(self.key(value), self.bucket(r.get(2)?), &c);
        }
        Ok(())
    }

    /// A filter on one side only (sender or recipient facets) that lets nearly everything
    /// through: the full table would be scanned whole. Instead, the answer is the unfiltered
    /// one (from a small table) minus the few rows the filter excludes, read by seeking to
    /// the excluded dims. Exact: counters only add up, and a row exists only when one of its
    /// counters is above 0, so a group with no row left has every counter at 0 and is
    /// dropped. `None` when this does not apply.
    fn complement(&self, conn: &Connection, t: MetricTable) -> Result<Option<Answer>, StoreError> {
        let facets = self.f.facets();
        if facets.is_empty() {
            return Ok(None);
        }
        let d = self.dict;
        let (sender, recipient) = (
            facets.iter().all(|f| is_sender(*f)),
            facets.iter().all(|f| is_recipient(*f)),
        );
        let (all_s, all_r) = (
            d.sender.ids_where(|_| true),
            d.recipient.ids_where(|_| true),
        );
        let excluded: Vec<i64>;
        let ids = if sender {
            let kept = self.sdims();
            let pass = member(&kept);
            excluded = all_s
                .iter()
                .copied()
                .filter(|s| !is_in(&pass, *s))
                .collect();
            if seek(kept.len(), all_s.len()) || !seek(excluded.len(), all_s.len()) {
                return Ok(None);
            }
            (&excluded[..], &all_r[..])
        } else if recipient && t.inc != Increment::Minute {
            let kept = self.rdims();
            let pass = member(&kept);
            excluded = all_r
                .iter()
                .copied()
                .filter(|r| !is_in(&pass, *r))
                .collect();
            if seek(kept.len(), all_r.len()) || !seek(excluded.len(), all_r.len()) {
                return Ok(None);
            }
            (&all_s[..], &excluded[..])
        } else {
            return Ok(None);
        };
        let all = Filter::all();
        let everything = read_rollups(
            conn,
            d,
            &RollupQuery {
                filter: &all,
                counters: CounterSet::all(),
                ..*self.q
            },
        )?;
        let mut out_of_filter = Sums::default();
        self.full_rows(conn, t, ids, false, CounterSet::all(), &mut out_of_filter)?;
        let out_of_filter = keyed_by_values(out_of_filter, d, self.q.group_by.len());
        let mut out = BTreeMap::new();
        for row in everything {
            let key = (row.key, row.bucket.unwrap_or(0));
            let mut c = row.counters;
            if let Some(x) = out_of_filter.get(&key) {
                for i in CounterSet::all().iter() {
                    c.set(i, c.get(i) - x.get(i));
                }
            }
            if c.is_zero() {
                continue;
            }
            let mut kept = Counters::default();
            for i in self.q.counters.iter() {
                kept.set(i, c.get(i));
            }
            out.insert(key, kept);
        }
        Ok(Some(out))
    }
}

/// Sums per (group-by values, bucket), in the order every backend answers.
type Answer = BTreeMap<(Vec<String>, i64), Counters>;

/// Sums keyed by value ids turned into sums keyed by the values (text), merged.
fn keyed_by_values(sums: Sums, dict: &Dict, n: usize) -> Answer {
    let mut out = Answer::new();
    for ((key, bucket), c) in sums.0 {
        let values: Vec<String> = (0..n.min(9))
            .map(|i| dict.value(key[i]).to_string())
            .collect();
        out.entry((values, bucket)).or_default().add(&c);
    }
    out
}

/// Starts a read: one read transaction (a consistent snapshot of dictionaries and rollups)
/// and an up-to-date dictionary.
fn begin(reader: &mut super::Reader) -> Result<(), StoreError> {
    reader.conn.execute_batch("BEGIN")?;
    if let Err(e) = reader.dict.refresh(&reader.conn) {
        let _ = reader.conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

fn end(reader: &super::Reader) {
    let _ = reader.conn.execute_batch("COMMIT");
}

impl SqliteStore {
    pub(super) fn rollups_impl(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError> {
        let mut reader = lock(&self.reader)?;
        begin(&mut reader)?;
        let result = read_rollups(&reader.conn, &reader.dict, q);
        end(&reader);
        result
    }

    pub(super) fn reasons_impl(&self, q: &ReasonQuery<'_>) -> Result<Vec<ReasonRow>, StoreError> {
        let mut reader = lock(&self.reader)?;
        begin(&mut reader)?;
        let result = read_reasons(&reader.conn, &reader.dict, q);
        end(&reader);
        result
    }

    pub(super) fn daily_impl(&self, q: &SignalsQuery) -> Result<Vec<DailyRow>, StoreError> {
        let mut reader = lock(&self.reader)?;
        begin(&mut reader)?;
        let result = read_daily(&reader.conn, &reader.dict, q);
        end(&reader);
        result
    }

    pub(super) fn facet_values_impl(&self, facet: Facet) -> Result<Vec<String>, StoreError> {
        let mut reader = lock(&self.reader)?;
        begin(&mut reader)?;
        let mut values: Vec<String> = reader
            .dict
            .values_of(facet)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty())
            .collect();
        end(&reader);
        values.sort();
        values.dedup();
        Ok(values)
    }
}

fn read_rollups(
    conn: &Connection,
    dict: &Dict,
    q: &RollupQuery<'_>,
) -> Result<Vec<RollupRow>, StoreError> {
    let f = Compiled::new(q.filter, dict);
    if f.never() {
        return Ok(Vec::new());
    }
    let mut needed: Vec<Facet> = q.group_by.to_vec();
    needed.extend(f.facets());
    let shape = shape_for(&needed, q.increment);
    let table = MetricTable::new(shape, q.increment);
    let plan = Plan { q, f: &f, dict };
    let mut sums = Sums::default();
    let complement = match shape {
        Shape::Full => plan.complement(conn, table)?,
        _ => None,
    };
    let out = match complement {
        Some(out) => out,
        None => {
            read_table(conn, &plan, table, &mut sums)?;
            keyed_by_values(sums, dict, q.group_by.len())
        }
    };
    Ok(out
        .into_iter()
        .map(|((key, bucket), counters)| RollupRow {
            key,
            bucket: q.by_bucket.then_some(bucket),
            counters,
        })
        .collect())
}

/// `metrics_floor` from `meta`: the first bucket retention kept whole (0 before any
/// retention pass).
fn metrics_floor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_METRICS_FLOOR], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Sums the rows of `table` that pass the plan's filter. A day-precision read without
/// buckets that spans whole weeks takes them from the week table (one row per value and
/// week), and only the days before and after from the day table.
fn read_table(
    conn: &Connection,
    plan: &Plan<'_>,
    table: MetricTable,
    sums: &mut Sums,
) -> Result<(), StoreError> {
    let q = plan.q;
    let weekly = MetricTable {
        weekly: true,
        ..table
    };
    if q.increment == Increment::Day && !q.by_bucket && metric_tables().contains(&weekly) {
        // The day buckets read are first..end; the whole weeks among them (and wholly
        // kept by retention) are w0..w1.
        let day = Increment::Day.seconds();
        let ceil = |t: i64, step: i64, floor: i64| if floor < t { floor + step } else { floor };
        let first = ceil(q.from, day, Increment::Day.floor(q.from));
        let end = ceil(q.to, day, Increment::Day.floor(q.to));
        let start = first.max(metrics_floor(conn)?);
        let w0 = ceil(start, WEEK, week_floor(start));
        let w1 = week_floor(end);
        if w0 < w1 {
            for (from, to, t) in [(first, w0, table), (w0, w1, weekly), (w1, end, table)] {
                if from < to {
                    let part = RollupQuery { from, to, ..*q };
                    let plan = Plan { q: &part, ..*plan };
                    read_one(conn, &plan, t, sums)?;
                }
            }
            return Ok(());
        }
    }
    read_one(conn, plan, table, sums)
}

/// Sums the rows of one table over the plan's range.
fn read_one(
    conn: &Connection,
    plan: &Plan<'_>,
    table: MetricTable,
    sums: &mut Sums,
) -> Result<(), StoreError> {
    let (dict, f, name) = (plan.dict, plan.f, table.name());
    match table.shape {
        Shape::Total => plan.total(conn, &name, sums)?,
        Shape::Narrow(facet) => {
            let all: Vec<i64> = dict.values_of(facet).map(|(id, _)| id).collect();
            let ids: Vec<i64> = all
                .iter()
                .copied()
                .filter(|id| f.passes(&|x| (x == facet).then_some(*id)))
                .collect();
            let value = |id: i64, x: Facet| (x == facet).then_some(id);
            plan.keyed(conn, table, "v", (&ids, all.len()), &value, sums)?
        }
        Shape::Sender => {
            let t = &dict.sender;
            let value = |id: i64, x: Facet| t.get(id).and_then(|d| t.value(d, x));
            let ids = (&plan.sdims()[..], t.count());
            plan.keyed(conn, table, "sdim", ids, &value, sums)?
        }
        Shape::Recipient => {
            let t = &dict.recipient;
            let value = |id: i64, x: Facet| t.get(id).and_then(|d| t.value(d, x));
            let ids = (&plan.rdims()[..], t.count());
            plan.keyed(conn, table, "rdim", ids, &value, sums)?
        }
        Shape::Full => plan.full(conn, table, sums)?,
    }
    Ok(())
}

fn read_reasons(
    conn: &Connection,
    dict: &Dict,
    q: &ReasonQuery<'_>,
) -> Result<Vec<ReasonRow>, StoreError> {
    let f = Compiled::new(q.filter, dict);
    if f.never() {
        return Ok(Vec::new());
    }
    let kind = q.kind.code();
    let reason_ids: Vec<i64> = dict
        .reasons
        .iter()
        .enumerate()
        .filter_map(|(id, r)| r.as_ref().filter(|r| r.0 == kind).map(|_| id as i64))
        .collect();
    if reason_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: BTreeMap<(String, i64, Option<String>), [i64; 4]> = BTreeMap::new();
    let mut add = |reason: i64, domain: Option<String>, counts: [i64; 4]| {
        let Some(Some((_, class, text))) = dict.reasons.get(reason as usize) else {
            return;
        };
        let slot = out.entry((text.clone(), *class, domain)).or_default();
        for (a, b) in slot.iter_mut().zip(counts) {
            *a += b;
        }
    };
    let counts = |r: &rusqlite::Row<'_>, at: usize| -> rusqlite::Result<[i64; 4]> {
        Ok([r.get(at)?, r.get(at + 1)?, r.get(at + 2)?, r.get(at + 3)?])
    };
    if f.facets().is_empty() && !q.by_domain {
        let sql = format!(
            "SELECT reason, SUM(a), SUM(b), SUM(c), SUM(d) FROM {} WHERE reason IN ({}) \
             AND bucket >= ?1 AND bucket < ?2 GROUP BY reason",
            reason_table(false, q.increment),
            id_list(&reason_ids)
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params![q.from, q.to])?;
        while let Some(r) = rows.next()? {
            add(r.get(0)?, None, counts(r, 1)?);
        }
    } else {
        let plan_q = RollupQuery {
            increment: q.increment,
            from: q.from,
            to: q.to,
            filter: q.filter,
            group_by: &[],
            by_bucket: false,
            counters: CounterSet::NONE,
        };
        let plan = Plan {
            q: &plan_q,
            f: &f,
            dict,
        };
        let s_ids = plan.sdims();
        if s_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT reason, sdim, rdim, a, b, c, d FROM {} WHERE reason IN ({}) \
             AND sdim IN ({}) AND bucket >= ?1 AND bucket < ?2",
            reason_table(true, q.increment),
            id_list(&reason_ids),
            id_list(&s_ids)
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params![q.from, q.to])?;
        while let Some(r) = rows.next()? {
            let (reason, s, rd): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let Some(value) = dict.pair(s, rd) else {
                continue;
            };
            if !f.passes(&value) {
                continue;
            }
            let domain = q
                .by_domain
                .then(|| dict.value(value(Facet::Domain).unwrap_or(0)).to_string());
            add(reason, domain, counts(r, 3)?);
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

fn read_daily(
    conn: &Connection,
    dict: &Dict,
    q: &SignalsQuery,
) -> Result<Vec<DailyRow>, StoreError> {
    let names = Daily::names();
    let sql = format!(
        "SELECT sdim, provider, day, {} FROM {SIGNALS_TABLE} WHERE day >= ?1 AND day <= ?2",
        names.join(", ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![q.from_day, q.to_day])?;
    let sub_id = match q.subaccount {
        Some(n) => match dict
            .values_of(Facet::Subaccount)
            .find(|(_, v)| v.parse::<i64>().ok() == Some(n))
        {
            Some((id, _)) => Some(id),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let mut out: BTreeMap<(String, i64), Daily> = BTreeMap::new();
    let mut v = vec![0i64; names.len()];
    while let Some(r) = rows.next()? {
        let (s, provider, day): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let Some(sd) = dict.sender.get(s) else {
            continue;
        };
        let value_id = |f: Facet| dict.sender.value(sd, f).unwrap_or(0);
        if sub_id.is_some_and(|id| id != value_id(Facet::Subaccount)) {
            continue;
        }
        let id = match q.facet {
            SignalsFacet::Subaccount => value_id(Facet::Subaccount),
            SignalsFacet::Campaign => value_id(Facet::Campaign),
            SignalsFacet::IpPool => value_id(Facet::IpPool),
            SignalsFacet::SendingDomain => value_id(Facet::SendingDomain),
            SignalsFacet::MailboxProvider => provider,
        };
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = r.get(i + 3)?;
        }
        out.entry((dict.value(id).to_string(), day))
            .or_default()
            .add(&Daily::from_slice(&v));
    }
    Ok(out
        .into_iter()
        .map(|((value, day), daily)| DailyRow { value, day, daily })
        .collect())
}
