//! The dictionaries: facet values, sender and recipient dims and reason texts, each mapped to
//! a small integer id once, so rollup rows are a few integers. Both connections keep a copy
//! in memory: the writer to find ids (creating new ones inside the ingest transaction), the
//! reader to turn ids back into values and to evaluate filters on the (few) distinct values
//! instead of on every row. Ids only ever grow (nothing deletes dictionary rows), so a copy
//! is brought up to date by reading the rows past the last id it has.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::catalog::{RECIPIENT, SENDER};
use super::StoreError;
use crate::store::Facet;

/// One of the two dim tables (`sdims`, `rdims`): tuples of value ids of a fixed list of
/// facets (whose names are also the column names), each with an id.
pub(super) struct DimTable<const N: usize> {
    table: &'static str,
    facets: [Facet; N],
    /// id → value ids; index = id.
    rows: Vec<Option<[i64; N]>>,
    by_values: HashMap<[i64; N], i64>,
}

impl<const N: usize> DimTable<N> {
    fn new(table: &'static str, facets: [Facet; N]) -> Self {
        DimTable {
            table,
            facets,
            rows: Vec::new(),
            by_values: HashMap::new(),
        }
    }

    fn columns(&self) -> String {
        self.facets.map(|f| f.name()).join(", ")
    }

    fn refresh(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT id, {} FROM {} WHERE id > ?1",
            self.columns(),
            self.table
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([max_id(&self.rows)], |r| {
            let mut d = [0i64; N];
            for (i, v) in d.iter_mut().enumerate() {
                *v = r.get(i + 1)?;
            }
            Ok((r.get::<_, i64>(0)?, d))
        })?;
        for row in rows {
            let (id, d) = row?;
            self.by_values.insert(d, id);
            put(&mut self.rows, id, d);
        }
        Ok(())
    }

    /// The id of a tuple, created when new (writer only, inside its transaction).
    pub(super) fn id(&mut self, conn: &Connection, d: [i64; N]) -> Result<i64, StoreError> {
        if let Some(id) = self.by_values.get(&d) {
            return Ok(*id);
        }
        let cols = self.columns();
        let marks: Vec<String> = (1..=N).map(|i| format!("?{i}")).collect();
        let cond: Vec<String> = self
            .facets
            .iter()
            .zip(&marks)
            .map(|(f, m)| format!("{} = {m}", f.name()))
            .collect();
        let table = self.table;
        let found: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM {table} WHERE {}",
                cond.join(" AND ")
            ))?
            .query_row(rusqlite::params_from_iter(d), |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                conn.prepare_cached(&format!(
                    "INSERT INTO {table} ({cols}) VALUES ({})",
                    marks.join(", ")
                ))?
                .execute(rusqlite::params_from_iter(d))?;
                conn.last_insert_rowid()
            }
        };
        self.by_values.insert(d, id);
        put(&mut self.rows, id, d);
        Ok(id)
    }

    /// The value ids of a dim.
    pub(super) fn get(&self, id: i64) -> Option<&[i64; N]> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.rows.get(i))
            .and_then(|r| r.as_ref())
    }

    /// The value id a facet has in a dim's tuple, if the tuple holds that facet.
    pub(super) fn value(&self, d: &[i64; N], f: Facet) -> Option<i64> {
        self.facets.iter().position(|x| *x == f).map(|i| d[i])
    }

    /// How many dims there are.
    pub(super) fn count(&self) -> usize {
        self.rows.iter().flatten().count()
    }

    /// The ids of the dims for which `keep` holds, given the value id of each facet
    /// (`None` for a facet the dim does not hold).
    pub(super) fn ids_where(
        &self,
        keep: impl Fn(&dyn Fn(Facet) -> Option<i64>) -> bool,
    ) -> Vec<i64> {
        (0..self.rows.len())
            .filter_map(|id| self.rows[id].as_ref().map(|d| (id as i64, d)))
            .filter(|(_, d)| keep(&|f| self.value(d, f)))
            .map(|(id, _)| id)
            .collect()
    }
}

/// A reason text's key: (kind code, class, text).
type ReasonKey = (i64, i64, String);

/// The in-memory copy of the dictionaries.
pub(super) struct Dict {
    /// id → (facet code, value); index = id.
    values: Vec<Option<(usize, String)>>,
    /// Per facet code: value → id.
    by_value: [HashMap<String, i64>; 9],
    /// Subaccount number → value id (saves formatting the number for every event).
    subaccounts: HashMap<i64, i64>,
    /// Sender dims: value ids of [`SENDER`]'s facets.
    pub sender: DimTable<6>,
    /// Recipient dims: value ids of [`RECIPIENT`]'s facets.
    pub recipient: DimTable<4>,
    /// id → (kind, class, text); index = id.
    pub reasons: Vec<Option<ReasonKey>>,
    by_reason: HashMap<ReasonKey, i64>,
}

fn put<T>(v: &mut Vec<Option<T>>, id: i64, item: T) {
    let i = usize::try_from(id).unwrap_or(0);
    if v.len() <= i {
        v.resize_with(i + 1, || None);
    }
    v[i] = Some(item);
}

