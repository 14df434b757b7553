//! Rollup tables and how a batch's counts reach them: the facet tuple of each cube is
//! mapped to a dim id (cached), counts are added up per `(table, dim, bucket)` in memory for
//! the whole batch, and each distinct key is then written once with an upsert.

use std::collections::HashMap;

use petrel_signals_model::counters::{Counters, Increment};
use petrel_signals_model::daily::Daily;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::StoreError;
use crate::store::{Dims, Facet};

/// A subset of the facets that a family of rollup tables keys by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Cube {
    /// Every facet.
    Full,
    /// Subaccount, campaign, template, IP pool, sending IP, sending domain.
    Sender,
    /// Subaccount, recipient domain, mailbox provider, region.
    Recipient,
    /// The Signals facets: subaccount, campaign, IP pool, sending domain, mailbox provider.
    Signals,
}

impl Cube {
    pub(super) fn code(self) -> i64 {
        match self {
            Cube::Full => 0,
            Cube::Sender => 1,
            Cube::Recipient => 2,
            Cube::Signals => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cube::Full => "full",
            Cube::Sender => "sender",
            Cube::Recipient => "recipient",
            Cube::Signals => "signals",
        }
    }

    /// The facets this cube keeps.
    pub(super) fn has(self, f: Facet) -> bool {
        match self {
            Cube::Full => true,
            Cube::Sender => !f.is_recipient_side(),
            Cube::Recipient => matches!(
                f,
                Facet::Subaccount | Facet::Domain | Facet::MailboxProvider | Facet::Region
            ),
            Cube::Signals => matches!(
                f,
                Facet::Subaccount
                    | Facet::Campaign
                    | Facet::IpPool
                    | Facet::SendingDomain
                    | Facet::MailboxProvider
            ),
        }
    }

    /// `d` with the facets this cube does not keep blanked.
    pub(super) fn project(self, d: &Dims) -> Dims {
        let keep = |f: Facet, v: &String| {
            if self.has(f) {
                v.clone()
            } else {
                String::new()
            }
        };
        Dims {
            subaccount: d.subaccount,
            campaign: keep(Facet::Campaign, &d.campaign),
            template: keep(Facet::Template, &d.template),
            ip_pool: keep(Facet::IpPool, &d.ip_pool),
            sending_ip: keep(Facet::SendingIp, &d.sending_ip),
            sending_domain: keep(Facet::SendingDomain, &d.sending_domain),
            domain: keep(Facet::Domain, &d.domain),
            mailbox_provider: keep(Facet::MailboxProvider, &d.mailbox_provider),
            region: keep(Facet::Region, &d.region),
        }
    }
}

/// The Metrics rollup tables that exist. The recipient cube has no minute table: minute
/// queries are limited to 48 hours and read the full cube instead, which saves a write per
/// event at ingest.
pub(super) const METRIC_TABLES: [(Cube, Increment); 8] = [
    (Cube::Full, Increment::Minute),
    (Cube::Full, Increment::Hour),
    (Cube::Full, Increment::Day),
    (Cube::Sender, Increment::Minute),
    (Cube::Sender, Increment::Hour),
    (Cube::Sender, Increment::Day),
    (Cube::Recipient, Increment::Hour),
    (Cube::Recipient, Increment::Day),
];

pub(super) fn metric_table(cube: Cube, inc: Increment) -> String {
    format!("roll_{}_{}", cube.name(), inc.name())
}

pub(super) fn reason_table(inc: Increment) -> String {
    format!("roll_reason_{}", inc.name())
}

/// The smallest cube holding every facet in `needed` at this increment.
pub(super) fn cube_for(needed: &[Facet], inc: Increment) -> Cube {
    for cube in [Cube::Sender, Cube::Recipient] {
        if METRIC_TABLES.contains(&(cube, inc)) && needed.iter().all(|f| cube.has(*f)) {
            return cube;
        }
    }
    Cube::Full
}

pub(super) fn create_tables(conn: &Connection) -> Result<(), StoreError> {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS dims (
            id INTEGER PRIMARY KEY,
            cube INTEGER NOT NULL,
            subaccount INTEGER NOT NULL,
            campaign TEXT NOT NULL,
            template TEXT NOT NULL,
            ip_pool TEXT NOT NULL,
            sending_ip TEXT NOT NULL,
            sending_domain TEXT NOT NULL,
            domain TEXT NOT NULL,
            mailbox_provider TEXT NOT NULL,
            region TEXT NOT NULL,
            UNIQUE (cube, subaccount, campaign, template, ip_pool, sending_ip, sending_domain,
                    domain, mailbox_provider, region)
        );
        CREATE TABLE IF NOT EXISTS reasons (
            id INTEGER PRIMARY KEY,
            kind INTEGER NOT NULL,
            class INTEGER NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (kind, class, text)
        );\n",
    );
    let counters: Vec<String> = Counters::NAMES
        .iter()
        .map(|n| format!("{n} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    for (cube, inc) in METRIC_TABLES {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (dim INTEGER NOT NULL, bucket INTEGER NOT NULL, {}, \
             PRIMARY KEY (dim, bucket)) WITHOUT ROWID;\n",
            metric_table(cube, inc),
            counters.join(", ")
        ));
    }
    for inc in Increment::ALL {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (dim INTEGER NOT NULL, bucket INTEGER NOT NULL, \
             reason INTEGER NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL, c INTEGER NOT NULL, \
             d INTEGER NOT NULL, PRIMARY KEY (dim, bucket, reason)) WITHOUT ROWID;\n",
            reason_table(inc)
        ));
    }
    let daily: Vec<String> = Daily::names()
        .iter()
        .map(|n| format!("{n} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS signals_day (dim INTEGER NOT NULL, day INTEGER NOT NULL, {}, \
         PRIMARY KEY (dim, day)) WITHOUT ROWID;\n",
        daily.join(", ")
    ));
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Loads every dim and reason into the writer's caches.
pub(super) fn load_caches(
    conn: &Connection,
    dims: &mut HashMap<(i64, Dims), i64>,
    reasons: &mut HashMap<(i64, i64, String), i64>,
) -> Result<(), StoreError> {
    dims.clear();
    reasons.clear();
    let mut stmt = conn.prepare(
        "SELECT id, cube, subaccount, campaign, template, ip_pool, sending_ip, sending_domain, \
         domain, mailbox_provider, region FROM dims",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            dims_from_row(r, 2)?,
        ))
    })?;
    for row in rows {
        let (id, cube, d) = row?;
        dims.insert((cube, d), id);
    }
    let mut stmt = conn.prepare("SELECT id, kind, class, text FROM reasons")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    for row in rows {
        let (id, kind, class, text) = row?;
        reasons.insert((kind, class, text), id);
    }
    Ok(())
}

