//! The two backends give the same answers: one generated stream of batches (200,000 events
//! by default, enough for every facet value and bucket to hold many rows: every event type and facet, thin events needing enrichment, repeat
//! recipients, late events, duplicated events, re-sent batches, invalid lines) is ingested
//! into SQLite and into a real ClickHouse server, each batch's outcome is compared, and then
//! every Metrics, Signals and Events API endpoint is asked the same questions on both and
//! the JSON answers are compared field by field.
//!
//! `PETREL_DIFF_EVENTS=N` changes the size (`PETREL_DIFF_EVENTS=1000000` for the million-event
//! run, about 10 minutes on 2 cores; the suite keeps the default to stay well under its time).

#[path = "support/generator.rs"]
mod generator;
#[path = "support/http.rs"]
mod http;

use std::net::SocketAddr;
use std::sync::{mpsc, Arc};

use petrel_signals::ingest::prepare;
use petrel_signals::{
    router, AnalyticsStore, BatchOutcome, ClickHouseSettings, ClickHouseStore, Permission,
    ServiceOptions, SqliteStore,
};
use petrel_signals_model::traps::TrapList;
use petrel_test_clickhouse::ClickHouseServer;
use serde_json::Value;

use generator::{batches, Plan};

/// Monday 2026-08-03 00:00 UTC: 90 days of injections from here.
const BASE: i64 = 1_785_715_200;
const KEY: &str = "d1ff0000000000000000000000000000000000ff";
const TRAPS: &str = "u3@d3.example recycled\nd7.example parked\nu12@gmail.com typo\n";

fn outcome(o: &BatchOutcome) -> (u64, u64, u64, Option<&'static str>) {
    (o.accepted, o.failed, o.duplicates, o.error_type)
}

/// Ingests every batch into both stores (one thread each) and checks the outcomes agree.
fn ingest_both(plan: Plan, a: Arc<dyn AnalyticsStore>, b: Arc<dyn AnalyticsStore>) -> (u64, u64) {
    let traps = Arc::new(TrapList::parse(TRAPS).unwrap());
    let worker = |name: &'static str, store: Arc<dyn AnalyticsStore>, traps: Arc<TrapList>| {
        let (tx, rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(4);
        let handle = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let out: Vec<_> = rx
                .into_iter()
                .map(|body| {
                    let o = store
                        .ingest(prepare(&body, &traps).unwrap())
                        .unwrap_or_else(|e| panic!("ingest: {e}"));
                    outcome(&o)
                })
                .collect();
            eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
            out
        });
        (tx, handle)
    };
    let (ta, ha) = worker("SQLite", a, traps.clone());
    let (tb, hb) = worker("ClickHouse", b, traps);
    let mut gen = batches(plan);
    let mut n = 0u64;
    for body in gen.by_ref() {
        let body = Arc::new(body);
        ta.send(body.clone()).unwrap();
        tb.send(body).unwrap();
        n += 1;
    }
    drop((ta, tb));
    let (oa, ob) = (ha.join().unwrap(), hb.join().unwrap());
    for (i, (x, y)) in oa.iter().zip(&ob).enumerate() {
        assert_eq!(x, y, "batch {i}: SQLite {x:?}, ClickHouse {y:?}");
    }
    let kinds = |k| oa.iter().filter(|o| o.3 == k).count();
    assert!(kinds(Some("duplicate_batch")) > 0 && kinds(Some("validation")) > 0);
    assert!(
        oa.iter().map(|o| o.2).sum::<u64>() > 0,
        "some duplicate events"
    );
    (n, gen.emitted())
}

async fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, Value) {
    http::json(addr, KEY, "GET", path, headers, b"").await
}

