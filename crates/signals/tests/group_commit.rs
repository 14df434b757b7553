//! Group commit in the SQLite store: many uploads at once (some of them the same batch
//! again, some repeating event ids of others) are stored in shared transactions, yet each
//! caller gets its own outcome, a re-sent batch is `duplicate_batch` exactly once over, and
//! every event is counted once in the rollups.

use std::sync::{Arc, Barrier};

use petrel_signals::store::{AnalyticsStore, Filter, RollupQuery};
use petrel_signals::{ingest, SqliteStore};
use petrel_signals_model::counters::{CounterSet, Increment};
use serde_json::json;

const DAY: i64 = 86_400;
/// 2026-11-02 00:00 UTC.
const BASE: i64 = 1_793_577_600;
const UPLOADERS: usize = 8;
const BATCHES: usize = 6;
const EVENTS: usize = 150;

/// A gzipped batch of deliveries with event ids `first..first + EVENTS`.
fn batch(first: usize) -> Vec<u8> {
    let mut text = String::new();
    for n in first..first + EVENTS {
        let ev = json!({"msys": {"message_event": {
            "type": "delivery", "event_id": n.to_string(), "message_id": format!("m{n}"),
            "timestamp": (BASE + n as i64).to_string(), "rcpt_to": format!("r{n}@example.com"),
            "subaccount_id": 0, "campaign_id": format!("c{}", n % 7), "msg_size": "1000",
        }}});
        text.push_str(&ev.to_string());
        text.push('\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn concurrent_uploads_are_each_answered_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("signals.db")).unwrap());
    let shared = Arc::new(batch(1_000_000));
    let start = Arc::new(Barrier::new(UPLOADERS));
    let uploaders: Vec<_> = (0..UPLOADERS)
        .map(|u| {
            let (store, shared, start) = (store.clone(), shared.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut outcomes = Vec::new();
                for b in 0..BATCHES {
                    // Each uploader's batches overlap the next uploader's by half a batch,
                    // so the same event ids arrive in different batches at once.
                    let first = (u * BATCHES + b) * EVENTS;
                    let body = if b == BATCHES / 2 {
                        shared.to_vec()
                    } else {
                        batch(first + (b % 2) * EVENTS / 2)
                    };
                    let prepared = ingest::prepare(&body, &Default::default()).expect("prepare");
                    outcomes.push(store.ingest(prepared).expect("ingest"));
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<_> = uploaders
        .into_iter()
        .flat_map(|u| u.join().unwrap())
        .collect();

    let ids: std::collections::HashSet<&str> = outcomes.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        ids.len(),
        outcomes.len(),
        "every upload has its own batch id"
    );
    let resent = outcomes
        .iter()
        .filter(|o| o.error_type == Some("duplicate_batch"))
        .count();
    assert_eq!(resent, UPLOADERS - 1, "the shared batch is stored once");
    let accepted: u64 = outcomes.iter().map(|o| o.accepted).sum();
    let duplicates: u64 = outcomes.iter().map(|o| o.duplicates).sum();
    // The distinct event ids that were uploaded.
    let mut distinct = std::collections::HashSet::new();
    for u in 0..UPLOADERS {
        for b in 0..BATCHES {
            let first = if b == BATCHES / 2 {
                1_000_000
            } else {
                (u * BATCHES + b) * EVENTS + (b % 2) * EVENTS / 2
            };
            distinct.extend(first..first + EVENTS);
        }
    }
    assert_eq!(accepted as usize, distinct.len());
    let uploaded = (UPLOADERS * (BATCHES - 1) + 1) * EVENTS;
    assert_eq!((accepted + duplicates) as usize, uploaded);

    let rows = store
        .rollups(&RollupQuery {
            increment: Increment::Day,
            from: BASE - DAY,
            to: BASE + 30 * DAY,
            filter: &Filter::all(),
            group_by: &[],
            by_bucket: false,
            counters: CounterSet::all(),
        })
        .unwrap();
    let delivered: i64 = rows.iter().map(|r| r.counters.delivered).sum();
    assert_eq!(delivered as usize, distinct.len());
}
