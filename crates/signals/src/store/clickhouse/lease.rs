//! The ingest lease: at most one service instance ingests at a time, whatever the number of
//! instances over one ClickHouse server. That is what keeps de-duplication exact when two
//! instances receive overlapping batches at once (an uploader's retry reaching the other
//! instance while the first attempt is still being processed), and what keeps the
//! per-message uniques and recipient cohorts equal to the SQLite backend's, which reads and
//! writes under one lock too.
//!
//! ClickHouse has no lock or compare-and-set, so the lease is a flag protocol over a small
//! table, relying only on "an insert that has returned is seen by every later select":
//!
//! 1. raise a flag: insert `(holder, n, state = 1)`;
//! 2. read every flag raised in the last [`LEASE`] (server clock) and not lowered since;
//! 3. none but ours: the lease is ours; else lower ours (`state = 0`) and try again later.
//!
//! Of two instances that raise flags at once, at least one sees the other's (whichever read
//! second), so both never proceed; both may back off, and randomised waits sort that out.
//! A crashed holder's flag expires after [`LEASE`]. A holder renews its flag while it works
//! and never starts its final insert unless [`SAFE`] of its lease is left; a new holder
//! taking over an expired lease also waits until no other holder's ingest statement is
//! still running (`system.processes`), so a slow insert from the previous holder is never
//! missed.

use std::time::{Duration, Instant};

use super::super::StoreError;
use super::http::{quote, Client};
use super::rowbinary::{RowReader, RowWriter};

/// How long a raised flag holds without renewal.
pub(super) const LEASE: Duration = Duration::from_secs(10);
/// How much of the lease must be left to start the batch insert.
const SAFE: Duration = Duration::from_secs(4);
/// Renew when this much of the lease has passed.
const RENEW: Duration = Duration::from_secs(3);
/// Give up (503) after waiting this long.
const WAIT: Duration = Duration::from_secs(20);

/// The `query_id` prefix of ingest statements, so other holders can see them running.
pub(super) const QUERY_PREFIX: &str = "petrel-ingest-";

/// One instance's lease state.
pub(super) struct Lease {
    holder: String,
    n: u64,
    /// When the last flag that counts was sent (local clock, taken before sending).
    since: Option<Instant>,
}

impl Lease {
    pub fn new(holder: String) -> Self {
        Lease {
            holder,
            n: 0,
            since: None,
        }
    }

    /// The `query_id` of this holder's next ingest statement.
    pub fn query_id(&mut self) -> String {
        self.n += 1;
        format!("{QUERY_PREFIX}{}-{}", self.holder, self.n)
    }

    fn flag(&mut self, client: &Client, db: &str, state: u8) -> Result<(), StoreError> {
        self.n += 1;
        let mut w = RowWriter::default();
        w.str(&self.holder);
        w.u64(self.n);
        w.u8(state);
        let id = format!("petrel-lease-{}-{}", self.holder, self.n);
        client.insert(
            &format!("{db}.ingest_lease (holder, n, state)"),
            &w.buf,
            &id,
        )
    }

    /// Other holders with a live flag.
    fn others(&self, client: &Client, db: &str) -> Result<Vec<String>, StoreError> {
        let body = client.select(&format!(
            "SELECT holder FROM {db}.ingest_lease WHERE at >= now() - {} \
             GROUP BY holder HAVING argMax(state, n) = 1 AND holder != {}",
            LEASE.as_secs(),
            quote(&self.holder)
        ))?;
        let mut r = RowReader::new(&body);
        let mut out = Vec::new();
        while !r.done() {
            out.push(r.string()?);
        }
        Ok(out)
    }

    /// Ingest statements of other holders still running on the server.
    fn running_elsewhere(&self, client: &Client) -> Result<u64, StoreError> {
        let body = client.select(&format!(
            "SELECT count() FROM system.processes WHERE startsWith(query_id, {}) \
             AND NOT startsWith(query_id, {})",
            quote(QUERY_PREFIX),
            quote(&format!("{QUERY_PREFIX}{}-", self.holder))
        ))?;
        RowReader::new(&body).u64()
    }

    /// Takes the lease, waiting up to [`WAIT`] for another holder.
    pub fn acquire(&mut self, client: &Client, db: &str) -> Result<(), StoreError> {
        let deadline = Instant::now() + WAIT;
        let mut pause = 10u64;
        loop {
            let sent = Instant::now();
            self.flag(client, db, 1)?;
            if self.others(client, db)?.is_empty() && self.running_elsewhere(client)? == 0 {
                self.since = Some(sent);
                return Ok(());
            }
            self.flag(client, db, 0)?;
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable(
                    "another Signals service instance is ingesting; retry later".into(),
                ));
            }
            let jitter = u64::from(super::random_u16()) % pause.max(1);
            std::thread::sleep(Duration::from_millis(pause + jitter));
            pause = (pause * 2).min(200);
        }
    }

    /// Renews the flag when due; fails when the lease may already have passed to someone
    /// else (then nothing must be written).
    pub fn keep(&mut self, client: &Client, db: &str) -> Result<(), StoreError> {
        let Some(since) = self.since else {
            return Err(StoreError::Unavailable("ingest lease not held".into()));
        };
        let age = since.elapsed();
        if age + SAFE > LEASE {
            self.since = None;
            return Err(StoreError::Unavailable(
                "the batch took too long; its ingest lease expired; retry".into(),
            ));
        }
        if age > RENEW {
            let sent = Instant::now();
            self.flag(client, db, 1)?;
            self.since = Some(sent);
        }
        Ok(())
    }

    /// Lowers the flag (a failure only delays the next holder until the flag expires).
    pub fn release(&mut self, client: &Client, db: &str) {
        if self.since.take().is_some() {
            if let Err(e) = self.flag(client, db, 0) {
                tracing::warn!("signals: releasing the ClickHouse ingest lease: {e}");
            }
        }
    }
}
