//! The suppression list: recipients petrel must not mail again because they hard-bounced,
//! complained, or an operator said so — kept per subaccount, as SparkPost does, so one
//! customer's complaint never blocks another customer's mail to the same address.
//!
//! The delivery engine asks [`SuppressionList::is_suppressed`] for every recipient, so that
//! check is served from memory only; SQLite (WAL) is the durable copy, written through on
//! every change and read back in full by [`SuppressionList::open`]. Listing and counting go
//! to SQLite instead of scanning memory, so an operator's `petrel suppression list` never
//! holds the lock the delivery path reads through.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection};

/// The longest address accepted (RFC 5321's 64-byte local part, `@` and 255-byte domain
/// round to 320 in common practice): anything longer cannot be a deliverable recipient.
pub const MAX_ADDRESS_BYTES: usize = 320;

/// Descriptions are cut to this many bytes (at a character boundary): they are kept in
/// memory for every entry, and a bounce diagnostic longer than this adds nothing.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;

/// Entries [`SuppressionList::list`] returns when the query names no limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// The most entries one [`SuppressionList::list`] call returns, so a careless query cannot
/// build a response of millions of rows.
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Why an address is suppressed. The strings are SparkPost's, so exported lists and API
/// answers read the same as theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Reason {
    /// A permanent failure that says the mailbox does not exist or will never accept mail
    /// (bounce classes 10, 30 and 90).
    #[serde(rename = "hard_bounce")]
    HardBounce,
    /// The recipient reported the mail as spam (a feedback-loop report).
    #[serde(rename = "spam_complaint")]
    Complaint,
    /// An operator added it by hand (API or CLI).
    #[serde(rename = "manual")]
    Manual,
    /// The recipient followed a link marked `data-msys-unsubscribe="1"` (the
    /// `link_unsubscribe` event).
    #[serde(rename = "link_unsubscribe")]
    LinkUnsubscribe,
}

impl Reason {
    /// Every reason, for help texts and validation messages.
    pub const ALL: [Reason; 4] = [
        Reason::HardBounce,
        Reason::Complaint,
        Reason::Manual,
        Reason::LinkUnsubscribe,
    ];

    /// The wire and database name: `hard_bounce`, `spam_complaint`, `manual` or
    /// `link_unsubscribe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::HardBounce => "hard_bounce",
            Reason::Complaint => "spam_complaint",
            Reason::Manual => "manual",
            Reason::LinkUnsubscribe => "link_unsubscribe",
        }
    }

    /// The reason named by [`Reason::as_str`]'s string, exactly; `None` for anything else,
    /// so a typo in a filter is an error rather than an empty result.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for Reason {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// A reason string petrel never writes (the database was edited, or written by a newer
/// version): reading it fails loudly instead of guessing, since a wrong guess changes who
/// gets mailed.
#[derive(Debug, thiserror::Error)]
#[error("unknown suppression reason {0:?}")]
struct UnknownReason(String);

impl FromSql for Reason {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Reason::parse(s).ok_or_else(|| FromSqlError::Other(Box::new(UnknownReason(s.into()))))
    }
}

/// What to suppress: the input of [`SuppressionList::add`], from the bounce/FBL processors,
/// the delivery engine or an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEntry {
    /// The recipient address; stored lower-cased.
    pub address: String,
    /// The subaccount whose mail to this address is suppressed (0 is the main account).
    pub subaccount: u64,
    /// Why.
    pub reason: Reason,
    /// Free text for the operator: the bounce diagnostic, the complaint's reporter, a note.
    pub description: String,
}

/// One suppressed recipient, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The address, lower-cased.
    pub address: String,
    /// The subaccount it is suppressed for.
    pub subaccount: u64,
    /// Why.
    pub reason: Reason,
    /// The operator-facing text given when it was (last) added.
    pub description: String,
    /// When it was added or last refreshed, in unix seconds.
    pub created_unix: u64,
}

impl Entry {
    /// `created_unix` as ISO-8601 in UTC (`2026-01-01T12:00:00Z`), the form the management
    /// API and the CLI show.
    pub fn created_rfc3339(&self) -> String {
        i64::try_from(self.created_unix)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.created_unix.to_string())
    }
}

