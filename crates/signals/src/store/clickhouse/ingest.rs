//! Storing a batch in ClickHouse: under the ingest lease, read what counting depends on
//! (known event ids, the messages' earlier events, the recipients' state), count every new
//! event exactly as the SQLite backend does (`store::counting`, same order, same history),
//! add the counts up per rollup key, and write everything — events, rollup increments,
//! facet tuples, the batch record — as one `INSERT` into the `ingest` table.

use std::collections::{HashMap, HashSet};

use petrel_signals_model::cohort::{self, Cohort, RecipientState};
use petrel_signals_model::counters::{counts_as_engagement, Counters, Increment};
use petrel_signals_model::daily::Daily;
use petrel_signals_model::types::EventType;

use super::http::quoted_list;
use super::lease::Lease;
use super::rowbinary::{RowReader, RowWriter};
use super::schema::{row, tbl};
use super::{dim_id, reason_id, ClickHouseStore};
use crate::event::StoredEvent;
use crate::store::counting::{
    self, count, kept_in_history, needs_history, original, Cube, Prior, METRIC_TABLES,
};
use crate::store::group_commit::GroupResult;
use crate::store::{BatchOutcome, Dims, PreparedBatch, StoreError};
use crate::timefmt;

/// A group commit takes waiting batches up to this many events.
pub(super) const GROUP_EVENTS: usize = 40_000;

/// "No value" in the recipients table's min / max states.
const NEVER_MAILED: i64 = i64::MAX;
const NEVER_ENGAGED: i64 = i64::MIN;

/// One row of the `ingest` table; unused columns stay empty.
#[derive(Default)]
struct IngestRow<'a> {
    row: u8,
    ev: Option<&'a StoredEvent>,
    batch_id: &'a str,
    history: bool,
    cohort: Option<Cohort>,
    seq: i64,
    pos: u32,
    mailed_at: Option<i64>,
    engaged_at: Option<i64>,
    tbl: u8,
    dim: u64,
    sdim: u64,
    bucket: i64,
    reason: u64,
    keys: &'a [u8],
    vals: &'a [i64],
    strs: &'a [&'a str],
}

impl IngestRow<'_> {
    /// Writes the row in `schema::INGEST_COLUMNS` order.
    fn write(&self, w: &mut RowWriter) {
        let ev = self.ev;
        let text =
            |f: fn(&StoredEvent) -> &Option<String>| ev.and_then(|e| f(e).as_deref()).unwrap_or("");
        w.u8(self.row);
        w.str(ev.map_or("", |e| &e.event_id));
        w.i64(ev.map_or(0, |e| e.timestamp));
        w.str(ev.map_or("", |e| e.event_type));
        w.str(text(|e| &e.campaign_id));
        w.str(text(|e| &e.rcpt_to));
        w.opt_i64(ev.and_then(|e| e.subaccount_id));
        w.str(text(|e| &e.ip_pool));
        w.str(text(|e| &e.sending_ip));
        w.str(text(|e| &e.sending_domain));
        w.str(text(|e| &e.message_id));
        w.str(text(|e| &e.bounce_class));
        w.str(self.batch_id);
        w.str(ev.map_or("", |e| &e.json));
        w.str(text(|e| &e.recipient_domain));
        w.str(text(|e| &e.mailbox_provider));
        w.str(text(|e| &e.template_id));
        w.u8(u8::from(self.history));
        let link = ev
            .filter(|e| e.facts.kind == Some(EventType::Click))
            .and_then(|e| e.facts.link.as_deref())
            .unwrap_or("");
        w.str(link);
        w.u8(u8::from(ev.is_some_and(|e| e.facts.machine)));
        w.i8(self.cohort.map_or(-1, |c| c.code() as i8));
        w.i64(self.seq);
        w.u32(self.pos);
        w.u8(u8::from(
            self.mailed_at.is_some() || self.engaged_at.is_some(),
        ));
        w.i64(self.mailed_at.unwrap_or(NEVER_MAILED));
        w.i64(self.engaged_at.unwrap_or(NEVER_ENGAGED));
        w.u8(self.tbl);
        w.u64(self.dim);
        w.u64(self.sdim);
        w.i64(self.bucket);
        w.u64(self.reason);
        w.u8s(self.keys);
        w.i64s(self.vals);
        w.strs(self.strs);
    }
}

