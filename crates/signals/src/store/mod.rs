//! The store interface: everything the APIs read and write goes through [`AnalyticsStore`],
//! so every backend answers the same queries. SQLite, the embedded default, is
//! [`sqlite::SqliteStore`]; ClickHouse, for scale-out, is [`clickhouse::ClickHouseStore`].
//!
//! The types here are the contract: a [`PreparedBatch`] of validated events in, and for
//! reads, rollup rows of raw [`Counters`] / [`Daily`] counters keyed by facet values. What
//! the numbers *mean* (public metrics, the Health Score, rates) is computed above the store
//! from those counters by `petrel-signals-model`, so backends only sum.

pub mod clickhouse;
pub(crate) mod counting;
pub(crate) mod group_commit;
pub mod sqlite;

use petrel_signals_model::counters::{CounterSet, Counters, Increment};
use petrel_signals_model::daily::Daily;

pub use crate::ingest::PreparedBatch;
pub use clickhouse::{ClickHouseSettings, ClickHouseStore};
pub use sqlite::{BatchOutcome, BatchPage, EventPage, SqliteStore};

use crate::query::{BatchQuery, EventQuery};
use crate::Permission;

/// Why a store operation failed. The API layer answers [`StoreError::Unavailable`] with 503
/// (the client should keep its data and retry) and every other error with 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused; the database is unusable or full.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The operating system random generator failed (needed for keys and batch ids).
    #[error("random number generator failed")]
    Random,
    /// A mutex was poisoned by a panicking thread.
    #[error("database lock poisoned")]
    Poisoned,
    /// The store's server cannot be reached or is overloaded right now (ClickHouse down,
    /// timed out, too many parts, another instance holding the ingest lease too long).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's server refused a statement (a bug or an incompatible server).
    #[error("store error: {0}")]
    Backend(String),
    /// The database file was made by a petrel with another storage layout.
    #[error(
        "{path}: database layout {found}, this petrel needs layout {need}; \
         re-ingest into a new file or delete this one"
    )]
    Layout {
        /// The database file.
        path: String,
        /// Its layout (`PRAGMA user_version`).
        found: i64,
        /// The layout this build reads and writes.
        need: i64,
    },
}

/// A facet the Metrics API groups or filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facet {
    /// `subaccount_id` (0 = primary account).
    Subaccount,
    /// `campaign_id`.
    Campaign,
    /// `template_id`.
    Template,
    /// `ip_pool` (PowerMTA's VirtualMTA pool).
    IpPool,
    /// `sending_ip`.
    SendingIp,
    /// `sending_domain`.
    SendingDomain,
    /// Recipient domain (`domain`).
    Domain,
    /// `mailbox_provider`.
    MailboxProvider,
    /// `mailbox_provider_region`.
    Region,
}

impl Facet {
    /// Every facet.
    pub const ALL: [Facet; 9] = [
        Facet::Subaccount,
        Facet::Campaign,
        Facet::Template,
        Facet::IpPool,
        Facet::SendingIp,
        Facet::SendingDomain,
        Facet::Domain,
        Facet::MailboxProvider,
        Facet::Region,
    ];

    /// True for the facets that describe the recipient side (domain, provider, region).
    pub fn is_recipient_side(self) -> bool {
        matches!(self, Facet::Domain | Facet::MailboxProvider | Facet::Region)
    }

    /// The position in [`Facet::ALL`]: a stable small number for storage.
    pub fn code(self) -> usize {
        Facet::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }

    /// A short name for storage (table and column names).
    pub fn name(self) -> &'static str {
        match self {
            Facet::Subaccount => "subaccount",
            Facet::Campaign => "campaign",
            Facet::Template => "template",
            Facet::IpPool => "ip_pool",
            Facet::SendingIp => "sending_ip",
            Facet::SendingDomain => "sending_domain",
            Facet::Domain => "domain",
            Facet::MailboxProvider => "mailbox_provider",
            Facet::Region => "region",
        }
    }
}

/// The facet values of one rollup key. Unknown values are empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Dims {
    /// `subaccount_id`.
    pub subaccount: i64,
    /// `campaign_id`.
    pub campaign: String,
    /// `template_id`.
    pub template: String,
    /// `ip_pool`.
    pub ip_pool: String,
    /// `sending_ip`.
    pub sending_ip: String,
    /// `sending_domain`.
    pub sending_domain: String,
    /// Recipient domain.
    pub domain: String,
    /// `mailbox_provider`.
    pub mailbox_provider: String,
    /// `mailbox_provider_region`.
    pub region: String,
}