/// Where two JSON values differ, as `path: left != right` lines (at most `max`).
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>, max: usize) {
    if out.len() >= max {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                if x.contains_key(k) != y.contains_key(k) {
                    out.push(format!("{path}/{k}: present on one side only ({l} | {r})"));
                } else {
                    differences(l, r, &format!("{path}/{k}"), out, max);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: {} items != {} items", x.len(), y.len()));
            }
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(l, r, &format!("{path}/{i}"), out, max);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

/// Every question asked of both services.
fn questions() -> Vec<(String, &'static str)> {
    let all: Vec<&str> = petrel_signals_model::counters::METRICS
        .iter()
        .map(|m| m.name)
        .collect();
    let all = all.join(",");
    let some = "count_injected,count_delivered,count_bounce,count_unique_confirmed_opened,count_clicked,count_raw_clicked";
    let whole = "from=2026-08-03T00:00&to=2026-11-06T00:00";
    let windows = [
        format!("{whole}&metrics={all}"),
        format!("from=2026-09-01T00:00&to=2026-10-01T00:00&precision=hour&timezone=America/New_York&metrics={all}"),
        format!("from=2026-09-15T00:00&to=2026-09-16T00:00&precision=1min&metrics={all}"),
        format!("from=2026-09-15T03:10&to=2026-09-16T02:00&precision=5min&timezone=Asia/Kolkata&metrics={all}"),
        format!("from=2026-09-15T00:00&to=2026-09-17T00:00&precision=15min&metrics={all}"),
    ];
    let filters = [
        "",
        "&campaigns=campaign-3,campaign-17",
        "&domains=gmail.com,d3.example",
        "&subaccounts=0,2",
        "&ip_pools=pool-1&sending_ips=10.0.1.2",
        "&templates=tpl-3&mailbox_providers=gmail",
        "&mailbox_provider_regions=Europe",
        "&sending_domains=brand1.example,send.brand3.example",
        "&query_filters=%7B%22groupings%22%3A%5B%7B%22AND%22%3A%7B%22campaigns%22%3A%7B%22like%22%3A%5B%22ign-1%22%5D%7D%2C%22domains%22%3A%7B%22notEq%22%3A%5B%22gmail.com%22%5D%7D%7D%7D%2C%7B%22OR%22%3A%7B%22subaccounts%22%3A%7B%22eq%22%3A%5B1%2C2%5D%7D%2C%22mailbox_providers%22%3A%7B%22notLike%22%3A%5B%22mail%22%5D%7D%7D%7D%5D%7D",
        // A sender-side OR a recipient-side facet: ClickHouse tests each full tuple whole.
        "&query_filters=%7B%22groupings%22%3A%5B%7B%22OR%22%3A%7B%22campaigns%22%3A%7B%22eq%22%3A%5B%22campaign-3%22%5D%7D%2C%22domains%22%3A%7B%22eq%22%3A%5B%22gmail.com%22%5D%7D%7D%7D%5D%7D",
    ];
    let mut q: Vec<(String, &str)> = Vec::new();
    let m = "/api/v1/metrics/deliverability";
    for w in &windows {
        for f in &filters {
            q.push((format!("{m}?{w}{f}"), ""));
        }
    }
    for g in [
        "domain",
        "sending-ip",
        "ip-pool",
        "sending-domain",
        "subaccount",
        "campaign",
        "template",
        "mailbox-provider",
        "mailbox-provider-region",
    ] {
        q.push((format!("{m}/{g}?{whole}&metrics={all}&limit=10000"), ""));
        q.push((
            format!("{m}/{g}?from=2026-09-10T00:00&to=2026-09-24T00:00&precision=hour&metrics={some}&order_by=count_clicked&limit=7&campaigns=campaign-15,campaign-16"),
            "",
        ));
        q.push((
            format!(
                "{m}/{g}?from=2026-09-15T00:00&to=2026-09-15T20:00&precision=1min&metrics={some}{}",
                filters[8]
            ),
            "",
        ));
        q.push((format!("{m}/{g}?{whole}&metrics={some}{}", filters[9]), ""));
    }
    for ts in [
        format!("{whole}&precision=day&metrics={some}"),
        format!("{whole}&precision=week&metrics={some}"),
        format!("{whole}&precision=month&metrics={some}&domains=gmail.com"),
        format!("from=2026-09-01T00:00&to=2026-09-11T00:00&precision=hour&timezone=Europe/Berlin&metrics={some}"),
        format!("from=2026-09-01T00:00&to=2026-09-21T00:00&precision=12hr&timezone=America/Los_Angeles&metrics={some}"),
        format!("from=2026-09-15T00:00&to=2026-09-16T00:00&precision=15min&metrics={all}"),
        format!("from=2026-09-15T10:00&to=2026-09-15T13:00&precision=1min&metrics={all}&subaccounts=1"),
    ] {
        q.push((format!("{m}/time-series?{ts}"), ""));
    }
    let bounce = "count_bounce,count_inband_bounce,count_outofband_bounce,count_admin_bounce";
    for (path, metrics) in [
        ("bounce-reason", bounce),
        ("bounce-reason/domain", bounce),
        ("bounce-classification", bounce),
        ("delay-reason", ""),
        ("delay-reason/domain", ""),
        ("rejection-reason", ""),
        ("rejection-reason/domain", ""),
        ("link-name", "count_clicked,count_raw_clicked"),
        ("attempt", ""),
    ] {
        let metrics = if metrics.is_empty() {
            String::new()
        } else {
            format!("&metrics={metrics}")
        };
        for w in [
            whole.to_string(),
            "from=2026-09-15T00:00&to=2026-09-16T00:00&precision=1min".to_string(),
            "from=2026-09-01T00:00&to=2026-09-20T00:00&precision=hour&campaigns=campaign-14"
                .to_string(),
            format!("{whole}{}", filters[9]),
        ] {
            q.push((format!("{m}/{path}?{w}{metrics}&limit=10000"), ""));
        }
    }
    for list in [
        "campaigns",
        "ip-pools",
        "sending-ips",
        "sending-domains",
        "domains",
        "templates",
        "mailbox-providers",
        "mailbox-provider-regions",
    ] {
        q.push((format!("/api/v1/metrics/{list}?limit=10000"), ""));
        q.push((
            format!("/api/v1/metrics/{list}?from=2026-09-01T00:00&to=2026-09-08T00:00&match=1"),
            "",
        ));
    }
    for report in [
        "health-score",
        "spam-hits",
        "cohort-engagement",
        "eng-cohort",
        "unsub-cohort",
        "fbl-cohort",
    ] {
        for facet in [
            "",
            "/campaign_id",
            "/ip_pool",
            "/mb_provider",
            "/sending_domain",
        ] {
            if report == "spam-hits" && facet == "/mb_provider" {
                continue;
            }
            let s = format!("/api/v1/signals/{report}{facet}");
            q.push((format!("{s}?from=2026-08-03&to=2026-10-31&limit=1000"), ""));
            q.push((
                format!("{s}?from=2026-09-01&to=2026-09-14&limit=3&offset=1&order=asc"),
                "",
            ));
            q.push((
                format!("{s}?from=2026-09-20&to=2026-10-10&filter=1"),
                "x-msys-subaccount: 2\r\n",
            ));
        }
    }
    let ev = "/api/v1/events/message";
    for f in [
        "from=2026-09-15T00:00:00Z&to=2026-09-15T02:00:00Z&per_page=10000",
        "from=2026-08-01T00:00:00Z&to=2026-11-10T00:00:00Z&per_page=1",
        "from=2026-09-01T00:00:00Z&to=2026-09-30T00:00:00Z&events=open,click,amp_click&campaigns=campaign-13&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-10T00:00:00Z&recipients=u4@d4.example,U8@gmail.com&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-10T00:00:00Z&subaccounts=3&events=bounce,out_of_band&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-05T00:00:00Z&ip_pools=pool-2&sending_ips=10.0.2.3&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-05T00:00:00Z&sending_domains=send.brand3.example&per_page=10000",
        "from=2026-08-01T00:00:00Z&to=2026-11-10T00:00:00Z&bounce_classes=10,51&events=bounce&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-05T00:00:00Z&recipient_domains=gmail&mailbox_providers=Gmail&per_page=10000",
        "from=2026-09-01T00:00:00Z&to=2026-09-05T00:00:00Z&templates=tpl&per_page=10000",
        "from=2026-08-01T00:00:00Z&to=2026-11-10T00:00:00Z&events=spam_complaint,list_unsubscribe,link_unsubscribe,generation_failure,generation_rejection,policy_rejection&per_page=10000",
        "from=2026-08-01T00:00:00Z&to=2026-11-10T00:00:00Z&events=relay_injection,relay_delivery,relay_permfail&per_page=10000",
    ] {
        q.push((format!("{ev}?{f}"), ""));
    }
    q
}

/// Events in the suite's run.
const DEFAULT_EVENTS: u64 = 200_000;

#[test]
fn sqlite_and_clickhouse_answer_alike() {
    let wanted: u64 = std::env::var("PETREL_DIFF_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_EVENTS);
    let plan = Plan {
        events: wanted,
        per_batch: 5_000,
        start: BASE,
        days: 90,
        recipients: (wanted / 16).max(1_000),
        messy: true,
        seed: 0x5eed,
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn AnalyticsStore> =
        Arc::new(SqliteStore::open(&dir.path().join("diff.db")).unwrap());
    let server = ClickHouseServer::start();
    let clickhouse: Arc<dyn AnalyticsStore> = Arc::new(
        ClickHouseStore::connect(&ClickHouseSettings {
            url: server.url(),
            database: "differential".into(),
            ..ClickHouseSettings::default()
        })
        .unwrap(),
    );
    for s in [&sqlite, &clickhouse] {
        s.ensure_api_key(KEY, "diff", &[Permission::Ingest, Permission::Read])
            .unwrap();
    }
    let started = std::time::Instant::now();
    let (batches, events) = ingest_both(plan, sqlite.clone(), clickhouse.clone());
    eprintln!(
        "ingested {events} events in {batches} batches into both stores in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var("PETREL_DIFF_EVENTS").is_err() {
        assert!(events >= DEFAULT_EVENTS, "{events}");
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut addrs = Vec::new();
        for store in [sqlite, clickhouse] {
            let traps = TrapList::parse(TRAPS).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            tokio::spawn(async move {
                axum::serve(listener, router(store, ServiceOptions { traps })).await
            });
        }
        let mut failures = Vec::new();
        let mut asked = 0;
        let mut queue = questions();
        while let Some((path, headers)) = queue.pop() {
            asked += 1;
            let t = std::time::Instant::now();
            let (sa, a) = get(addrs[0], &path, headers).await;
            let ta = t.elapsed().as_secs_f64();
            let (sb, b) = get(addrs[1], &path, headers).await;
            let tb = t.elapsed().as_secs_f64() - ta;
            if std::env::var("PETREL_DIFF_TIMES").is_ok() {
                eprintln!("{ta:.2} {tb:.2} {path}");
            }
            assert_eq!(sa, 200, "{path}: {a}");
            assert_eq!(sb, 200, "{path}: {b}");
            let mut diff = Vec::new();
            differences(&a, &b, "", &mut diff, 5);
            if !diff.is_empty() {
                failures.push(format!("{path}\n    {}", diff.join("\n    ")));
            }
        }
        // The events search page by page (keyset cursor) through a busy day.
        let mut path = Some(
            "/api/v1/events/message?from=2026-09-15T00:00:00Z&to=2026-09-16T00:00:00Z&per_page=300"
                .to_string(),
        );
        let mut pages = 0;
        while let (Some(p), true) = (path.take(), pages < 30) {
            let ((_, a), (_, b)) = (get(addrs[0], &p, "").await, get(addrs[1], &p, "").await);
            let mut diff = Vec::new();
            differences(&a, &b, "", &mut diff, 5);
            if !diff.is_empty() {
                failures.push(format!("{p}\n    {}", diff.join("\n    ")));
            }
            path = a["links"]["next"].as_str().map(str::to_string);
            pages += 1;
            asked += 1;
        }
        assert!(pages > 1, "the day spans several pages");
        // Batch records: same outcomes in the same order (ids and times are each store's).
        let path =
            "/api/v1/events/ingest?from=2020-01-01T00:00Z&to=2099-01-01T00:00Z&per_page=10000";
        let strip = |v: &Value| -> Vec<Value> {
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    for k in ["batch_id", "event_id", "timestamp", "expiration_timestamp"] {
                        r.as_object_mut().unwrap().remove(k);
                    }
                    r
                })
                .collect()
        };
        let (a, b) = (
            get(addrs[0], path, "").await.1,
            get(addrs[1], path, "").await.1,
        );
        assert_eq!(a["total_count"], b["total_count"]);
        assert_eq!(strip(&a), strip(&b), "batch records");
        assert!(
            failures.is_empty(),
            "{} of {asked} answers differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
        eprintln!("{asked} answers identical on both backends");
    });
}