/// What the store already holds that a group of batches' counts depend on.
#[derive(Default)]
struct Known {
    /// Content hashes of earlier batches that were stored (success or validation).
    stored_hashes: HashSet<String>,
    event_ids: HashSet<String>,
    /// Earlier events per message (only messages a thin event of the batch belongs to), in
    /// storage order; the JSON is filled for the one delivery or injection that
    /// [`original`] would pick among them.
    history: HashMap<String, Vec<Prior>>,
    recipients: HashMap<String, RecipientState>,
}

fn read_strings(body: &[u8]) -> Result<Vec<String>, StoreError> {
    let mut r = RowReader::new(body);
    let mut out = Vec::new();
    while !r.done() {
        out.push(r.string()?);
    }
    Ok(out)
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T, StoreError>>) -> Result<T, StoreError> {
    h.join()
        .unwrap_or_else(|_| Err(StoreError::Backend("lookup thread panicked".into())))
}

/// A stored history row before its JSON is known.
struct HistoryRow {
    message_id: String,
    order: (i64, u32),
    event_id: String,
    prior: Prior,
}

impl ClickHouseStore {
    fn stored_hashes(&self, hashes: &[&str]) -> Result<HashSet<String>, StoreError> {
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let body = self.client.select(&format!(
            "SELECT DISTINCT content_hash FROM {} WHERE content_hash IN {} \
             AND error_type IN ('', 'validation')",
            self.t("batches"),
            quoted_list(hashes.iter().copied())
        ))?;
        Ok(read_strings(&body)?.into_iter().collect())
    }

