//! Every rollup table of the SQLite backend, in one place: what it is keyed by, at which
//! increments it exists, and its DDL. The ingest path writes each of them; a read picks the
//! smallest one that has every facet the query groups or filters by.
//!
//! Facet values are stored as ids (`facet_values`); the facets of the sender side
//! (subaccount, campaign, template, IP pool, sending IP, sending domain) are one "sender
//! dim" id (`sdims`), those of the recipient side (subaccount, domain, mailbox provider,
//! region) one "recipient dim" id (`rdims`). A row of every Metrics counter table holds the
//! [`Counters`] of its key and bucket.
//!
//! | shape | key | increments | serves |
//! |---|---|---|---|
//! | total | bucket | minute, hour, day | no group-by, no filter; time series |
//! | narrow (one per facet) | bucket, value | hour, day | group by or filter on that one facet |
//! | sender | bucket, sdim | minute, hour, day | sender-side facets only |
//! | recipient | bucket, rdim | hour, day | recipient-side facets (and subaccount) only |
//! | full | bucket, sdim, rdim (+ index bucket, rdim, sdim) | minute, hour, day | anything |
//!
//! Every key starts with the bucket: ingest arrives roughly in time order, so a batch's
//! upserts land in the few pages of the current buckets instead of one page per value all
//! over the table (each dirty page is 4 KiB written to the WAL and again at checkpoint).
//! A read over a range scans it; a read for a few values seeks to each (bucket, value).
//!
//! Narrow and recipient tables also have a week table (day rows summed per week), read for
//! the whole weeks of a long day-precision range.
//!
//! Minute rows exist only for the small total and sender tables and the full table, which
//! every minute query can fall back on: minute precision allows windows of at most 48 hours,
//! and a narrow or recipient table per minute would cost one more write per event.

use petrel_signals_model::counters::{Counters, Increment};
use petrel_signals_model::daily::Daily;

use crate::store::Facet;

/// What a Metrics counter table is keyed by, besides the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Shape {
    /// Nothing: one row per bucket.
    Total,
    /// One facet's value id.
    Narrow(Facet),
    /// The sender dim.
    Sender,
    /// The recipient dim.
    Recipient,
    /// Both dims.
    Full,
}

impl Shape {
    fn name(self) -> String {
        match self {
            Shape::Total => "total".into(),
            Shape::Narrow(f) => f.name().into(),
            Shape::Sender => "sender".into(),
            Shape::Recipient => "recipient".into(),
            Shape::Full => "full".into(),
        }
    }

    /// The primary key columns, in order.
    pub(super) fn key(self) -> &'static [&'static str] {
        match self {
            Shape::Total => &["bucket"],
            Shape::Narrow(_) => &["bucket", "v"],
            Shape::Sender => &["bucket", "sdim"],
            Shape::Recipient => &["bucket", "rdim"],
            Shape::Full => &["bucket", "sdim", "rdim"],
        }
    }
}

/// Facets of a sender dim, in `sdims` column order: the first six of [`Facet::ALL`].
pub(super) const SENDER: [Facet; 6] = {
    let a = Facet::ALL;
    [a[0], a[1], a[2], a[3], a[4], a[5]]
};

/// Facets of a recipient dim, in `rdims` column order.
pub(super) const RECIPIENT: [Facet; 4] = [
    Facet::Subaccount,
    Facet::Domain,
    Facet::MailboxProvider,
    Facet::Region,
];

pub(super) fn is_sender(f: Facet) -> bool {
    SENDER.contains(&f)
}

pub(super) fn is_recipient(f: Facet) -> bool {
    RECIPIENT.contains(&f)
}

/// A Metrics counter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct MetricTable {
    pub shape: Shape,
    pub inc: Increment,
    /// A week table: rows are the sums of the day rows of a week (Monday 00:00 UTC on), so
    /// its unique counts are per day, like the day table's. A day-precision read over many
    /// weeks takes the whole weeks from here: 1 row per value and week instead of 7.
    pub weekly: bool,
}

impl MetricTable {
    pub(super) const fn new(shape: Shape, inc: Increment) -> MetricTable {
        MetricTable {
            shape,
            inc,
            weekly: false,
        }
    }

    pub(super) fn name(self) -> String {
        let span = if self.weekly { "week" } else { self.inc.name() };
        format!("metrics_{}_{span}", self.shape.name())
    }

    /// The start of the row's bucket that holds `ts`.
    pub(super) fn floor(self, ts: i64) -> i64 {
        if self.weekly {
            week_floor(ts)
        } else {
            self.inc.floor(ts)
        }
    }

    /// The length of a bucket, seconds.
    pub(super) fn step(self) -> i64 {
        if self.weekly {
            WEEK
        } else {
            self.inc.seconds()
        }
    }
}

/// Seconds in a week.
pub(super) const WEEK: i64 = 7 * 86_400;

/// 1970-01-05 00:00 UTC, a Monday: weeks start at it.
const MONDAY: i64 = 4 * 86_400;

/// Monday 00:00 UTC of the week holding `ts` (1970-01-05 was a Monday).
pub(super) fn week_floor(ts: i64) -> i64 {
    (ts - MONDAY).div_euclid(WEEK) * WEEK + MONDAY
}

