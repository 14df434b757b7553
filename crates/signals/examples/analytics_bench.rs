//! The analytics benchmark (issue 13): generates a mid-size sender's 90 days of events with
//! realistic facet cardinalities (200 campaigns, 20 IP pools, 50 sending IPs, 1,000
//! recipient domains with a long tail, 2 million recipients at 10 million events), ingests
//! them with rollups through the HTTP API, then times Metrics API queries over 90 days (p95),
//! the health score by campaign over 90 days, and reports the database size per million
//! events.
//!
//! `cargo run --release -p petrel-signals --example analytics_bench -- [events] [per_batch]`
//! (`bench/signals-analytics.sh` wraps it).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use petrel_signals::{
    create_api_key, router, AnalyticsStore, Permission, ServiceOptions, SqliteStore,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DAY: u64 = 86_400;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Long-tailed pick in 0..n: a few values take most of the traffic.
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

/// NDJSON lines of one message: injection, an outcome and some engagement (~4 events).
fn message(rng: &mut Rng, i: u64, t: u64, start: u64, recipients: u64, out: &mut String) -> u64 {
    // About two campaigns run at a time, 200 over the 90 days; each uses one of 20 pools,
    // and a pool's 2–3 of the 50 sending IPs.
    let campaign = ((t - start) / (DAY * 90 / 200) + rng.below(2)).min(199);
    let pool = campaign % 20;
    let ip = (pool * 5 / 2 + rng.below(3)) % 50;
    let domain = rng.zipf(1000);
    let rcpt = rng.below(recipients);
    let sub = campaign % 5;
    let mut n = 0;
    let mut line = |kind: &str, grouping: &str, dt: u64, extra: &str| {
        out.push_str(&format!(
            "{{\"msys\":{{\"{grouping}\":{{\"type\":\"{kind}\",\"event_id\":\"{}\",\"message_id\":\"m{i:x}\",\"timestamp\":\"{}\",\"rcpt_to\":\"u{rcpt}@d{domain}.example\",\"campaign_id\":\"campaign-{campaign}\",\"binding_group\":\"pool-{pool}\",\"sending_ip\":\"10.0.{}.{}\",\"friendly_from\":\"news@brand{}.example\",\"subaccount_id\":{sub},\"open_tracking\":true{extra}}}}}}}\n",
            i * 8 + n,
            t + dt,
            ip / 256,
            ip % 256,
            sub
        ));
        n += 1;
    };
    line("reception", "message_event", 0, "");
    match rng.below(100) {
        0..=1 => line(
            "inband",
            "message_event",
            2,
            ",\"bounce_class\":\"10\",\"reason\":\"550 5.1.1 unknown user\"",
        ),
        2 => line(
            "inband",
            "message_event",
            2,
            ",\"bounce_class\":\"51\",\"reason\":\"554 5.7.1 blocked\"",
        ),
        3..=5 => {
            line(
                "tempfail",
                "message_event",
                2,
                ",\"bounce_class\":\"21\",\"num_retries\":\"0\",\"reason\":\"451 4.3.0 later\"",
            );
            line(
                "delivery",
                "message_event",
                900,
                ",\"num_retries\":\"1\",\"queue_time\":\"900000\",\"msg_size\":\"20000\"",
            );
        }
        _ => {
            line(
                "delivery",
                "message_event",
                3,
                ",\"num_retries\":\"0\",\"queue_time\":\"3000\",\"msg_size\":\"20000\"",
            );
            if rng.below(100) < 25 {
                line("open", "track_event", 3600, "");
                if rng.below(100) < 20 {
                    line(
                        "click",
                        "track_event",
                        3700,
                        ",\"target_link_name\":\"hero\"",
                    );
                }
            }
        }
    }
    n
}

async fn request(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, usize) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap_or(0);
    (status, resp.len())
}