/// A filter for [`SuppressionList::list`] and [`SuppressionList::count`]; `None` fields
/// match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this subaccount.
    pub subaccount: Option<u64>,
    /// Only this address (compared lower-cased, exactly).
    pub address: Option<String>,
    /// Only this reason.
    pub reason: Option<Reason>,
    /// At most this many entries ([`DEFAULT_LIST_LIMIT`] when `None`, never more than
    /// [`MAX_LIST_LIMIT`]); ignored by `count`.
    pub limit: Option<usize>,
}

/// Why a suppression operation failed, typed so callers can tell a bad request
/// (`InvalidAddress`, answer 400) from a broken disk (`Io`, `Sqlite`).
#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    /// The directory for the database could not be created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused: the database cannot be opened, is corrupt, or the disk is full.
    #[error("suppression database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The address is not `local@domain` (shortened to 100 characters if it was longer).
    #[error(
        "{0:?} is not a valid email address (it needs exactly one @ between a non-empty local \
         part and domain, no spaces or control characters, and at most {MAX_ADDRESS_BYTES} bytes)"
    )]
    InvalidAddress(String),
}

/// What memory keeps per entry; the address is the map key and the subaccount the outer key,
/// so neither is stored twice.
struct Slot {
    reason: Reason,
    description: Box<str>,
    created_unix: u64,
}

/// Subaccount → lower-cased address → entry. Nested (rather than keyed by a tuple) so the
/// hot path can look up a borrowed `&str` without building an owned key.
type Index = HashMap<u64, HashMap<Box<str>, Slot>>;

/// The write side: the connection and the next ordering sequence number. One mutex
/// serialises writers, so SQLite and memory see changes in the same order.
struct Writer {
    conn: Connection,
    next_seq: i64,
}

