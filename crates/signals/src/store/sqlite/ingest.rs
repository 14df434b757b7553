//! Storing a batch: raw events, rollups, daily Signals counters and engagement state in one
//! transaction. Everything a count depends on that needs the database (the message's
//! earlier events, the recipient's state) is read here; how the counts follow from it is
//! `petrel-signals-model`'s.

use petrel_signals_model::cohort::{self, Cohort, RecipientState};
use petrel_signals_model::counters::{self, counts_as_engagement, EventFacts, Increment};
use petrel_signals_model::daily::{self, InjectionFacts, InjectionRef};
use petrel_signals_model::types::EventType;
use rusqlite::{params, OptionalExtension, Transaction};

use super::catalog::{RECIPIENT, SENDER};
use super::dict::Dict;
use super::rollup::{Keys, Pending};
use super::{uuid_v4, BatchOutcome, SqliteStore, StoreError, Writer};
use crate::event::StoredEvent;
use crate::store::group_commit::GroupResult;
use crate::store::{Facet, PreparedBatch, ReasonKind};
use crate::timefmt;

/// An earlier event of the same message.
struct Prior {
    facts: EventFacts,
    /// The stored JSON, for deliveries and injections (the enrichment source).
    json: Option<String>,
    cohort: Option<Cohort>,
}

fn needs_history(kind: Option<EventType>) -> bool {
    kind.is_some_and(|k| {
        k.is_engagement()
            || k.is_unsubscribe()
            || matches!(k, EventType::SpamComplaint | EventType::OutOfBand)
    })
}