/// Reads a [`Dims`] from 9 columns starting at `at`.
pub(super) fn dims_from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Dims> {
    Ok(Dims {
        subaccount: r.get(at)?,
        campaign: r.get(at + 1)?,
        template: r.get(at + 2)?,
        ip_pool: r.get(at + 3)?,
        sending_ip: r.get(at + 4)?,
        sending_domain: r.get(at + 5)?,
        domain: r.get(at + 6)?,
        mailbox_provider: r.get(at + 7)?,
        region: r.get(at + 8)?,
    })
}

/// The dim id of `d` projected on `cube`, created when new.
pub(super) fn dim_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<(i64, Dims), i64>,
    cube: Cube,
    d: &Dims,
) -> Result<i64, StoreError> {
    let key = (cube.code(), cube.project(d));
    if let Some(id) = cache.get(&key) {
        return Ok(*id);
    }
    let p = &key.1;
    let args = params![
        key.0,
        p.subaccount,
        p.campaign,
        p.template,
        p.ip_pool,
        p.sending_ip,
        p.sending_domain,
        p.domain,
        p.mailbox_provider,
        p.region
    ];
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM dims WHERE cube = ?1 AND subaccount = ?2 AND campaign = ?3 AND \
             template = ?4 AND ip_pool = ?5 AND sending_ip = ?6 AND sending_domain = ?7 AND \
             domain = ?8 AND mailbox_provider = ?9 AND region = ?10",
        )?
        .query_row(args, |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached(
                "INSERT INTO dims (cube, subaccount, campaign, template, ip_pool, sending_ip, \
                 sending_domain, domain, mailbox_provider, region) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(args)?;
            tx.last_insert_rowid()
        }
    };
    cache.insert(key, id);
    Ok(id)
}

/// The id of a reason text, created when new.
pub(super) fn reason_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<(i64, i64, String), i64>,
    kind: i64,
    class: i64,
    text: &str,
) -> Result<i64, StoreError> {
    let key = (kind, class, text.to_string());
    if let Some(id) = cache.get(&key) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO reasons (kind, class, text) VALUES (?1, ?2, ?3)")?
        .execute(params![kind, class, text])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM reasons WHERE kind = ?1 AND class = ?2 AND text = ?3")?
        .query_row(params![kind, class, text], |r| r.get(0))?;
    cache.insert(key, id);
    Ok(id)
}

/// A batch's counts, added up in memory before they are written.
#[derive(Default)]
pub(super) struct Pending {
    /// (table index in [`METRIC_TABLES`], dim, bucket) → counters.
    pub metrics: HashMap<(usize, i64, i64), Counters>,
    /// (increment index, dim, bucket, reason) → counts.
    pub reasons: HashMap<(usize, i64, i64, i64), [i64; 4]>,
    /// (dim, day) → daily Signals counters.
    pub daily: HashMap<(i64, i64), Daily>,
}

fn upsert_sql(table: &str, key: &[&str], cols: &[String]) -> String {
    let all: Vec<String> = key
        .iter()
        .map(|k| k.to_string())
        .chain(cols.iter().cloned())
        .collect();
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

impl Pending {
    /// Writes every pending key with one upsert each.
    pub(super) fn flush(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let counter_cols: Vec<String> = Counters::NAMES.iter().map(|s| s.to_string()).collect();
        let sqls: Vec<String> = METRIC_TABLES
            .iter()
            .map(|(c, i)| upsert_sql(&metric_table(*c, *i), &["dim", "bucket"], &counter_cols))
            .collect();
        for ((t, dim, bucket), c) in self.metrics {
            let mut v = vec![dim, bucket];
            v.extend(c.to_vec());
            tx.prepare_cached(&sqls[t])?.execute(params_from_iter(v))?;
        }
        let abcd: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let reason_sqls: Vec<String> = Increment::ALL
            .iter()
            .map(|i| upsert_sql(&reason_table(*i), &["dim", "bucket", "reason"], &abcd))
            .collect();
        for ((i, dim, bucket, reason), c) in self.reasons {
            let mut v = vec![dim, bucket, reason];
            v.extend(c);
            tx.prepare_cached(&reason_sqls[i])?
                .execute(params_from_iter(v))?;
        }
        let daily_sql = upsert_sql("signals_day", &["dim", "day"], &Daily::names());
        for ((dim, day), d) in self.daily {
            let mut v = vec![dim, day];
            v.extend(d.to_vec());
            tx.prepare_cached(&daily_sql)?
                .execute(params_from_iter(v))?;
        }
        Ok(())
    }
}