impl Dims {
    /// The value of `facet` as text (the subaccount as its decimal form).
    pub fn get(&self, facet: Facet) -> String {
        match facet {
            Facet::Subaccount => self.subaccount.to_string(),
            Facet::Campaign => self.campaign.clone(),
            Facet::Template => self.template.clone(),
            Facet::IpPool => self.ip_pool.clone(),
            Facet::SendingIp => self.sending_ip.clone(),
            Facet::SendingDomain => self.sending_domain.clone(),
            Facet::Domain => self.domain.clone(),
            Facet::MailboxProvider => self.mailbox_provider.clone(),
            Facet::Region => self.region.clone(),
        }
    }
}

/// One comparison of a [`Filter`]: a facet's value (lower-cased) against lists of values.
/// A value passes when it equals one of `eq` or contains one of `like` (either list empty:
/// no such requirement, both empty: any value) and equals none of `not_eq` and contains
/// none of `not_like`. All lists hold lower-case text; a subaccount is its decimal form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// The facet compared; `None` for a key petrel has no data for (SparkPost's
    /// `subject_campaigns`, an add-on), whose value is always the empty string.
    pub facet: Option<Facet>,
    /// Exact values, one of which must match.
    pub eq: Vec<String>,
    /// Substrings, one of which must occur.
    pub like: Vec<String>,
    /// Exact values that must not match.
    pub not_eq: Vec<String>,
    /// Substrings that must not occur.
    pub not_like: Vec<String>,
}

impl Condition {
    /// True when a facet value passes (compared without regard to case).
    pub fn matches_value(&self, value: &str) -> bool {
        let v = value.to_lowercase();
        let included = (self.eq.is_empty() && self.like.is_empty())
            || self.eq.contains(&v)
            || self.like.iter().any(|l| v.contains(l.as_str()));
        included
            && !self.not_eq.contains(&v)
            && !self.not_like.iter().any(|l| v.contains(l.as_str()))
    }

    /// True when the row with these facet values passes.
    pub fn matches(&self, dims: &Dims) -> bool {
        self.matches_value(&self.facet.map(|f| dims.get(f)).unwrap_or_default())
    }
}

/// A group of conditions joined by AND or by OR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping {
    /// True: every condition must hold; false: at least one.
    pub and: bool,
    /// The conditions, each on one facet.
    pub conditions: Vec<Condition>,
}

impl Grouping {
    /// True when the row with these facet values passes.
    pub fn matches(&self, dims: &Dims) -> bool {
        if self.and {
            self.conditions.iter().all(|c| c.matches(dims))
        } else {
            self.conditions.iter().any(|c| c.matches(dims))
        }
    }
}

/// Which rows a read counts: SparkPost's simple list filters or its `query_filters`
/// groupings (ANDed together), as data, so that each backend can turn it into its own query
/// (SQL `WHERE` terms, a dictionary lookup) instead of calling back for every row. No
/// groupings: every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Every grouping must hold.
    pub groupings: Vec<Grouping>,
}

impl Filter {
    /// No filter: every row counts.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// True when the row with these facet values passes.
    pub fn matches(&self, dims: &Dims) -> bool {
        self.groupings.iter().all(|g| g.matches(dims))
    }

    /// The facets the filter looks at.
    pub fn facets(&self) -> Vec<Facet> {
        self.groupings
            .iter()
            .flat_map(|g| g.conditions.iter().filter_map(|c| c.facet))
            .collect()
    }
}

/// A read of the Metrics rollups.
pub struct RollupQuery<'a> {
    /// Which rollup increment to read.
    pub increment: Increment,
    /// First bucket start included (unix seconds, a multiple of the increment).
    pub from: i64,
    /// First bucket start excluded.
    pub to: i64,
    /// Which rows count.
    pub filter: &'a Filter,
    /// Facets to group by (empty: one total).
    pub group_by: &'a [Facet],
    /// Also group by bucket (time series).
    pub by_bucket: bool,
    /// The counters to sum; the others come back 0. With [`CounterSet::NONE`] the read
    /// still returns a row (of zeros) for every group that has data in the range.
    pub counters: CounterSet,
}

/// A row of a rollup read.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// The group-by facet values, in `group_by` order.
    pub key: Vec<String>,
    /// The bucket start, when grouped by bucket.
    pub bucket: Option<i64>,
    /// Summed counters.
    pub counters: Counters,
}

/// Which reason report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonKind {
    /// Bounces and out-of-band bounces by `reason` and bounce class.
    Bounce,
    /// Delays by `reason`.
    Delay,
    /// Policy and generation rejections by `reason` and rejection type.
    Rejection,
    /// Clicks by link name (or URL).
    Link,
}

impl ReasonKind {
    /// Stable storage code.
    pub fn code(self) -> i64 {
        match self {
            ReasonKind::Bounce => 0,
            ReasonKind::Delay => 1,
            ReasonKind::Rejection => 2,
            ReasonKind::Link => 3,
        }
    }
}

/// A read of the reason rollups.
pub struct ReasonQuery<'a> {
    /// Which report.
    pub kind: ReasonKind,
    /// Rollup increment.
    pub increment: Increment,
    /// First bucket included.
    pub from: i64,
    /// First bucket excluded.
    pub to: i64,
    /// Which rows count.
    pub filter: &'a Filter,
    /// Also group by recipient domain.
    pub by_domain: bool,
}

