//! The ClickHouse store against a real server (Debian's clickhouse-server 18.16, started by
//! the test): connection and version errors, de-duplication of a batch sent twice and of
//! the same batch ingested by two service instances at once, 503 while ClickHouse is down,
//! API keys shared between instances, and retention by whole day partitions.

#[path = "support/http.rs"]
mod support;

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};

use petrel_signals::ingest::prepare;
use petrel_signals::{
    router, AnalyticsStore, ClickHouseSettings, ClickHouseStore, Permission, Retention,
    ServiceOptions, StoreError,
};
use petrel_test_clickhouse::{ClickHouseServer, PASSWORD, USER};
use serde_json::{json, Value};

/// Monday 2026-11-02 00:00 UTC.
const BASE: i64 = 1_793_577_600;
const DAY: i64 = 86_400;

fn settings(server: &ClickHouseServer, db: &str) -> ClickHouseSettings {
    ClickHouseSettings {
        url: server.url(),
        database: db.into(),
        user: USER.into(),
        password: PASSWORD.into(),
        statement_log: None,
    }
}

fn connect(server: &ClickHouseServer, db: &str) -> ClickHouseStore {
    ClickHouseStore::connect(&settings(server, db)).expect("connects")
}

fn gzip(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// `n` deliveries with ids `first..first+n`, one a minute from `start`.
fn deliveries(first: u64, n: u64, start: i64) -> String {
    let mut out = String::new();
    for i in first..first + n {
        let ev = json!({"msys": {"message_event": {
            "type": "delivery", "event_id": i.to_string(), "message_id": format!("m{i}"),
            "timestamp": (start + (i - first) as i64 * 60).to_string(),
            "rcpt_to": format!("r{}@example.com", i % 97), "campaign_id": "c",
            "num_retries": "0", "queue_time": "10", "msg_size": "100"}}});
        out.push_str(&ev.to_string());
        out.push('\n');
    }
    out
}

fn ingest(store: &dyn AnalyticsStore, body: &[u8]) -> petrel_signals::BatchOutcome {
    store
        .ingest(prepare(body, &Default::default()).unwrap())
        .unwrap()
}

/// Σ count_delivered over 90 days from BASE, through the store interface.
fn delivered(store: &dyn AnalyticsStore) -> i64 {
    let rows = store
        .rollups(&petrel_signals::store::RollupQuery {
            increment: petrel_signals_model::counters::Increment::Day,
            from: BASE - 10 * DAY,
            to: BASE + 90 * DAY,
            filter: &petrel_signals::store::Filter::all(),
            group_by: &[],
            by_bucket: false,
            counters: petrel_signals_model::counters::CounterSet::all(),
        })
        .unwrap();
    rows.iter().map(|r| r.counters.delivered).sum()
}

fn stored_events(server: &ClickHouseServer, db: &str) -> i64 {
    server
        .query(&format!("SELECT count() FROM {db}.events"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn connection_errors_say_what_is_wrong() {
    let down = ClickHouseSettings {
        url: "http://127.0.0.1:1".into(),
        ..ClickHouseSettings::default()
    };
    match ClickHouseStore::connect(&down) {
        Err(StoreError::Unavailable(m)) => {
            assert!(
                m.contains("cannot reach ClickHouse at http://127.0.0.1:1/"),
                "{m}"
            )
        }
        other => panic!("{:?}", other.err()),
    }
    let server = ClickHouseServer::shared();
    let mut wrong = settings(server, "x");
    wrong.password = "nope".into();
    match ClickHouseStore::connect(&wrong) {
        Err(StoreError::Backend(m)) => assert!(m.contains("refused user petrel"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    match ClickHouseStore::connect(&settings(server, "bad-name")) {
        Err(StoreError::Backend(m)) => assert!(m.contains("letters, digits and _"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    // A server too old to run petrel's schema: no such ClickHouse can be installed here,
    // so a loopback stand-in answers `SELECT version()` the way ClickHouse does.
    let old = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", old.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = old.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let version = b"1.1.54343";
            let mut body = vec![version.len() as u8];
            body.extend_from_slice(version);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    let too_old = ClickHouseSettings {
        url,
        ..ClickHouseSettings::default()
    };
    match ClickHouseStore::connect(&too_old) {
        Err(StoreError::Backend(m)) => assert!(
            m.contains("ClickHouse 1.1.54343 is too old: petrel needs 18.16 or later"),
            "{m}"
        ),
        other => panic!("{:?}", other.err()),
    }
    // And the real one is new enough; connecting twice (schema exists) is fine.
    let store = connect(server, "versions");
    assert!(
        store.server_version().starts_with("18.16"),
        "{}",
        store.server_version()
    );
    connect(server, "versions");
    // A database made by an earlier layout is refused with what to do, not written
    // wrongly: separate reason and daily counter tables, or full-cube rows keyed by a
    // single full tuple (a `rollups` without `sdim`).
    for (db, table, says) in [
        ("earlier", "reason_rollups (inc UInt8)", "reason_rollups"),
        (
            "earlier_full",
            "rollups (tbl UInt8, dim UInt64)",
            "rollups without sdim",
        ),
    ] {
        server
            .query(&format!("CREATE DATABASE {db}"))
            .expect("database");
        server
            .query(&format!("CREATE TABLE {db}.{table} ENGINE = Memory"))
            .expect("table");
        match ClickHouseStore::connect(&settings(server, db)) {
            Err(StoreError::Backend(m)) => assert!(
                m.contains(&format!("`{db}` has the table layout of an earlier petrel"))
                    && m.contains(says)
                    && m.contains("new database"),
                "{m}"
            ),
            other => panic!("{:?}", other.err()),
        }
    }
}

#[test]
fn a_batch_sent_twice_counts_once() {
    let server = ClickHouseServer::shared();
    let store = connect(server, "twice");
    let body = gzip(&deliveries(1, 500, BASE));
    let first = ingest(&store, &body);
    assert_eq!((first.accepted, first.error_type), (500, None));
    let again = ingest(&store, &body);
    assert_eq!(again.error_type, Some("duplicate_batch"));
    assert_eq!(again.accepted, 0);
    // A retry that is not byte-identical: half old events, half new.
    let overlap = gzip(&deliveries(251, 500, BASE + 250 * 60));
    let o = ingest(&store, &overlap);
    assert_eq!((o.accepted, o.duplicates), (250, 250));
    assert_eq!(delivered(&store), 750);
    assert_eq!(stored_events(server, "twice"), 750);
}

#[test]
fn two_instances_ingesting_the_same_batches_at_once_count_each_event_once() {
    let server = ClickHouseServer::shared();
    let a: Arc<dyn AnalyticsStore> = Arc::new(connect(server, "pair"));
    let b: Arc<dyn AnalyticsStore> = Arc::new(connect(server, "pair"));
    let rounds = 8u64;
    let per = 2_000u64;
    for round in 0..rounds {
        // Identical bodies, and overlapping ones that differ (a retry with more files).
        let first = round * 10 * per;
        let same = gzip(&deliveries(first, per, BASE + round as i64 * DAY));
        let more = gzip(&deliveries(
            first + per / 2,
            per,
            BASE + round as i64 * DAY + (per / 2) as i64 * 60,
        ));
        let barrier = Arc::new(Barrier::new(3));
        let run = |store: Arc<dyn AnalyticsStore>, bodies: Vec<Vec<u8>>| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                bodies
                    .iter()
                    .map(|b| ingest(store.as_ref(), b).accepted)
                    .sum::<u64>()
            })
        };
        let ta = run(a.clone(), vec![same.clone(), more.clone()]);
        let tb = run(b.clone(), vec![same, more]);
        barrier.wait();
        let accepted = ta.join().unwrap() + tb.join().unwrap();
        // Every distinct event accepted exactly once, by one instance or the other.
        assert_eq!(accepted, per + per / 2, "round {round}");
    }
    let distinct = (rounds * (per + per / 2)) as i64;
    assert_eq!(stored_events(server, "pair"), distinct);
    assert_eq!(delivered(a.as_ref()), distinct);
    assert_eq!(delivered(b.as_ref()), distinct);
}

#[test]
fn api_keys_live_in_the_store() {
    let server = ClickHouseServer::shared();
    let a = connect(server, "keys");
    let b = connect(server, "keys");
    assert_eq!(b.key_permissions("nope").unwrap(), None);
    let key = a.create_api_key("mta", &[Permission::Ingest]).unwrap();
    assert_eq!(
        b.key_permissions(&key).unwrap(),
        Some(vec![Permission::Ingest])
    );
    a.ensure_api_key(
        "operator-key",
        "ops",
        &[Permission::Ingest, Permission::Read],
    )
    .unwrap();
    assert_eq!(
        b.key_permissions("operator-key").unwrap(),
        Some(vec![Permission::Ingest, Permission::Read])
    );
}

#[test]
fn retention_drops_whole_days() {
    let server = ClickHouseServer::shared();
    let store = connect(server, "retention");
    // Four days of events, 12 h apart.
    let mut text = String::new();
    for i in 0..8u64 {
        text.push_str(&deliveries(1000 + i, 1, BASE + i as i64 * DAY / 2));
    }
    assert_eq!(ingest(&store, &gzip(&text)).accepted, 8);
    // Cutoff in the middle of day 2: days 0 and 1 go, day 2 stays whole.
    let now = BASE + 2 * DAY + DAY / 2 + 10 * DAY;
    let e = store
        .expire(
            &Retention {
                events_secs: 10 * DAY,
                metrics_secs: 10 * DAY,
            },
            now,
        )
        .unwrap();
    assert_eq!(e.events, 4);
    assert!(e.rollup_rows > 0);
    assert_eq!(stored_events(server, "retention"), 4);
    assert_eq!(delivered(&store), 4);
}

async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    key: &str,
    body: &[u8],
) -> (u16, Value) {
    support::json(addr, key, method, path, support::GZIP_NDJSON, body).await
}

#[tokio::test]
async fn clickhouse_down_answers_503_and_nothing_is_lost() {
    let mut server = ClickHouseServer::start();
    let s = settings(&server, "outage");
    let store = tokio::task::spawn_blocking(move || ClickHouseStore::connect(&s))
        .await
        .unwrap()
        .unwrap();
    let store: Arc<dyn AnalyticsStore> = Arc::new(store);
    let key = store
        .create_api_key("t", &[Permission::Ingest, Permission::Read])
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(store.clone(), ServiceOptions::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let batch = gzip(&deliveries(1, 100, BASE));
    server.kill();
    let (status, v) = http(addr, "POST", "/api/v1/ingest/events", &key, &batch).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "{v}"
    );
    let metrics = "/api/v1/metrics/deliverability?from=2026-11-01T00:00&to=2026-11-05T00:00&metrics=count_delivered";
    let (status, _) = http(addr, "GET", metrics, &key, b"").await;
    assert_eq!(status, 503);
    // Back up: the uploader's retry stores the batch, once.
    server.restart();
    for _ in 0..2 {
        let (status, v) = http(addr, "POST", "/api/v1/ingest/events", &key, &batch).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = http(addr, "GET", metrics, &key, b"").await;
    assert_eq!(status, 200);
    assert_eq!(v["results"][0]["count_delivered"], 100, "{v}");
}