fn max_id<T>(v: &[Option<T>]) -> i64 {
    v.len().saturating_sub(1) as i64
}

impl Default for Dict {
    fn default() -> Self {
        Dict {
            values: Vec::new(),
            by_value: Default::default(),
            subaccounts: HashMap::new(),
            sender: DimTable::new("sdims", SENDER),
            recipient: DimTable::new("rdims", RECIPIENT),
            reasons: Vec::new(),
            by_reason: HashMap::new(),
        }
    }
}

impl Dict {
    /// Reads the dictionary rows added since the last call.
    pub(super) fn refresh(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let mut stmt =
            conn.prepare_cached("SELECT id, facet, value FROM facet_values WHERE id > ?1")?;
        let rows = stmt.query_map([max_id(&self.values)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, facet, value) = row?;
            let facet = usize::try_from(facet).unwrap_or(0).min(8);
            self.by_value[facet].insert(value.clone(), id);
            if facet == Facet::Subaccount.code() {
                if let Ok(n) = value.parse() {
                    self.subaccounts.insert(n, id);
                }
            }
            put(&mut self.values, id, (facet, value));
        }
        self.sender.refresh(conn)?;
        self.recipient.refresh(conn)?;
        let mut stmt =
            conn.prepare_cached("SELECT id, kind, class, text FROM reason_texts WHERE id > ?1")?;
        let rows = stmt.query_map([max_id(&self.reasons)], |r| {
            Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })?;
        for row in rows {
            let (id, key) = row?;
            self.by_reason.insert(key.clone(), id);
            put(&mut self.reasons, id, key);
        }
        Ok(())
    }

    /// The value of a value id ("" for an unknown id).
    pub(super) fn value(&self, id: i64) -> &str {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.values.get(i))
            .and_then(|v| v.as_ref())
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every (id, value) of a facet.
    pub(super) fn values_of(&self, facet: Facet) -> impl Iterator<Item = (i64, &str)> {
        let code = facet.code();
        self.values.iter().enumerate().filter_map(move |(id, v)| {
            v.as_ref()
                .filter(|(f, _)| *f == code)
                .map(|(_, value)| (id as i64, value.as_str()))
        })
    }

    /// How many value ids there are (the length of a per-id table).
    pub(super) fn value_slots(&self) -> usize {
        self.values.len()
    }

    /// The id of a facet value, created when new (writer only, inside its transaction).
    pub(super) fn value_id(
        &mut self,
        conn: &Connection,
        facet: Facet,
        value: &str,
    ) -> Result<i64, StoreError> {
        if let Some(id) = self.by_value[facet.code()].get(value) {
            return Ok(*id);
        }
        let code = facet.code() as i64;
        conn.prepare_cached("INSERT OR IGNORE INTO facet_values (facet, value) VALUES (?1, ?2)")?
            .execute(params![code, value])?;
        let id: i64 = conn
            .prepare_cached("SELECT id FROM facet_values WHERE facet = ?1 AND value = ?2")?
            .query_row(params![code, value], |r| r.get(0))?;
        self.by_value[facet.code()].insert(value.to_string(), id);
        put(&mut self.values, id, (facet.code(), value.to_string()));
        Ok(id)
    }

    /// The value id of a subaccount number.
    pub(super) fn subaccount_id(&mut self, conn: &Connection, n: i64) -> Result<i64, StoreError> {
        if let Some(id) = self.subaccounts.get(&n) {
            return Ok(*id);
        }
        let id = self.value_id(conn, Facet::Subaccount, &n.to_string())?;
        self.subaccounts.insert(n, id);
        Ok(id)
    }

    /// The id of a reason text of a kind and class, created when new.
    pub(super) fn reason_id(
        &mut self,
        conn: &Connection,
        kind: i64,
        class: i64,
        text: &str,
    ) -> Result<i64, StoreError> {
        let key = (kind, class, text.to_string());
        if let Some(id) = self.by_reason.get(&key) {
            return Ok(*id);
        }
        conn.prepare_cached(
            "INSERT OR IGNORE INTO reason_texts (kind, class, text) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![kind, class, text])?;
        let id: i64 = conn
            .prepare_cached(
                "SELECT id FROM reason_texts WHERE kind = ?1 AND class = ?2 AND text = ?3",
            )?
            .query_row(params![kind, class, text], |r| r.get(0))?;
        self.by_reason.insert(key.clone(), id);
        put(&mut self.reasons, id, key);
        Ok(id)
    }

    /// The value id of each facet of a row keyed by a sender dim and a recipient dim, if
    /// both are known.
    pub(super) fn pair(&self, sdim: i64, rdim: i64) -> Option<impl Fn(Facet) -> Option<i64> + '_> {
        let (s, r) = (self.sender.get(sdim)?, self.recipient.get(rdim)?);
        Some(move |f| {
            self.sender
                .value(s, f)
                .or_else(|| self.recipient.value(r, f))
        })
    }

    /// Every reason id.
    pub(super) fn reason_ids(&self) -> Vec<i64> {
        (0..self.reasons.len())
            .filter(|i| self.reasons[*i].is_some())
            .map(|i| i as i64)
            .collect()
    }
}