/// A row of a reason read. The meaning of `counts` depends on the kind:
/// bounce: `[inband, outofband, admin, 0]`; delay: `[delayed, delayed_first, 0, 0]`;
/// rejection: `[rejected, 0, 0, 0]`; link: `[clicked, raw_clicked, 0, 0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonRow {
    /// The reason text (or link name).
    pub reason: String,
    /// Bounce class (bounce), rejection category id (rejection), else 0.
    pub class: i64,
    /// Recipient domain when grouped by domain.
    pub domain: Option<String>,
    /// Summed counts.
    pub counts: [i64; 4],
}

/// A Signals facet (spec §4.4: no sending-IP facet; the subaccount is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalsFacet {
    /// `sid`.
    Subaccount,
    /// `campaign_id`.
    Campaign,
    /// `ip_pool`.
    IpPool,
    /// `mb_provider`.
    MailboxProvider,
    /// `sending_domain`.
    SendingDomain,
}

impl SignalsFacet {
    /// The facet's value in `d` (the subaccount as decimal text).
    pub fn value(self, d: &Dims) -> String {
        match self {
            SignalsFacet::Subaccount => d.subaccount.to_string(),
            SignalsFacet::Campaign => d.campaign.clone(),
            SignalsFacet::IpPool => d.ip_pool.clone(),
            SignalsFacet::MailboxProvider => d.mailbox_provider.clone(),
            SignalsFacet::SendingDomain => d.sending_domain.clone(),
        }
    }
}

/// A read of the daily Signals counters.
pub struct SignalsQuery {
    /// First UTC day start included.
    pub from_day: i64,
    /// Last UTC day start included.
    pub to_day: i64,
    /// Group by.
    pub facet: SignalsFacet,
    /// Only this subaccount (`x-msys-subaccount`).
    pub subaccount: Option<i64>,
}

/// Daily counters of one facet value.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyRow {
    /// The facet value (the subaccount as decimal text for [`SignalsFacet::Subaccount`]).
    pub value: String,
    /// UTC day start.
    pub day: i64,
    /// Summed counters.
    pub daily: Daily,
}

/// How long data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw events and batch records (`event-retention`), seconds.
    pub events_secs: i64,
    /// Rollups and daily Signals counters (`metrics-retention`), seconds.
    pub metrics_secs: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            events_secs: 10 * 86_400,
            metrics_secs: 183 * 86_400,
        }
    }
}

/// What a retention pass removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expired {
    /// Raw events.
    pub events: u64,
    /// Batch records.
    pub batches: u64,
    /// Rollup rows (every increment, reasons and daily Signals rows).
    pub rollup_rows: u64,
    /// Recipients whose engagement state expired.
    pub recipients: u64,
}

/// The analytics store. Methods block (call them from a blocking thread); a backend
/// serialises its own writes.
pub trait AnalyticsStore: Send + Sync + 'static {
    /// Creates an API key, returns the secret (only its hash is kept).
    fn create_api_key(&self, label: &str, permissions: &[Permission])
        -> Result<String, StoreError>;
    /// Registers a key the operator already has.
    fn ensure_api_key(
        &self,
        key: &str,
        label: &str,
        permissions: &[Permission],
    ) -> Result<(), StoreError>;
    /// The permissions of `key`, `None` for an unknown key.
    fn key_permissions(&self, key: &str) -> Result<Option<Vec<Permission>>, StoreError>;
    /// Stores a batch: de-duplicates, enriches, stores the raw events and updates every
    /// rollup, the daily Signals counters and recipients' engagement state in one
    /// transaction; records the batch outcome.
    fn ingest(&self, batch: PreparedBatch) -> Result<BatchOutcome, StoreError>;
    /// One page of raw events.
    fn search_events(&self, q: &EventQuery) -> Result<EventPage, StoreError>;
    /// One page of batch records.
    fn search_batches(&self, q: &BatchQuery) -> Result<BatchPage, StoreError>;
    /// Every value of `facet` the store has seen (for keyword matching).
    fn facet_values(&self, facet: Facet) -> Result<Vec<String>, StoreError>;
    /// Sums Metrics rollups.
    fn rollups(&self, q: &RollupQuery<'_>) -> Result<Vec<RollupRow>, StoreError>;
    /// Sums reason rollups.
    fn reasons(&self, q: &ReasonQuery<'_>) -> Result<Vec<ReasonRow>, StoreError>;
    /// Daily Signals counters per facet value and day.
    fn daily(&self, q: &SignalsQuery) -> Result<Vec<DailyRow>, StoreError>;
    /// Deletes what is older than the retention allows, as of `now`.
    fn expire(&self, retention: &Retention, now: i64) -> Result<Expired, StoreError>;
}