    fn known_event_ids(&self, ids: &[&str]) -> Result<HashSet<String>, StoreError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let body = self.client.select(&format!(
            "SELECT event_id FROM {} WHERE event_id IN {}",
            self.t("event_ids"),
            quoted_list(ids.iter().copied())
        ))?;
        Ok(read_strings(&body)?.into_iter().collect())
    }

    fn message_history(
        &self,
        messages: &[&str],
    ) -> Result<HashMap<String, Vec<Prior>>, StoreError> {
        let mut out: HashMap<String, Vec<Prior>> = messages
            .iter()
            .map(|m| (m.to_string(), Vec::new()))
            .collect();
        if messages.is_empty() {
            return Ok(out);
        }
        let body = self.client.select(&format!(
            "SELECT message_id, seq, pos, ts, type, event_id, link, machine, cohort FROM {} \
             WHERE message_id IN {}",
            self.t("message_history"),
            quoted_list(messages.iter().copied())
        ))?;
        let mut r = RowReader::new(&body);
        let mut rows = Vec::new();
        while !r.done() {
            let message_id = r.string()?;
            let seq = r.i64()?;
            let pos = r.u32()?;
            let ts = r.i64()?;
            let kind = EventType::parse(&r.string()?);
            let event_id = r.string()?;
            let link = Some(r.string()?).filter(|l| !l.is_empty());
            let machine = r.u8()? != 0;
            let cohort = Cohort::from_code(i64::from(r.i8()?));
            rows.push(HistoryRow {
                message_id,
                order: (seq, pos),
                event_id,
                prior: Prior {
                    facts: petrel_signals_model::counters::EventFacts {
                        kind,
                        ts,
                        link,
                        machine,
                        ..Default::default()
                    },
                    json: None,
                    cohort,
                },
            });
        }
        rows.sort_by(|a, b| (&a.message_id, a.order).cmp(&(&b.message_id, b.order)));
        // The enrichment source of each message: what `original` picks among the stored
        // rows (later ties win, as storage order does there).
        let mut wanted: HashMap<String, (i64, String)> = HashMap::new();
        let mut pick: HashMap<&str, (bool, i64, usize)> = HashMap::new();
        for (i, h) in rows.iter().enumerate() {
            let delivery = h.prior.facts.kind == Some(EventType::Delivery);
            if !delivery && h.prior.facts.kind != Some(EventType::Injection) {
                continue;
            }
            let cand = (delivery, h.prior.facts.ts, i);
            let slot = pick.entry(&h.message_id).or_insert(cand);
            if (cand.0, cand.1) >= (slot.0, slot.1) {
                *slot = cand;
            }
        }
        for (_, _, i) in pick.values() {
            let h = &rows[*i];
            wanted.insert(h.event_id.clone(), (h.prior.facts.ts, h.message_id.clone()));
        }
        let json = self.event_json(&wanted)?;
        for mut h in rows {
            if wanted.contains_key(&h.event_id) {
                h.prior.json = json.get(&h.event_id).cloned();
            }
            out.entry(h.message_id).or_default().push(h.prior);
        }
        Ok(out)
    }

    /// The stored JSON of these events (event id → (timestamp, anything)).
    fn event_json<T>(
        &self,
        wanted: &HashMap<String, (i64, T)>,
    ) -> Result<HashMap<String, String>, StoreError> {
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let ts: HashSet<i64> = wanted.values().map(|(t, _)| *t).collect();
        let body = self.client.select(&format!(
            "SELECT event_id, json FROM {} WHERE ts IN {} AND event_id IN {}",
            self.t("events"),
            super::http::number_list(ts),
            quoted_list(wanted.keys().map(String::as_str))
        ))?;
        let mut r = RowReader::new(&body);
        let mut out = HashMap::new();
        while !r.done() {
            let id = r.string()?;
            out.insert(id, r.string()?);
        }
        Ok(out)
    }

    fn recipient_states(
        &self,
        rcpts: &[&str],
    ) -> Result<HashMap<String, RecipientState>, StoreError> {
        if rcpts.is_empty() {
            return Ok(HashMap::new());
        }
        let body = self.client.select(&format!(
            "SELECT rcpt, minMerge(first_mailed), maxMerge(last_engaged) FROM {} \
             WHERE rcpt IN {} GROUP BY rcpt",
            self.t("recipients"),
            quoted_list(rcpts.iter().copied())
        ))?;
        let mut r = RowReader::new(&body);
        let mut out = HashMap::new();
        while !r.done() {
            let rcpt = r.string()?;
            let first = r.i64()?;
            let last = r.i64()?;
            out.insert(
                rcpt,
                RecipientState {
                    first_mailed: (first != NEVER_MAILED).then_some(first),
                    last_engaged: (last != NEVER_ENGAGED).then_some(last),
                    // Only retention reads it, and ClickHouse keeps recipients' state.
                    last_mailed: None,
                },
            );
        }
        Ok(out)
    }

    /// Everything the group's counts depend on, read in parallel.
    fn known(&self, batches: &[PreparedBatch]) -> Result<Known, StoreError> {
        let events = || batches.iter().flat_map(|b| b.events.iter());
        let mut hashes: Vec<&str> = batches
            .iter()
            .filter(|b| b.batch_error.is_none())
            .map(|b| b.content_hash.as_str())
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut ids: Vec<&str> = events().map(|e| e.event_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut messages: Vec<&str> = events()
            .filter(|e| needs_history(e.facts.kind))
            .filter_map(|e| e.message_id.as_deref())
            .collect();
        messages.sort_unstable();
        messages.dedup();
        let mut rcpts: Vec<&str> = events()
            .filter(|e| {
                e.facts.kind == Some(EventType::Injection) || counts_as_engagement(&e.facts)
            })
            .filter_map(|e| e.rcpt_to.as_deref())
            .collect();
        rcpts.sort_unstable();
        rcpts.dedup();
        std::thread::scope(|s| {
            let stored = s.spawn(|| self.stored_hashes(&hashes));
            let event_ids = s.spawn(|| self.known_event_ids(&ids));
            let history = s.spawn(|| self.message_history(&messages));
            let recipients = self.recipient_states(&rcpts);
            Ok(Known {
                stored_hashes: join(stored)?,
                event_ids: join(event_ids)?,
                history: join(history)?,
                recipients: recipients?,
            })
        })
    }

    /// Stores a batch with whatever other batches are waiting (group commit, see
    /// `store::group_commit`): the caller that gets the writer takes the lease and stores
    /// the queue in one pass and one insert; the others find their outcome ready.
    pub(super) fn ingest_impl(&self, batch: PreparedBatch) -> Result<BatchOutcome, StoreError> {
        let events = batch.events.len();
        self.queue
            .submit(batch, events, &self.writer, |lease, batches| {
                self.commit_group(lease, batches)
            })
    }

    fn commit_group(&self, lease: &mut Lease, batches: Vec<PreparedBatch>) -> GroupResult {
        let n = batches.len();
        let started = std::time::Instant::now();
        let result = lease.acquire(&self.client, &self.db);
        let lease_ms = started.elapsed().as_millis() as u64;
        let result = result.and_then(|()| self.store_group(lease, batches));
        lease.release(&self.client, &self.db);
        tracing::debug!(
            batches = n,
            lease_ms,
            ms = started.elapsed().as_millis() as u64,
            "signals: ClickHouse group commit"
        );
        result
    }

    /// Counts and stores a group of batches in arrival order with one insert.
    fn store_group(
        &self,
        lease: &mut Lease,
        batches: Vec<PreparedBatch>,
    ) -> Result<Vec<BatchOutcome>, StoreError> {
        let started = std::time::Instant::now();
        let mut known = self.known(&batches)?;
        let read = started.elapsed();
        let mut w = RowWriter::default();
        let mut pending = Pending::default();
        let mut accepted_ids: HashSet<String> = HashSet::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        for batch in batches {
            let outcome =
                self.store_batch(&mut known, &mut accepted_ids, &mut pending, &mut w, batch)?;
            outcomes.push(outcome);
        }
        let fresh = pending.write(&mut w, &*super::lock(&self.written)?);
        lease.keep(&self.client, &self.db)?;
        let query_id = lease.query_id();
        let counted = started.elapsed();
        self.client.insert(&self.t("ingest"), &w.buf, &query_id)?;
        super::lock(&self.written)?.add(fresh);
        // Where a group's time goes (docs/BENCHMARKS.md, issue 16, reads these).
        tracing::debug!(
            events = accepted_ids.len(),
            bytes = w.buf.len(),
            read_ms = read.as_millis() as u64,
            count_ms = (counted - read).as_millis() as u64,
            insert_ms = (started.elapsed() - counted).as_millis() as u64,
            "signals: ClickHouse group stored"
        );
        Ok(outcomes)
    }

    /// One batch of a group: its event rows and batch record into `w`, its counts into
    /// `pending`, exactly as the SQLite backend processes a batch.
    fn store_batch(
        &self,
        known: &mut Known,
        accepted_ids: &mut HashSet<String>,
        pending: &mut Pending,
        w: &mut RowWriter,
        batch: PreparedBatch,
    ) -> Result<BatchOutcome, StoreError> {
        let mut outcome = BatchOutcome {
            id: super::uuid_v4()?,
            error_type: batch.batch_error,
            accepted: 0,
            failed: batch.failed,
            duplicates: 0,
        };
        let seq = super::new_seq()?;
        let mut first_error = batch.first_error;
        let mut events = batch.events;
        if outcome.error_type.is_none() && known.stored_hashes.contains(&batch.content_hash) {
            outcome.error_type = Some("duplicate_batch");
            outcome.failed = 0;
            first_error = None;
            events.clear();
        }
        for (pos, mut ev) in events.into_iter().enumerate() {
            let kind = ev.facts.kind;
            let prior: Vec<Prior> = match (&ev.message_id, needs_history(kind)) {
                (Some(m), true) => known.history.get(m).cloned().unwrap_or_default(),
                _ => Vec::new(),
            };
            crate::enrich::enrich(&mut ev, original(&prior));
            let rcpt = ev.rcpt_to.clone();
            let mut cohort_now = None;
            let mut state = None;
            if let Some(r) = rcpt
                .as_deref()
                .filter(|_| kind == Some(EventType::Injection) || counts_as_engagement(&ev.facts))
            {
                let s = known.recipients.get(r).copied().unwrap_or_default();
                if kind == Some(EventType::Injection) {
                    cohort_now = Some(cohort::classify(s, ev.timestamp));
                }
                state = Some(s);
            }
            if known.event_ids.contains(&ev.event_id) || !accepted_ids.insert(ev.event_id.clone()) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.accepted += 1;
            let mut mailed_at = None;
            let mut engaged_at = None;
            if let (Some(r), Some(s)) = (rcpt, state) {
                let next = if kind == Some(EventType::Injection) {
                    mailed_at = Some(ev.timestamp);
                    cohort::after_injection(s, ev.timestamp)
                } else {
                    engaged_at = Some(ev.timestamp);
                    cohort::after_engagement(s, ev.timestamp)
                };
                known.recipients.insert(r, next);
            }
            let history = ev.message_id.is_some() && kept_in_history(kind);
            if let Some(list) = ev
                .message_id
                .as_ref()
                .filter(|_| history)
                .and_then(|m| known.history.get_mut(m))
            {
                list.push(Prior::of(&ev, cohort_now));
            }
            IngestRow {
                row: row::EVENT,
                ev: Some(&ev),
                batch_id: &outcome.id,
                history,
                cohort: cohort_now,
                seq,
                pos: pos as u32,
                mailed_at,
                engaged_at,
                ..IngestRow::default()
            }
            .write(w);
            pending.count(&ev, &prior, cohort_now);
        }
        if outcome.error_type.is_none() && outcome.failed > 0 {
            outcome.error_type = Some("validation");
        }
        let record_id = super::uuid_v4()?;
        let hash = batch.content_hash;
        if matches!(outcome.error_type, None | Some("validation")) {
            known.stored_hashes.insert(hash.clone());
        }
        let strs = [
            record_id.as_str(),
            outcome.error_type.unwrap_or(""),
            hash.as_str(),
            first_error.as_deref().unwrap_or(""),
        ];
        let vals = [
            outcome.accepted as i64,
            outcome.failed as i64,
            outcome.duplicates as i64,
        ];
        IngestRow {
            row: row::BATCH,
            batch_id: &outcome.id,
            bucket: timefmt::now_secs(),
            seq,
            vals: &vals,
            strs: &strs,
            ..IngestRow::default()
        }
        .write(w);
        Ok(outcome)
    }
}