/// Every Metrics counter table, in a fixed order (the index is the table's number in a
/// batch's pending counts).
pub(super) fn metric_tables() -> Vec<MetricTable> {
    let mut out = Vec::new();
    for inc in Increment::ALL {
        let minute = inc == Increment::Minute;
        out.push(MetricTable::new(Shape::Total, inc));
        if !minute {
            for f in Facet::ALL {
                out.push(MetricTable::new(Shape::Narrow(f), inc));
            }
        }
        out.push(MetricTable::new(Shape::Sender, inc));
        if !minute {
            out.push(MetricTable::new(Shape::Recipient, inc));
        }
        out.push(MetricTable::new(Shape::Full, inc));
    }
    // Week tables where a value has one row a day (the full table's rows hardly repeat
    // from day to day: a week would not be smaller).
    for shape in Facet::ALL
        .map(Shape::Narrow)
        .into_iter()
        .chain([Shape::Recipient])
    {
        out.push(MetricTable {
            weekly: true,
            ..MetricTable::new(shape, Increment::Day)
        });
    }
    out
}

/// The SQL that fills a week table created in an existing database from its day table (a
/// database of the same layout made before week tables existed), so reads that take whole
/// weeks from it see the days stored before.
pub(super) fn week_backfill(week: MetricTable) -> String {
    let day = MetricTable::new(week.shape, Increment::Day);
    let key = week.shape.key();
    let select_key: Vec<String> = key
        .iter()
        .map(|k| {
            if *k == "bucket" {
                format!("(bucket - {MONDAY}) / {WEEK} * {WEEK} + {MONDAY}")
            } else {
                (*k).to_string()
            }
        })
        .collect();
    let sums: Vec<String> = Counters::NAMES
        .iter()
        .map(|n| format!("SUM({n})"))
        .collect();
    let group: Vec<String> = (1..=key.len()).map(|i| i.to_string()).collect();
    format!(
        "INSERT INTO {} ({}, {}) SELECT {}, {} FROM {} GROUP BY {};",
        week.name(),
        key.join(", "),
        Counters::NAMES.join(", "),
        select_key.join(", "),
        sums.join(", "),
        day.name(),
        group.join(", ")
    )
}

/// The first bucket whose rows retention has kept whole (`metrics_floor` in `meta`): week
/// rows that began before it also hold days already deleted from the day tables.
pub(super) const META_METRICS_FLOOR: &str = "metrics_floor";

/// The reason tables: per reason and bucket (`total`, for reports without a filter), and per
/// reason, sender dim, bucket and recipient dim (`full`). The four counts `a`–`d` mean what
/// [`crate::store::ReasonRow::counts`] says for the reason's kind.
pub(super) fn reason_table(full: bool, inc: Increment) -> String {
    format!(
        "reasons_{}_{}",
        if full { "full" } else { "total" },
        inc.name()
    )
}

/// The daily Signals counters, per day, sender dim and mailbox provider (value id).
pub(super) const SIGNALS_TABLE: &str = "signals_daily";

/// The DDL of every rollup table and of the dictionaries.
pub(super) fn ddl() -> String {
    let mut sql = String::from(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS facet_values (
            id INTEGER PRIMARY KEY,
            facet INTEGER NOT NULL,
            value TEXT NOT NULL,
            UNIQUE (facet, value)
        );
        CREATE TABLE IF NOT EXISTS sdims (
            id INTEGER PRIMARY KEY,
            subaccount INTEGER NOT NULL, campaign INTEGER NOT NULL, template INTEGER NOT NULL,
            ip_pool INTEGER NOT NULL, sending_ip INTEGER NOT NULL, sending_domain INTEGER NOT NULL,
            UNIQUE (subaccount, campaign, template, ip_pool, sending_ip, sending_domain)
        );
        CREATE TABLE IF NOT EXISTS rdims (
            id INTEGER PRIMARY KEY,
            subaccount INTEGER NOT NULL, domain INTEGER NOT NULL,
            mailbox_provider INTEGER NOT NULL, region INTEGER NOT NULL,
            UNIQUE (subaccount, domain, mailbox_provider, region)
        );
        CREATE TABLE IF NOT EXISTS reason_texts (
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
    for t in metric_tables() {
        let key = t.shape.key();
        let cols: Vec<String> = key
            .iter()
            .map(|k| format!("{k} INTEGER NOT NULL"))
            .collect();
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({}, {}, PRIMARY KEY ({})) WITHOUT ROWID;\n",
            t.name(),
            cols.join(", "),
            counters.join(", "),
            key.join(", ")
        ));
        // Recipient-side filters on the full table (a domain, a provider) read it by rdim.
        if t.shape == Shape::Full && t.inc != Increment::Minute {
            sql.push_str(&format!(
                "CREATE INDEX IF NOT EXISTS {0}_rdim ON {0} (bucket, rdim, sdim);\n",
                t.name()
            ));
        }
    }
    for inc in Increment::ALL {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (reason INTEGER NOT NULL, bucket INTEGER NOT NULL, \
             a INTEGER NOT NULL, b INTEGER NOT NULL, c INTEGER NOT NULL, d INTEGER NOT NULL, \
             PRIMARY KEY (reason, bucket)) WITHOUT ROWID;\n",
            reason_table(false, inc)
        ));
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} (reason INTEGER NOT NULL, sdim INTEGER NOT NULL, \
             bucket INTEGER NOT NULL, rdim INTEGER NOT NULL, a INTEGER NOT NULL, \
             b INTEGER NOT NULL, c INTEGER NOT NULL, d INTEGER NOT NULL, \
             PRIMARY KEY (reason, sdim, bucket, rdim)) WITHOUT ROWID;\n",
            reason_table(true, inc)
        ));
    }
    let daily: Vec<String> = Daily::names()
        .iter()
        .map(|n| format!("{n} INTEGER NOT NULL DEFAULT 0"))
        .collect();
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (day INTEGER NOT NULL, sdim INTEGER NOT NULL, \
         provider INTEGER NOT NULL, {}, PRIMARY KEY (day, sdim, provider)) WITHOUT ROWID;\n",
        daily.join(", ")
    ));
    sql
}
