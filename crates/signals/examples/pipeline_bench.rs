//! Benchmark of the whole Signals path petrel uses: N typed events are emitted into the
//! durable event spool (`petrel-events`), then the uploader ships the closed files (gzip,
//! ≤ 5 MiB batches) to petrel's Signals service on loopback, which stores them in SQLite.
//! Prints the emit rate and the upload + ingest rate separately, and checks every event
//! arrived exactly once.
//!
//! `cargo run --release -p petrel-signals --example pipeline_bench -- [events]`

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use petrel_events::{
    Event, EventKind, EventSpool, SpoolConfig, UploadOutcome, Uploader, UploaderConfig,
};
use petrel_signals::{
    router, AnalyticsStore, BatchQuery, Permission, ServiceOptions, SignalsStore,
};

fn event(i: u64) -> Event {
    let kind = if i.is_multiple_of(2) {
        EventKind::Reception
    } else {
        EventKind::Delivery
    };
    let mut e = Event::new(
        kind,
        1_000_000_000 + i,
        format!("{:016x}0000", i / 2),
        SystemTime::now(),
    );
    e.rcpt_to = Some(format!("user{}@example{}.net", i / 2, i % 50));
    e.raw_rcpt_to = e.rcpt_to.clone();
    e.msg_from = Some("bounces@mail.example.com".into());
    e.friendly_from = Some("news@example.com".into());
    e.subject = Some("Spring is here".into());
    e.sending_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 16) as u8)));
    e.ip_pool = Some(format!("pool{}", i % 4));
    e.binding = Some(format!("vmta{}", i % 16));
    e.campaign_id = Some(format!("campaign-{}", i % 20));
    e.subaccount_id = i % 3;
    e.routing_domain = Some(format!("example{}.net", i % 50));
    e.sending_domain = Some("example.com".into());
    e.msg_size = Some(18_234);
    e.num_retries = Some(0);
    e.queue_time = Some(Duration::from_millis(2870));
    e.delv_method = Some("esmtp".into());
    e
}

#[tokio::main]
async fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SignalsStore::open(&dir.path().join("bench.db")).expect("open"));
    let key = "0123456789abcdef0123456789abcdef01234567";
    store
        .ensure_api_key(key, "bench", &[Permission::Ingest, Permission::Read])
        .expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(store.clone(), ServiceOptions::default());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let events_dir = dir.path().join("events");
    let spool = EventSpool::open(SpoolConfig::new(&events_dir)).expect("spool");
    let start = Instant::now();
    for i in 0..total {
        spool.emit(&event(i)).expect("emit");
    }
    spool.close().expect("close");
    let emit_secs = start.elapsed().as_secs_f64();
    println!(
        "emitted {total} events into {} in {emit_secs:.2} s: {:.0} events/s (durable files)",
        events_dir.display(),
        total as f64 / emit_secs
    );

    let mut uc = UploaderConfig::new(
        &events_dir,
        format!("http://{addr}/api/v1/ingest/events"),
        key,
    );
    uc.min_free_space = 0;
    let uploader = Uploader::new(uc).expect("uploader");
    let start = Instant::now();
    let mut batches = 0;
    let mut sent = 0;
    loop {
        match uploader.run_once().await {
            UploadOutcome::Uploaded { events, .. } => {
                batches += 1;
                sent += events;
            }
            UploadOutcome::Idle => break,
            other => panic!("upload failed: {other:?}"),
        }
    }
    let up_secs = start.elapsed().as_secs_f64();
    println!(
        "uploaded and ingested {sent} events in {batches} batches in {up_secs:.2} s: {:.0} events/s",
        sent as f64 / up_secs
    );
    let q = BatchQuery::from_pairs(vec![("per_page".into(), "10000".into())]).expect("query");
    let page = store.search_batches(&q).expect("batches");
    let stored: i64 = page
        .results
        .iter()
        .map(|b| b["number_succeeded"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(stored as u64, total, "every event stored exactly once");
    println!(
        "RESULT events={total} emit_eps={:.0} upload_ingest_eps={:.0}",
        total as f64 / emit_secs,
        sent as f64 / up_secs
    );
}