/// The non-zero counters as (position, value) pairs: what a `…Map` column keeps.
fn sparse(values: &[i64]) -> (Vec<u8>, Vec<i64>) {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(i, v)| (i as u8, *v))
        .unzip()
}

/// Facet tuples and reason texts this instance has stored. Both tables only grow and every
/// instance names a tuple or text alike (a hash), so what is here is on the server: an
/// insert leaves those rows out (each would otherwise be one more part of `dims` and
/// `reasons` per insert, and parts are what inserts cost most).
#[derive(Default)]
pub(super) struct Written {
    dims: HashSet<(u8, u64)>,
    reasons: HashSet<u64>,
}

impl Written {
    /// Past this many entries the memory is dropped (and rows are written again).
    const MAX: usize = 1_000_000;

    fn add(&mut self, fresh: Written) {
        if self.dims.len() + self.reasons.len() > Self::MAX {
            *self = Written::default();
        }
        self.dims.extend(fresh.dims);
        self.reasons.extend(fresh.reasons);
    }
}

/// A rollup row's `(dim, sdim)`: a cube's tuple and 0, or for the full cube (and reason
/// counts) the recipient tuple and the sender tuple (see `schema`).
type Key = (u64, u64);

/// A cube's key of a facet tuple, from the tuple's dim ids in every cube (the full cube's
/// is its recipient and sender ids).
fn cube_key(cube: Cube, ids: &Ids) -> Key {
    match cube {
        Cube::Full => (ids[Cube::Recipient.index()], ids[Cube::Sender.index()]),
        other => (ids[other.index()], 0),
    }
}