fn date(t: u64) -> (String, String) {
    let days = t / DAY;
    // Civil date from days since the epoch.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{y:04}-{m:02}-{d:02}T00:00"),
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(1_000_000);
    let per_batch = args.get(1).copied().unwrap_or(5_000);
    let recipients = (total / 5).max(1000);

    let dir = tempfile::tempdir().expect("tempdir");
    // PETREL_BENCH_DB keeps the database for bench/signals-pages.sh (the pages' timings).
    let db = std::env::var_os("PETREL_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bench.db"));
    let store: Arc<dyn AnalyticsStore> = Arc::new(SqliteStore::open(&db).expect("open"));
    let key =
        create_api_key(&store, "bench", &[Permission::Ingest, Permission::Read]).expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(store.clone(), ServiceOptions::default());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 90 days ending now, messages in time order; bodies prepared before timing.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let start_t = now - 90 * DAY;
    let messages = total / 4 + 1;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut batches = Vec::new();
    let (mut text, mut in_batch, mut events) = (String::new(), 0, 0u64);
    for i in 0..messages {
        let t = start_t + i * (90 * DAY) / messages;
        let n = message(&mut rng, i, t, start_t, recipients, &mut text);
        in_batch += n;
        events += n;
        if in_batch >= per_batch || i + 1 == messages {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(text.as_bytes()).expect("gzip");
            batches.push(enc.finish().expect("gzip"));
            text.clear();
            in_batch = 0;
        }
    }
    println!(
        "{events} events ({messages} messages, {recipients} recipients) in {} batches",
        batches.len()
    );

    let batches = Arc::new(batches);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (batches, next, key) = (batches.clone(), next.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = batches.get(n) else { break };
                let (status, _) = request(addr, &key, "POST", "/api/v1/ingest/events", body).await;
                assert_eq!(status, 200, "batch {n}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest with rollups: {events} events in {secs:.1} s = {:.0} events/s",
        events as f64 / secs
    );

    let (_, from) = date(start_t);
    let m = "metrics=count_targeted,count_delivered,count_bounce,count_hard_bounce,count_unique_confirmed_opened,count_clicked,count_accepted";
    let queries = [
        format!("/api/v1/metrics/deliverability?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/campaign?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/ip-pool?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/sending-ip?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/subaccount?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/domain?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/mailbox-provider?from={from}&{m}"),
        format!("/api/v1/metrics/deliverability/domain?from={from}&{m}&campaigns=campaign-100"),
        format!("/api/v1/metrics/deliverability/campaign?from={from}&{m}&domains=d0.example"),
        format!("/api/v1/metrics/deliverability/time-series?from={from}&precision=day&{m}"),
        format!("/api/v1/metrics/deliverability/bounce-reason?from={from}&metrics=count_bounce"),
    ];
    let mut times = Vec::new();
    for round in 0..5 {
        for q in &queries {
            let t = Instant::now();
            let (status, _) = request(addr, &key, "GET", q, b"").await;
            assert_eq!(status, 200, "{q}");
            if round > 0 {
                times.push((t.elapsed().as_secs_f64() * 1000.0, q.clone()));
            }
        }
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)].0;
    let worst = times.last().expect("times");
    println!(
        "Metrics API over 90 days ({} queries): p50 {:.1} ms, p95 {p95:.1} ms, max {:.1} ms ({})",
        times.len(),
        times[times.len() / 2].0,
        worst.0,
        worst.1
    );

    let (to_day, _) = date(now);
    let (from_day, _) = date(now - 89 * DAY);
    let hs =
        format!("/api/v1/signals/health-score/campaign_id?from={from_day}&to={to_day}&limit=200");
    let mut hs_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (status, len) = request(addr, &key, "GET", &hs, b"").await;
        assert_eq!(status, 200);
        hs_times.push((t.elapsed().as_secs_f64() * 1000.0, len));
    }
    hs_times.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "health-score by campaign over 90 days: median {:.1} ms, max {:.1} ms ({} bytes)",
        hs_times[2].0, hs_times[4].0, hs_times[2].1
    );

    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = db.with_extension("db-wal");
    let bytes = size(&db) + size(&wal);
    println!(
        "database: {:.1} MB = {:.1} MB per million events (all 90 days of raw events kept; default event-retention keeps 10)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / (events as f64 / 1e6)
    );
}