/// The suppression list of one petrel instance: an in-memory index for the per-recipient
/// check and a SQLite database (WAL) written through on every change. Share it behind an
/// `Arc`; every method takes `&self`.
pub struct SuppressionList {
    /// One global read-write lock is enough: reads (one per recipient) run in parallel and
    /// writes (a hard bounce, a complaint, an operator's command) are rare and hold the
    /// write lock only for one map insert or removal — never across SQL.
    index: RwLock<Index>,
    writer: Mutex<Writer>,
    /// A second connection for listing, so a long list query does not wait on (or delay)
    /// writers; WAL lets it read while the writer writes.
    reader: Mutex<Connection>,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS suppressions (
    subaccount INTEGER NOT NULL,
    address TEXT NOT NULL,
    reason TEXT NOT NULL,
    description TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    -- Order of the last add: breaks ties between entries added in the same second, so
    -- 'newest first' is exact.
    seq INTEGER NOT NULL,
    PRIMARY KEY (subaccount, address)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS suppressions_newest ON suppressions(created_unix, seq);
CREATE INDEX IF NOT EXISTS suppressions_address ON suppressions(address);
";

fn open_conn(path: &Path) -> Result<Connection, SuppressionError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // NORMAL survives a crash of petrel (the WAL is in the OS's hands after each commit);
    // only a power loss can drop the last few additions, which the next bounce re-adds.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Every index mutation is a single map insert or removal, so a panic in another thread
/// cannot leave the map half-updated: recovering from poisoning is safe and keeps delivery
/// running.
fn read(index: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    index.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(index: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

/// Each SQL change is one statement (its own transaction), so a connection whose holder
/// panicked is still consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn changes_when_lowercased(c: char) -> bool {
    let mut lower = c.to_lowercase();
    lower.next() != Some(c) || lower.next().is_some()
}

/// The form addresses are stored and compared in. Borrows (no allocation) when the address
/// is already lower-case, which is the common case on the delivery path.
fn normalize(address: &str) -> Cow<'_, str> {
    if address.is_ascii() {
        if address.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(address.to_ascii_lowercase())
        } else {
            Cow::Borrowed(address)
        }
    } else if address.chars().any(changes_when_lowercased) {
        Cow::Owned(address.to_lowercase())
    } else {
        Cow::Borrowed(address)
    }
}

fn validate(address: &str) -> Result<(), SuppressionError> {
    let well_formed = address.len() <= MAX_ADDRESS_BYTES
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if well_formed {
        return Ok(());
    }
    let shown: String = if address.chars().count() > 100 {
        address.chars().take(100).chain(['…']).collect()
    } else {
        address.to_string()
    };
    Err(SuppressionError::InvalidAddress(shown))
}

fn truncate(mut s: String, max: usize) -> String {
    s.truncate(s.floor_char_boundary(max));
    s
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Subaccounts are `u64` on the API and SQLite integers are `i64`: stored bit for bit
/// (values above `i64::MAX` become negative in the file and come back unchanged).
fn sub_to_sql(subaccount: u64) -> i64 {
    subaccount as i64
}

fn sub_from_sql(v: i64) -> u64 {
    v as u64
}

/// The WHERE clause and its parameters for a query; only the filters present appear, so
/// SQLite can use the primary key or the address index.
fn where_clause(q: &ListQuery) -> (String, Vec<Box<dyn ToSql>>) {
    let mut terms = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(s) = q.subaccount {
        args.push(Box::new(sub_to_sql(s)));
        terms.push(format!("subaccount = ?{}", args.len()));
    }
    if let Some(a) = &q.address {
        args.push(Box::new(normalize(a).into_owned()));
        terms.push(format!("address = ?{}", args.len()));
    }
    if let Some(r) = q.reason {
        args.push(Box::new(r));
        terms.push(format!("reason = ?{}", args.len()));
    }
    if terms.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", terms.join(" AND ")), args)
    }
}

impl SuppressionList {
    /// Opens the database at `path` (creating its directory and the schema when missing)
    /// and loads every entry into memory, so the first delivery after a restart is already
    /// checked against the full list.
    pub fn open(path: &Path) -> Result<Self, SuppressionError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SuppressionError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = open_conn(path)?;
        conn.execute_batch(SCHEMA)?;
        let mut index = Index::new();
        {
            let mut stmt = conn.prepare(
                "SELECT subaccount, address, reason, description, created_unix FROM suppressions",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let address: String = row.get(1)?;
                index.entry(sub_from_sql(row.get(0)?)).or_default().insert(
                    address.into_boxed_str(),
                    Slot {
                        reason: row.get(2)?,
                        description: row.get::<_, String>(3)?.into_boxed_str(),
                        created_unix: row.get::<_, i64>(4)?.max(0) as u64,
                    },
                );
            }
        }
        let next_seq: i64 = conn.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM suppressions",
            [],
            |r| r.get(0),
        )?;
        let reader = open_conn(path)?;
        Ok(SuppressionList {
            index: RwLock::new(index),
            writer: Mutex::new(Writer { conn, next_seq }),
            reader: Mutex::new(reader),
            path: path.to_path_buf(),
        })
    }

    /// The database file, for log lines.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `address` is suppressed for exactly `subaccount`, and why. Called for every
    /// recipient at delivery: a memory lookup under a shared lock, no SQL, and no allocation
    /// unless the address has upper-case letters (lower-casing) or is found (the returned
    /// entry's strings).
    pub fn is_suppressed(&self, subaccount: u64, address: &str) -> Option<Entry> {
        let address = normalize(address);
        let index = read(&self.index);
        let (key, slot) = index.get(&subaccount)?.get_key_value(address.as_ref())?;
        Some(Entry {
            address: key.to_string(),
            subaccount,
            reason: slot.reason,
            description: slot.description.to_string(),
            created_unix: slot.created_unix,
        })
    }

    /// Adds `entry`, or refreshes the existing one of the same subaccount and lower-cased
    /// address (its reason, description and time become the new ones, so the latest cause
    /// is what an operator sees). Returns true when it was not suppressed before. The
    /// change is in SQLite before it is visible in memory.
    pub fn add(&self, entry: NewEntry) -> Result<bool, SuppressionError> {
        let address = normalize(&entry.address).into_owned();
        validate(&address)?;
        let description = truncate(entry.description, MAX_DESCRIPTION_BYTES);
        let created_unix = now_unix();
        let mut w = lock(&self.writer);
        let seq = w.next_seq;
        w.conn.execute(
            "INSERT INTO suppressions (subaccount, address, reason, description, created_unix, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (subaccount, address) DO UPDATE SET
                reason = excluded.reason, description = excluded.description,
                created_unix = excluded.created_unix, seq = excluded.seq",
            params![
                sub_to_sql(entry.subaccount),
                address,
                entry.reason,
                description,
                created_unix as i64,
                seq
            ],
        )?;
        w.next_seq += 1;
        let previous = write(&self.index)
            .entry(entry.subaccount)
            .or_default()
            .insert(
                address.into_boxed_str(),
                Slot {
                    reason: entry.reason,
                    description: description.into_boxed_str(),
                    created_unix,
                },
            );
        drop(w);
        Ok(previous.is_none())
    }

    /// Removes the entry of `subaccount` for `address` (compared lower-cased), so mail to
    /// it flows again. Returns true if there was one.
    pub fn remove(&self, subaccount: u64, address: &str) -> Result<bool, SuppressionError> {
        let address = normalize(address);
        let w = lock(&self.writer);
        let deleted = w.conn.execute(
            "DELETE FROM suppressions WHERE subaccount = ?1 AND address = ?2",
            params![sub_to_sql(subaccount), address.as_ref()],
        )?;
        let mut index = write(&self.index);
        let mut removed = false;
        if let Some(by_address) = index.get_mut(&subaccount) {
            removed = by_address.remove(address.as_ref()).is_some();
            if by_address.is_empty() {
                index.remove(&subaccount);
            }
        }
        drop(index);
        drop(w);
        Ok(deleted > 0 || removed)
    }

    /// The entries matching `q`, newest first (by the time of their last add), at most
    /// `q.limit` of them. Read from SQLite, not memory, so a big listing never holds up the
    /// delivery path.
    pub fn list(&self, q: &ListQuery) -> Result<Vec<Entry>, SuppressionError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
        let (clause, mut args) = where_clause(q);
        args.push(Box::new(limit as i64));
        let sql = format!(
            "SELECT subaccount, address, reason, description, created_unix FROM suppressions{clause}
             ORDER BY created_unix DESC, seq DESC LIMIT ?{}",
            args.len()
        );
        let conn = lock(&self.reader);
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |row| {
            Ok(Entry {
                subaccount: sub_from_sql(row.get(0)?),
                address: row.get(1)?,
                reason: row.get(2)?,
                description: row.get(3)?,
                created_unix: row.get::<_, i64>(4)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// How many entries match `q` (its limit ignored), so a listing can say how many it left
    /// out. Without filters this is [`SuppressionList::len`], from memory.
    pub fn count(&self, q: &ListQuery) -> Result<usize, SuppressionError> {
        let (clause, args) = where_clause(q);
        if clause.is_empty() {
            return Ok(self.len());
        }
        let conn = lock(&self.reader);
        let n: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM suppressions{clause}"),
            rusqlite::params_from_iter(args.iter()),
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The number of entries, all subaccounts together (from memory).
    pub fn len(&self) -> usize {
        read(&self.index).values().map(HashMap::len).sum()
    }

    /// Whether nothing is suppressed; the delivery engine may skip the check entirely then.
    pub fn is_empty(&self) -> bool {
        read(&self.index).values().all(HashMap::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(address: &str, subaccount: u64, reason: Reason, description: &str) -> NewEntry {
        NewEntry {
            address: address.into(),
            subaccount,
            reason,
            description: description.into(),
        }
    }

    fn open(dir: &tempfile::TempDir) -> SuppressionList {
        SuppressionList::open(&dir.path().join("nested/dir/suppression.db")).unwrap()
    }

    #[test]
    fn shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SuppressionList>();
    }

    #[test]
    fn add_check_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        assert!(list.is_empty());
        assert!(list
            .add(new(
                "gone@example.org",
                0,
                Reason::HardBounce,
                "550 5.1.1 unknown"
            ))
            .unwrap());
        assert_eq!(list.len(), 1);
        let e = list.is_suppressed(0, "gone@example.org").unwrap();
        assert_eq!(e.address, "gone@example.org");
        assert_eq!(e.reason, Reason::HardBounce);
        assert_eq!(e.description, "550 5.1.1 unknown");
        assert!(e.created_unix > 1_700_000_000);
        assert_eq!(list.is_suppressed(0, "other@example.org"), None);

        assert!(list.remove(0, "gone@example.org").unwrap());
        assert!(!list.remove(0, "gone@example.org").unwrap());
        assert_eq!(list.is_suppressed(0, "gone@example.org"), None);
        assert!(list.is_empty());
        assert!(list.list(&ListQuery::default()).unwrap().is_empty());
    }

    #[test]
    fn case_insensitive_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        list.add(new("Ana.Smith@Example.NET", 0, Reason::Complaint, ""))
            .unwrap();
        let e = list.is_suppressed(0, "ana.smith@example.net").unwrap();
        assert_eq!(e.address, "ana.smith@example.net");
        assert!(list.is_suppressed(0, "ANA.SMITH@EXAMPLE.NET").is_some());
        // Non-ASCII letters are folded too.
        list.add(new("JÖRG@Example.de", 0, Reason::Manual, ""))
            .unwrap();
        assert!(list.is_suppressed(0, "jörg@example.de").is_some());
        let found = list
            .list(&ListQuery {
                address: Some("ANA.smith@example.net".into()),
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(found.len(), 1);
        assert!(list.remove(0, "ANA.SMITH@example.net").unwrap());
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn subaccounts_are_isolated() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        list.add(new("x@example.com", 7, Reason::HardBounce, ""))
            .unwrap();
        assert!(list.is_suppressed(7, "x@example.com").is_some());
        assert_eq!(list.is_suppressed(0, "x@example.com"), None);
        assert_eq!(list.is_suppressed(8, "x@example.com"), None);
        // The same address in another subaccount is a separate entry.
        assert!(list
            .add(new("x@example.com", 0, Reason::Manual, ""))
            .unwrap());
        assert_eq!(list.len(), 2);
        assert!(!list.remove(3, "x@example.com").unwrap());
        assert!(list.remove(7, "x@example.com").unwrap());
        assert_eq!(list.is_suppressed(7, "x@example.com"), None);
        assert!(list.is_suppressed(0, "x@example.com").is_some());
        // Subaccounts beyond i64 survive the SQLite round trip.
        list.add(new("big@example.com", u64::MAX, Reason::Manual, ""))
            .unwrap();
        let got = list
            .list(&ListQuery {
                subaccount: Some(u64::MAX),
                ..ListQuery::default()
            })
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].subaccount, u64::MAX);
    }

    #[test]
    fn refresh_keeps_one_entry_with_the_latest_cause() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        assert!(list
            .add(new("r@example.com", 1, Reason::HardBounce, "first"))
            .unwrap());
        assert!(!list
            .add(new("R@EXAMPLE.COM", 1, Reason::Complaint, "second"))
            .unwrap());
        assert_eq!(list.len(), 1);
        let all = list.list(&ListQuery::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].reason, Reason::Complaint);
        assert_eq!(all[0].description, "second");
        assert_eq!(
            list.is_suppressed(1, "r@example.com").unwrap().description,
            "second"
        );
    }

    #[test]
    fn list_filters_orders_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        list.add(new("a@example.com", 0, Reason::HardBounce, ""))
            .unwrap();
        list.add(new("b@example.com", 0, Reason::Complaint, ""))
            .unwrap();
        list.add(new("c@example.com", 7, Reason::HardBounce, ""))
            .unwrap();
        list.add(new("a@example.com", 7, Reason::Manual, ""))
            .unwrap();

        let addrs = |q: ListQuery| -> Vec<(String, u64)> {
            list.list(&q)
                .unwrap()
                .into_iter()
                .map(|e| (e.address, e.subaccount))
                .collect()
        };
        // Newest first (same second: order of addition).
        assert_eq!(
            addrs(ListQuery::default()),
            vec![
                ("a@example.com".into(), 7),
                ("c@example.com".into(), 7),
                ("b@example.com".into(), 0),
                ("a@example.com".into(), 0),
            ]
        );
        assert_eq!(
            addrs(ListQuery {
                subaccount: Some(7),
                ..ListQuery::default()
            }),
            vec![("a@example.com".into(), 7), ("c@example.com".into(), 7)]
        );
        assert_eq!(
            addrs(ListQuery {
                reason: Some(Reason::HardBounce),
                ..ListQuery::default()
            }),
            vec![("c@example.com".into(), 7), ("a@example.com".into(), 0)]
        );
        assert_eq!(
            addrs(ListQuery {
                address: Some("a@example.com".into()),
                subaccount: Some(0),
                ..ListQuery::default()
            }),
            vec![("a@example.com".into(), 0)]
        );
        assert_eq!(
            addrs(ListQuery {
                limit: Some(2),
                ..ListQuery::default()
            })
            .len(),
            2
        );
        // A refresh moves the entry to the front.
        list.add(new("a@example.com", 0, Reason::HardBounce, ""))
            .unwrap();
        assert_eq!(
            addrs(ListQuery::default())[0],
            ("a@example.com".to_string(), 0)
        );
        // Counting ignores the limit.
        let hard = ListQuery {
            reason: Some(Reason::HardBounce),
            limit: Some(1),
            ..ListQuery::default()
        };
        assert_eq!(list.list(&hard).unwrap().len(), 1);
        assert_eq!(list.count(&hard).unwrap(), 2);
        assert_eq!(list.count(&ListQuery::default()).unwrap(), 4);
    }

    #[test]
    fn limit_defaults_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        for i in 0..150 {
            list.add(new(&format!("u{i}@example.com"), 0, Reason::Manual, ""))
                .unwrap();
        }
        assert_eq!(list.list(&ListQuery::default()).unwrap().len(), 100);
        let all = ListQuery {
            limit: Some(usize::MAX),
            ..ListQuery::default()
        };
        assert_eq!(list.list(&all).unwrap().len(), 150);
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let list = open(&dir);
            list.add(new(
                "keep@example.com",
                7,
                Reason::Complaint,
                "fbl.example.net",
            ))
            .unwrap();
            list.add(new("drop@example.com", 0, Reason::HardBounce, ""))
                .unwrap();
            list.remove(0, "drop@example.com").unwrap();
        }
        let list = open(&dir);
        assert_eq!(list.len(), 1);
        let e = list.is_suppressed(7, "keep@example.com").unwrap();
        assert_eq!(e.reason, Reason::Complaint);
        assert_eq!(e.description, "fbl.example.net");
        assert_eq!(list.is_suppressed(0, "drop@example.com"), None);
        // Ordering continues after the entries loaded from disk.
        list.add(new("later@example.com", 7, Reason::Manual, ""))
            .unwrap();
        assert_eq!(
            list.list(&ListQuery::default()).unwrap()[0].address,
            "later@example.com"
        );
    }

    #[test]
    fn invalid_addresses_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        let long = format!("{}@example.com", "a".repeat(320));
        for bad in [
            "",
            "nobody",
            "@example.com",
            "user@",
            "a@b@example.com",
            "has space@example.com",
            " lead@example.com",
            "tab\t@example.com",
            "nul\0@example.com",
            "line\r\n@example.com",
            long.as_str(),
        ] {
            let err = list.add(new(bad, 0, Reason::Manual, "")).unwrap_err();
            assert!(
                matches!(err, SuppressionError::InvalidAddress(_)),
                "{bad:?}: {err}"
            );
        }
        assert!(list.is_empty());
        let msg = list
            .add(new("nobody", 0, Reason::Manual, ""))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"nobody\" is not a valid email address"),
            "{msg}"
        );
        // Exactly at the limit is fine.
        let max = format!("{}@example.com", "a".repeat(MAX_ADDRESS_BYTES - 12));
        assert_eq!(max.len(), MAX_ADDRESS_BYTES);
        assert!(list.add(new(&max, 0, Reason::Manual, "")).unwrap());
    }

    #[test]
    fn long_descriptions_are_cut_at_a_character_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let list = open(&dir);
        list.add(new("d@example.com", 0, Reason::Manual, &"é".repeat(1000)))
            .unwrap();
        let e = list.is_suppressed(0, "d@example.com").unwrap();
        assert_eq!(e.description.len(), MAX_DESCRIPTION_BYTES);
        assert_eq!(e.description, "é".repeat(MAX_DESCRIPTION_BYTES / 2));
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_value(r).ok(),
                Some(serde_json::Value::String(r.as_str().into()))
            );
        }
        assert_eq!(Reason::Complaint.as_str(), "spam_complaint");
        assert_eq!(Reason::parse("complaint"), None);
        assert_eq!(Reason::parse("HARD_BOUNCE"), None);
    }

    #[test]
    fn created_is_iso_utc() {
        let e = Entry {
            address: "a@b".into(),
            subaccount: 0,
            reason: Reason::Manual,
            description: String::new(),
            created_unix: 1_767_225_600,
        };
        assert_eq!(e.created_rfc3339(), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn io_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = SuppressionList::open(&file.join("sub/suppression.db"))
            .err()
            .unwrap();
        assert!(matches!(err, SuppressionError::Io { .. }), "{err}");
        assert!(err.to_string().contains("file/sub"), "{err}");
    }
}