fn history(tx: &Transaction<'_>, message_id: &str) -> Result<Vec<Prior>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT type, ts, CASE WHEN type IN ('delivery', 'injection') THEN json END, \
         link_name, machine, cohort FROM events WHERE message_id = ?1",
    )?;
    let rows = stmt.query_map([message_id], |r| {
        let kind: String = r.get(0)?;
        let json = r.get::<_, Option<Vec<u8>>>(2)?;
        Ok(Prior {
            facts: EventFacts {
                kind: EventType::parse(&kind),
                ts: r.get(1)?,
                link: r.get(3)?,
                machine: r.get::<_, Option<i64>>(4)?.unwrap_or(0) != 0,
                ..EventFacts::default()
            },
            json: json.as_deref().and_then(super::packed::unpack),
            cohort: r.get::<_, Option<i64>>(5)?.and_then(Cohort::from_code),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored JSON of the newest delivery, else injection, of the message.
fn original(history: &[Prior]) -> Option<&str> {
    let newest = |k: EventType| {
        history
            .iter()
            .filter(|p| p.facts.kind == Some(k) && p.json.is_some())
            .max_by_key(|p| p.facts.ts)
            .and_then(|p| p.json.as_deref())
    };
    newest(EventType::Delivery).or_else(|| newest(EventType::Injection))
}

fn recipient_state(tx: &Transaction<'_>, rcpt: &str) -> Result<RecipientState, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT first_mailed, last_engaged, last_mailed FROM recipients WHERE rcpt = ?1",
        )?
        .query_row([rcpt], |r| {
            Ok(RecipientState {
                first_mailed: r.get(0)?,
                last_engaged: r.get(1)?,
                last_mailed: r.get(2)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

fn put_recipient_state(
    tx: &Transaction<'_>,
    rcpt: &str,
    s: RecipientState,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO recipients (rcpt, first_mailed, last_engaged, last_mailed) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (rcpt) DO UPDATE SET \
         first_mailed = excluded.first_mailed, last_engaged = excluded.last_engaged, \
         last_mailed = excluded.last_mailed",
    )?
    .execute(params![rcpt, s.first_mailed, s.last_engaged, s.last_mailed])?;
    Ok(())
}

/// The ids of a subaccount and the values of the other facets (in [`Facet::ALL`] order),
/// created when new.
fn keys_from(
    tx: &Transaction<'_>,
    dict: &mut Dict,
    subaccount: i64,
    texts: [&str; 8],
) -> Result<Keys, StoreError> {
    let mut values = [0i64; 9];
    values[Facet::Subaccount.code()] = dict.subaccount_id(tx, subaccount)?;
    for (facet, value) in Facet::ALL[1..].iter().zip(texts) {
        values[facet.code()] = dict.value_id(tx, *facet, value)?;
    }
    let v = |f: Facet| values[f.code()];
    let sdim = dict.sender.id(tx, SENDER.map(v))?;
    let rdim = dict.recipient.id(tx, RECIPIENT.map(v))?;
    Ok(Keys { values, sdim, rdim })
}

/// The ids an event is counted under (facet values, sender and recipient dims), created
/// when new. Unknown values are the empty string; the region of a known domain without
/// one is `Global`.
fn keys_of(tx: &Transaction<'_>, dict: &mut Dict, ev: &StoredEvent) -> Result<Keys, StoreError> {
    fn s(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    let domain = s(&ev.recipient_domain);
    let region = match (&ev.region, domain.is_empty()) {
        (Some(r), _) => r.as_str(),
        (None, true) => "",
        (None, false) => "Global",
    };
    keys_from(
        tx,
        dict,
        ev.subaccount_id.unwrap_or(0),
        [
            s(&ev.campaign_id),
            s(&ev.template_id),
            s(&ev.ip_pool),
            s(&ev.sending_ip),
            s(&ev.sending_domain),
            domain,
            s(&ev.mailbox_provider),
            region,
        ],
    )
}

/// Which reason report an event feeds, with its class and counts per increment.
fn reason_of(
    ev: &StoredEvent,
    c: &counters::Counters,
) -> Option<(ReasonKind, i64, String, [i64; 4])> {
    let kind = ev.facts.kind?;
    let reason = || ev.reason.clone().unwrap_or_default();
    match kind {
        EventType::Bounce | EventType::OutOfBand => Some((
            ReasonKind::Bounce,
            i64::from(petrel_signals_model::bounce::class(ev.facts.bounce_class).code),
            reason(),
            [c.inband_bounce, c.outofband_bounce, c.admin_bounce, 0],
        )),
        EventType::Delay => Some((
            ReasonKind::Delay,
            0,
            reason(),
            [c.delayed, c.delayed_first, 0, 0],
        )),
        EventType::PolicyRejection => Some((ReasonKind::Rejection, 1, reason(), [1, 0, 0, 0])),
        EventType::GenerationRejection => Some((ReasonKind::Rejection, 2, reason(), [1, 0, 0, 0])),
        EventType::GenerationFailure => Some((ReasonKind::Rejection, 3, reason(), [1, 0, 0, 0])),
        EventType::Click => Some((
            ReasonKind::Link,
            0,
            ev.facts.link.clone().unwrap_or_else(|| "Raw URL".into()),
            [c.clicked, c.raw_clicked, 0, 0],
        )),
        _ => None,
    }
}

/// A batch waiting for the writer: its events, their packed JSON where enrichment cannot
/// change it, and its outcome so far.
pub(super) struct Queued {
    batch: PreparedBatch,
    packed: Vec<Option<Vec<u8>>>,
    outcome: BatchOutcome,
}

impl SqliteStore {
    /// Stores a batch with whatever batches are waiting for the writer (group commit, see
    /// `store::group_commit`): one transaction, one fsync and one rollup flush per group.
    pub(super) fn ingest_impl(&self, batch: PreparedBatch) -> Result<BatchOutcome, StoreError> {
        let outcome = BatchOutcome {
            id: uuid_v4()?,
            error_type: batch.batch_error,
            accepted: 0,
            failed: batch.failed,
            duplicates: 0,
        };
        // Events that enrichment will not change are compressed here, before the writer,
        // so two uploads compress on two cores (it was ~7 % of the writer's time).
        let packed: Vec<Option<Vec<u8>>> = batch
            .events
            .iter()
            .map(|ev| (!crate::enrich::is_enriched(ev)).then(|| super::packed::pack(&ev.json)))
            .collect();
        let events = batch.events.len();
        let queued = Queued {
            batch,
            packed,
            outcome,
        };
        self.queue.submit(queued, events, &self.writer, |w, group| {
            let result = store_group(w, group);
            if result.is_err() {
                w.dict_valid = false;
            }
            result
        })
    }
}

/// Stores a group of batches in arrival order in one transaction.
fn store_group(w: &mut Writer, group: Vec<Queued>) -> GroupResult {
    let Writer {
        conn,
        dict,
        dict_valid,
        upsert_sql,
    } = w;
    if !*dict_valid {
        *dict = Dict::default();
        dict.refresh(conn)?;
        *dict_valid = true;
    }
    let tx = conn.transaction()?;
    let mut pending = Pending::default();
    let mut outcomes = Vec::with_capacity(group.len());
    for queued in group {
        outcomes.push(store_batch(&tx, dict, &mut pending, queued)?);
    }
    pending.flush(&tx, dict, upsert_sql)?;
    tx.commit()?;
    Ok(outcomes)
}

/// One batch of a group: its events, recipients' state and batch record, its counts into
/// `pending`.
fn store_batch(
    tx: &Transaction<'_>,
    dict: &mut Dict,
    pending: &mut Pending,
    queued: Queued,
) -> Result<BatchOutcome, StoreError> {
    let Queued {
        batch,
        packed,
        mut outcome,
    } = queued;
    let outcome = &mut outcome;
    let mut first_error = batch.first_error;
    let mut events = batch.events;
    if outcome.error_type.is_none() {
        let seen: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM batches WHERE content_hash = ?1 \
                 AND (error_type IS NULL OR error_type = 'validation') LIMIT 1",
                [&batch.content_hash],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some() {
            outcome.error_type = Some("duplicate_batch");
            outcome.failed = 0;
            first_error = None;
            events.clear();
        }
    }
    for (mut ev, packed) in events.into_iter().zip(packed) {
        let kind = ev.facts.kind;
        let prior = match (&ev.message_id, needs_history(kind)) {
            (Some(m), true) => history(tx, m)?,
            _ => Vec::new(),
        };
        crate::enrich::enrich(&mut ev, original(&prior));
        let rcpt = ev.rcpt_to.clone();
        let mut cohort_now = None;
        let mut state = None;
        let engagement = counts_as_engagement(&ev.facts);
        if let Some(r) = rcpt
            .as_deref()
            .filter(|_| kind == Some(EventType::Injection) || engagement)
        {
            let s = recipient_state(tx, r)?;
            if kind == Some(EventType::Injection) {
                cohort_now = Some(cohort::classify(s, ev.timestamp));
            }
            state = Some(s);
        }
        let keys = keys_of(tx, dict, &ev)?;
        let n = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (event_id, ts, type, rcpt_to, message_id, \
                 bounce_class, json, sdim, rdim, link_name, machine, cohort) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                ev.event_id,
                ev.timestamp,
                ev.event_type,
                ev.rcpt_to,
                ev.message_id,
                ev.bounce_class,
                packed.unwrap_or_else(|| super::packed::pack(&ev.json)),
                keys.sdim,
                keys.rdim,
                ev.facts
                    .link
                    .as_deref()
                    .filter(|_| kind == Some(EventType::Click)),
                i64::from(ev.facts.machine),
                cohort_now.map(Cohort::code),
            ])?;
        if n == 0 {
            outcome.duplicates += 1;
            continue;
        }
        outcome.accepted += 1;
        if let (Some(r), Some(s)) = (rcpt.as_deref(), state) {
            let next = if kind == Some(EventType::Injection) {
                cohort::after_injection(s, ev.timestamp)
            } else {
                cohort::after_engagement(s, ev.timestamp)
            };
            if next != s {
                put_recipient_state(tx, r, next)?;
            }
        }
        count(tx, dict, pending, &ev, &keys, &prior, cohort_now)?;
    }
    if outcome.error_type.is_none() && outcome.failed > 0 {
        outcome.error_type = Some("validation");
    }
    tx.execute(
        "INSERT INTO batches (id, record_id, error_type, received_at, content_hash, accepted, \
         failed, duplicates, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            outcome.id,
            uuid_v4()?,
            outcome.error_type,
            timefmt::now_secs(),
            batch.content_hash,
            outcome.accepted as i64,
            outcome.failed as i64,
            outcome.duplicates as i64,
            first_error,
        ],
    )?;
    Ok(outcome.clone())
}

/// Adds what one stored event counts to the pending rollups.
fn count(
    tx: &Transaction<'_>,
    dict: &mut Dict,
    pending: &mut Pending,
    ev: &StoredEvent,
    keys: &Keys,
    prior: &[Prior],
    cohort_now: Option<Cohort>,
) -> Result<(), StoreError> {
    if ev.facts.kind.is_none() {
        return Ok(());
    }
    let prior_facts: Vec<EventFacts> = prior.iter().map(|p| p.facts.clone()).collect();
    for inc in Increment::ALL {
        let c = counters::add_event(&ev.facts, &prior_facts, inc);
        let bucket = inc.floor(ev.timestamp);
        if !c.is_zero() {
            pending.add(keys, inc, bucket, &c);
        }
        if let Some((kind, class, text, counts)) = reason_of(ev, &c) {
            if counts.iter().any(|v| *v != 0) {
                let rid = dict.reason_id(tx, kind.code(), class, &text)?;
                pending.add_reason(inc, rid, keys, bucket, counts);
            }
        }
    }
    let injection_facts = cohort_now.map(|c| InjectionFacts {
        cohort: c,
        trap: ev.trap,
        list_quality_hit: ev.list_quality_hit,
    });
    let injected = prior
        .iter()
        .filter(|p| p.facts.kind == Some(EventType::Injection))
        .find_map(|p| {
            p.cohort.map(|c| InjectionRef {
                ts: p.facts.ts,
                cohort: c,
            })
        });
    let provider = keys.values[Facet::MailboxProvider.code()];
    for (day, add) in daily::add_event(&ev.facts, injection_facts.as_ref(), injected, &prior_facts)
    {
        pending.add_daily(day, keys.sdim, provider, &add);
    }
    Ok(())
}