/// The dim id of a facet tuple in each cube, at [`Cube::index`] (0 for the full cube).
type Ids = [u64; Cube::KEPT.len()];

/// A batch's counts, added up per rollup key before they are written.
#[derive(Default)]
struct Pending {
    /// (facet tuple, increment index, bucket) → Metrics counters; spread over the cubes
    /// only when written, once per tuple and bucket rather than once per event.
    metrics: HashMap<(usize, usize, i64), Counters>,
    /// (increment index, recipient and sender dims, bucket, reason) → counts.
    reasons: HashMap<(usize, Key, i64, u64), [i64; 4]>,
    /// (signals dim, day) → daily counters.
    daily: HashMap<(u64, i64), Daily>,
    /// Facet tuples used, per (cube, dim).
    dims: HashMap<(Cube, u64), Dims>,
    /// Facet values met → their number here (an index in `tuples`).
    ids: HashMap<Dims, usize>,
    /// The dim ids per cube of each facet tuple met.
    tuples: Vec<Ids>,
    /// Reason texts used: id → (kind, class, text).
    reason_texts: HashMap<u64, (i64, i64, String)>,
}

impl Pending {
    /// The dim ids of an event's facet values in every cube but the full one (whose key
    /// is a recipient and a sender tuple), registering the tuples the first time the batch
    /// meets them.
    fn dim_ids(&mut self, d: Dims) -> usize {
        if let Some(n) = self.ids.get(&d) {
            return *n;
        }
        let mut ids = [0; Cube::KEPT.len()];
        for cube in Cube::KEPT.into_iter().filter(|c| *c != Cube::Full) {
            let p = cube.project(&d);
            let id = dim_id(cube, &p);
            self.dims.entry((cube, id)).or_insert(p);
            ids[cube.index()] = id;
        }
        self.tuples.push(ids);
        self.ids.insert(d, self.tuples.len() - 1);
        self.tuples.len() - 1
    }

    fn count(&mut self, ev: &StoredEvent, prior: &[Prior], cohort_now: Option<Cohort>) {
        let Some(adds) = count(ev, prior, cohort_now) else {
            return;
        };
        let tuple = self.dim_ids(counting::dims_of(ev));
        let ids = self.tuples[tuple];
        for (i, inc) in Increment::ALL.into_iter().enumerate() {
            let bucket = inc.floor(ev.timestamp);
            let c = &adds.metrics[i];
            if !c.is_zero() {
                self.metrics.entry((tuple, i, bucket)).or_default().add(c);
            }
            if let Some(r) = &adds.reasons[i] {
                let rid = reason_id(r.kind.code(), r.class, &r.text);
                self.reason_texts
                    .entry(rid)
                    .or_insert_with(|| (r.kind.code(), r.class, r.text.clone()));
                let slot = self
                    .reasons
                    .entry((i, cube_key(Cube::Full, &ids), bucket, rid))
                    .or_default();
                for (a, b) in slot.iter_mut().zip(r.counts) {
                    *a += b;
                }
            }
        }
        if !adds.daily.is_empty() {
            let sdim = ids[Cube::Signals.index()];
            for (day, add) in adds.daily {
                self.daily.entry((sdim, day)).or_default().add(&add);
            }
        }
    }

    /// Writes the counters, and the facet tuples and reason texts not in `written`;
    /// returns those, to be remembered once the insert has succeeded.
    fn write(self, w: &mut RowWriter, written: &Written) -> Written {
        let mut fresh = Written::default();
        let mut counters = |tbl: u8, (dim, sdim): Key, bucket: i64, reason: u64, values: &[i64]| {
            let (keys, vals) = sparse(values);
            IngestRow {
                row: row::COUNTERS,
                tbl,
                dim,
                sdim,
                bucket,
                reason,
                keys: &keys,
                vals: &vals,
                ..IngestRow::default()
            }
            .write(w);
        };
        let mut metrics: HashMap<(usize, Key, i64), Counters> = HashMap::new();
        for ((tuple, i, bucket), c) in &self.metrics {
            let ids = &self.tuples[*tuple];
            for (t, (cube, inc)) in METRIC_TABLES.iter().enumerate() {
                if *inc == Increment::ALL[*i] {
                    metrics
                        .entry((t, cube_key(*cube, ids), *bucket))
                        .or_default()
                        .add(c);
                }
            }
        }
        for ((t, key, bucket), c) in metrics {
            counters(t as u8, key, bucket, 0, &c.to_vec());
        }
        for ((i, key, bucket, reason), counts) in self.reasons {
            counters(tbl::REASONS + i as u8, key, bucket, reason, &counts);
        }
        for ((dim, day), d) in self.daily {
            counters(tbl::DAILY, (dim, 0), day, 0, &d.to_vec());
        }
        for ((cube, dim), d) in &self.dims {
            if written.dims.contains(&(cube.code(), *dim)) {
                continue;
            }
            fresh.dims.insert((cube.code(), *dim));
            let strs = [
                d.campaign.as_str(),
                &d.template,
                &d.ip_pool,
                &d.sending_ip,
                &d.sending_domain,
                &d.domain,
                &d.mailbox_provider,
                &d.region,
            ];
            IngestRow {
                row: row::DIM,
                tbl: cube.code(),
                dim: *dim,
                vals: &[d.subaccount],
                strs: &strs,
                ..IngestRow::default()
            }
            .write(w);
        }
        for (id, (kind, class, text)) in &self.reason_texts {
            if written.reasons.contains(id) {
                continue;
            }
            fresh.reasons.insert(*id);
            IngestRow {
                row: row::REASON_TEXT,
                reason: *id,
                vals: &[*kind, *class],
                strs: &[text.as_str()],
                ..IngestRow::default()
            }
            .write(w);
        }
        fresh
    }
}
