//! The analytics benchmark (issue 13): a mid-size sender's 90 days of events with realistic
//! facet cardinalities (200 campaigns, 30 templates, 20 IP pools, 50 sending IPs, 5
//! subaccounts, 1,000 recipient domains with a long tail, events/5 recipients: 2 million at
//! 10 million events), ingested with rollups through the HTTP API; then Metrics API queries
//! over the 90 days (p95), the health score by campaign over the 90 days, and the database
//! size per million events.
//!
//! The data set is generated once, deterministically (a fixed seed and a fixed 90-day window
//! ending 2026-12-01 00:00 UTC), into `DIR/batches.bin` (gzip bodies, length-prefixed), so
//! runs and code versions ingest exactly the same bytes:
//!
//! ```text
//! analytics_bench generate EVENTS DIR [PER_BATCH]   # DIR/batches.bin, DIR/meta
//! analytics_bench ingest DIR DB [MAX_BATCHES]       # fresh DB, 2 connections (env UPLOADERS), events/s
//! analytics_bench query DIR DB                      # Metrics p95, health score, DB size
//! ```
//!
//! `bench/signals-analytics.sh` runs the three under `target/analytics-bench/`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use petrel_signals::{
    create_api_key, router, AnalyticsStore, Permission, ServiceOptions, SqliteStore,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DAY: u64 = 86_400;
/// The data set's 90 days end here (2026-12-01 00:00 UTC), whatever the clock says.
const END: u64 = 1_796_083_200;
const START: u64 = END - 90 * DAY;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

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
    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    /// Long-tailed pick in 0..n: value k has probability about 1 / ((k + 1) ln n).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

/// What happens to one message, decided before any text is written so that counting and
/// writing consume the random numbers identically.
struct Fate {
    slot: u64,
    domain: u64,
    rcpt: u64,
    /// (ingest type, grouping, seconds after injection, extra JSON fields)
    events: Vec<(&'static str, &'static str, u64, &'static str)>,
}

fn fate(rng: &mut Rng, recipients: u64) -> Fate {
    let slot = rng.below(2);
    let domain = rng.zipf(1000);
    let rcpt = rng.below(recipients);
    let mut ev = Vec::with_capacity(6);
    if rng.chance(5) {
        ev.push((
            "rejection",
            "message_event",
            0,
            ",\"bounce_class\":\"25\",\"reason\":\"550 5.7.1 recipient is suppressed\"",
        ));
        return Fate {
            slot,
            domain,
            rcpt,
            events: ev,
        };
    }
    ev.push(("reception", "message_event", 0, ""));
    let delivered = match rng.below(1000) {
        0..=19 => {
            ev.push((
                "inband",
                "message_event",
                2,
                ",\"bounce_class\":\"10\",\"reason\":\"550 5.1.1 unknown user\",\"num_retries\":\"0\"",
            ));
            false
        }
        20..=29 => {
            ev.push((
                "inband",
                "message_event",
                2,
                ",\"bounce_class\":\"51\",\"reason\":\"554 5.7.1 blocked by policy\",\"num_retries\":\"0\"",
            ));
            false
        }
        30..=59 => {
            ev.push((
                "tempfail",
                "message_event",
                2,
                ",\"bounce_class\":\"21\",\"num_retries\":\"0\",\"reason\":\"451 4.3.0 try again later\"",
            ));
            ev.push((
                "delivery",
                "message_event",
                900,
                ",\"num_retries\":\"1\",\"queue_time\":\"900000\",\"msg_size\":\"21401\"",
            ));
            true
        }
        _ => {
            ev.push((
                "delivery",
                "message_event",
                3,
                ",\"num_retries\":\"0\",\"queue_time\":\"3000\",\"msg_size\":\"21401\"",
            ));
            true
        }
    };
    if !delivered {
        return Fate {
            slot,
            domain,
            rcpt,
            events: ev,
        };
    }
    if rng.chance(3) {
        ev.push((
            "outofband",
            "message_event",
            1800,
            ",\"bounce_class\":\"10\",\"reason\":\"550 5.1.1 mailbox unavailable\"",
        ));
    }
    if rng.chance(250) {
        let machine = rng.chance(200);
        ev.push((
            "open",
            "track_event",
            3600,
            if machine {
                ",\"machine\":\"image-proxy\",\"user_agent\":\"Mozilla/5.0\""
            } else {
                ",\"user_agent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64)\""
            },
        ));
        if rng.chance(200) {
            ev.push((
                "click",
                "track_event",
                3700,
                ",\"target_link_name\":\"hero\",\"target_link_url\":\"https://shop.example/spring\"",
            ));
        }
        if rng.chance(10) {
            ev.push((
                "link",
                "unsubscribe_event",
                3800,
                ",\"target_link_url\":\"https://shop.example/unsubscribe\"",
            ));
        }
    }
    if rng.chance(1) {
        ev.push(("feedback", "message_event", 86_400, ",\"fbtype\":\"abuse\""));
    }
    Fate {
        slot,
        domain,
        rcpt,
        events: ev,
    }
}

/// Appends the NDJSON lines of message `i`, injected at `t`, to `out`.
fn write_message(f: &Fate, i: u64, t: u64, out: &mut String) {
    use std::fmt::Write as _;
    // About two campaigns run at a time, 200 over the 90 days; each uses one of 20 pools and
    // one of 30 templates, and a pool's 2–3 of the 50 sending IPs.
    let campaign = ((t - START) / (DAY * 90 / 200) + f.slot).min(199);
    let pool = campaign % 20;
    let ip = (pool * 5 / 2 + f.rcpt % 3) % 50;
    let sub = campaign % 5;
    let (domain, rcpt) = (f.domain, f.rcpt);
    for (n, (kind, grouping, dt, extra)) in f.events.iter().enumerate() {
        let id = i * 8 + n as u64;
        if *grouping == "message_event" {
            let _ = writeln!(
                out,
                "{{\"msys\":{{\"{grouping}\":{{\"type\":\"{kind}\",\"event_id\":\"{id}\",\"message_id\":\"{i:016x}\",\
\"timestamp\":\"{ts}\",\"injection_time\":\"{t}\",\"rcpt_to\":\"u{rcpt}@d{domain}.example\",\"routing_domain\":\"d{domain}.example\",\
\"campaign_id\":\"campaign-{campaign}\",\"template_id\":\"template-{tpl}\",\"subject\":\"Spring offers, week {week}\",\
\"msg_from\":\"bounces@mail.brand{sub}.example\",\"friendly_from\":\"news@brand{sub}.example\",\"binding_group\":\"pool-{pool}\",\
\"binding\":\"vmta-{ip}\",\"sending_ip\":\"10.0.{ip_hi}.{ip_lo}\",\"subaccount_id\":{sub},\"recv_method\":\"esmtp\",\
\"open_tracking\":true,\"click_tracking\":true{extra}}}}}}}",
                ts = t + dt,
                tpl = campaign % 30,
                week = campaign / 15,
                ip_hi = ip / 256,
                ip_lo = ip % 256,
            );
        } else {
            // Thin, as petrel's tracking host sends them: the service enriches them.
            let _ = writeln!(
                out,
                "{{\"msys\":{{\"{grouping}\":{{\"type\":\"{kind}\",\"event_id\":\"{id}\",\"message_id\":\"{i:016x}\",\
\"timestamp\":\"{ts}\",\"rcpt_to\":\"u{rcpt}@d{domain}.example\",\"ip_address\":\"198.51.100.7\"{extra}}}}}}}",
                ts = t + dt,
            );
        }
    }
}

fn generate(total: u64, dir: &Path, per_batch: u64) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let recipients = (total / 5).max(1000);
    // Pass 1: how many messages make `total` events (same random numbers as pass 2).
    let mut rng = Rng(SEED);
    let (mut messages, mut events) = (0u64, 0u64);
    while events < total {
        events += fate(&mut rng, recipients).events.len() as u64;
        messages += 1;
    }
    // Pass 2: write, messages evenly spread over the 90 days.
    let mut rng = Rng(SEED);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(dir.join("batches.bin.tmp")).expect("create"),
    );
    let (mut text, mut in_batch, mut batches) = (String::new(), 0u64, 0u64);
    let flush =
        |file: &mut std::io::BufWriter<std::fs::File>, text: &mut String, batches: &mut u64| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(text.as_bytes()).expect("gzip");
            let body = enc.finish().expect("gzip");
            file.write_all(&(body.len() as u32).to_le_bytes())
                .expect("write");
            file.write_all(&body).expect("write");
            text.clear();
            *batches += 1;
        };
    for i in 0..messages {
        let f = fate(&mut rng, recipients);
        let t = START + i * (90 * DAY) / messages;
        write_message(&f, i, t, &mut text);
        in_batch += f.events.len() as u64;
        if in_batch >= per_batch {
            flush(&mut file, &mut text, &mut batches);
            in_batch = 0;
        }
    }
    if !text.is_empty() {
        flush(&mut file, &mut text, &mut batches);
    }
    file.flush().expect("write");
    drop(file);
    std::fs::rename(dir.join("batches.bin.tmp"), dir.join("batches.bin")).expect("rename");
    std::fs::write(
        dir.join("meta"),
        format!(
            "events {events}\nmessages {messages}\nrecipients {recipients}\nbatches {batches}\n"
        ),
    )
    .expect("meta");
    println!(
        "generated {events} events ({messages} messages, {recipients} recipients) in {batches} batches"
    );
}

fn meta(dir: &Path, key: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join("meta")).expect("meta (run generate first)");
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("meta has no {key}"))
}

fn read_batches(dir: &Path) -> Vec<Vec<u8>> {
    let mut raw = Vec::new();
    std::fs::File::open(dir.join("batches.bin"))
        .expect("batches.bin (run generate first)")
        .read_to_end(&mut raw)
        .expect("read");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= raw.len() {
        let n = u32::from_le_bytes(raw[at..at + 4].try_into().expect("len")) as usize;
        out.push(raw[at + 4..at + 4 + n].to_vec());
        at += 4 + n;
    }
    out
}

async fn request(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
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
    (status, resp)
}

/// Opens the store and serves it on a loopback port; returns the address and a key.
async fn serve(db: &Path) -> (SocketAddr, String) {
    let store: Arc<dyn AnalyticsStore> = Arc::new(SqliteStore::open(db).expect("open"));
    let key =
        create_api_key(&store, "bench", &[Permission::Ingest, Permission::Read]).expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(store, ServiceOptions::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, key)
}

/// Ingests the data set (or only its first `max_batches` batches: the same density of
/// events over a shorter time, for quick experiments) into a fresh database.
async fn ingest(dir: &Path, db: &Path, max_batches: Option<usize>) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut batches = read_batches(dir);
    let mut events = meta(dir, "events");
    if let Some(n) = max_batches.filter(|n| *n < batches.len()) {
        events = events * n as u64 / batches.len() as u64;
        batches.truncate(n);
    }
    let batches = Arc::new(batches);
    let (addr, key) = serve(db).await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    // Concurrent uploaders (connections): 2 unless UPLOADERS says otherwise.
    let uploaders: usize = std::env::var("UPLOADERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for _ in 0..uploaders {
        let (batches, next, key) = (batches.clone(), next.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = batches.get(n) else { break };
                let (status, _) = request(addr, &key, "POST", "/api/v1/ingest/events", body).await;
                assert_eq!(status, 200, "batch {n}");
                if n % 200 == 199 {
                    eprintln!(
                        "  {} of {} batches, {:.0} s",
                        n + 1,
                        batches.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    // Bytes handed to write(2) by this process (WAL frames, checkpoints): the I/O cost.
    let written = std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| {
                    l.strip_prefix("wchar:")
                        .map(|v| v.trim().parse::<u64>().ok())
                })
                .flatten()
        })
        .unwrap_or(0);
    println!(
        "RESULT ingest events={events} seconds={secs:.1} events_per_s={:.0} written_bytes_per_event={} cpu_us_per_event={:.1}",
        events as f64 / secs,
        written / events.max(1),
        cpu * 1e6 / events.max(1) as f64
    );
}

/// User plus system CPU time of this process so far (service and client threads), from
/// `/proc/self/stat`: what an event costs, which other processes' load moves far less than
/// the wall-clock rate (though still by up to a third on a busy machine).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3, the state.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn date(t: u64) -> String {
    jiff::Timestamp::from_second(t as i64)
        .expect("time")
        .strftime("%Y-%m-%d")
        .to_string()
}

/// The Metrics API queries timed, all over the 90 days (so at `day` precision).
fn metrics_queries() -> Vec<String> {
    let range = format!("from={}T00:00&to={}T00:00", date(START), date(END));
    let m = "metrics=count_targeted,count_delivered,count_bounce,count_hard_bounce,\
count_unique_confirmed_opened,count_clicked,count_accepted";
    let qf = "%7B%22groupings%22%3A%5B%7B%22AND%22%3A%7B%22domains%22%3A%7B%22notEq%22%3A%5B%22d0.example%22%5D%7D%7D%7D%5D%7D";
    let d = "/api/v1/metrics/deliverability";
    [
        format!("{d}?{range}&{m}"),
        format!("{d}/campaign?{range}&{m}"),
        format!("{d}/template?{range}&{m}"),
        format!("{d}/ip-pool?{range}&{m}"),
        format!("{d}/sending-ip?{range}&{m}"),
        format!("{d}/sending-domain?{range}&{m}"),
        format!("{d}/subaccount?{range}&{m}"),
        format!("{d}/domain?{range}&{m}"),
        format!("{d}/mailbox-provider?{range}&{m}"),
        format!("{d}/mailbox-provider-region?{range}&{m}"),
        format!("{d}/domain?{range}&{m}&campaigns=campaign-100"),
        format!("{d}/campaign?{range}&{m}&domains=d0.example"),
        format!("{d}/domain?{range}&{m}&subaccounts=2"),
        format!("{d}/campaign?{range}&{m}&query_filters={qf}"),
        format!("{d}/time-series?{range}&precision=day&{m}"),
        format!("{d}/time-series?{range}&precision=week&{m}&ip_pools=pool-3"),
        format!("{d}/bounce-reason?{range}&metrics=count_bounce"),
        format!("{d}/bounce-reason/domain?{range}&metrics=count_bounce"),
        format!("{d}/bounce-classification?{range}&metrics=count_bounce"),
        format!("{d}/delay-reason?{range}"),
        format!("{d}/link-name?{range}&metrics=count_clicked"),
        format!("{d}/attempt?{range}"),
        format!("/api/v1/metrics/campaigns?{range}"),
        format!("/api/v1/metrics/domains?{range}"),
    ]
    .into()
}

fn db_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", db.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

async fn query(dir: &Path, db: &Path) {
    let events = meta(dir, "events");
    let (addr, key) = serve(db).await;
    let queries = metrics_queries();
    let mut times: Vec<(f64, usize)> = Vec::new();
    let mut per_query: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    for round in 0..6 {
        for (i, q) in queries.iter().enumerate() {
            let t = Instant::now();
            let (status, body) = request(addr, &key, "GET", q, b"").await;
            assert_eq!(status, 200, "{q}: {}", String::from_utf8_lossy(&body));
            // Round 0 warms the caches (the first query after opening reads from disk).
            if round > 0 {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                times.push((ms, i));
                per_query[i].push(ms);
            }
        }
    }
    for (q, ts) in queries.iter().zip(&mut per_query) {
        ts.sort_by(f64::total_cmp);
        let path = q.split('?').next().unwrap_or(q);
        let filter = q
            .split('&')
            .filter(|p| {
                !p.starts_with("from=")
                    && !p.starts_with("to=")
                    && !p.starts_with("metrics=")
                    && !p.contains('?')
            })
            .collect::<Vec<_>>()
            .join("&");
        println!("  {:>7.1} ms median  {path} {filter}", ts[ts.len() / 2]);
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)].0;
    let worst = times.last().expect("times");
    println!(
        "RESULT metrics queries={} p50_ms={:.1} p95_ms={p95:.1} max_ms={:.1} slowest={}",
        times.len(),
        times[times.len() / 2].0,
        worst.0,
        queries[worst.1]
    );

    let hs = format!(
        "/api/v1/signals/health-score/campaign_id?from={}&to={}&limit=200",
        date(START),
        date(END - DAY)
    );
    let mut hs_times = Vec::new();
    for _ in 0..6 {
        let t = Instant::now();
        let (status, body) = request(addr, &key, "GET", &hs, b"").await;
        assert_eq!(status, 200);
        hs_times.push((t.elapsed().as_secs_f64() * 1000.0, body.len()));
    }
    hs_times.remove(0);
    hs_times.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "RESULT health_score_by_campaign median_ms={:.1} max_ms={:.1} bytes={}",
        hs_times[2].0, hs_times[4].0, hs_times[2].1
    );
    let bytes = db_bytes(db);
    println!(
        "RESULT database bytes={bytes} mb_per_million_events={:.1} (every raw event of the 90 days kept)",
        bytes as f64 / 1e6 / (events as f64 / 1e6)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or("") };
    match arg(0) {
        "generate" => generate(
            arg(1).parse().expect("EVENTS"),
            &PathBuf::from(arg(2)),
            arg(3).parse().unwrap_or(5000),
        ),
        "ingest" => {
            ingest(
                &PathBuf::from(arg(1)),
                &PathBuf::from(arg(2)),
                arg(3).parse().ok(),
            )
            .await
        }
        "query" => query(&PathBuf::from(arg(1)), &PathBuf::from(arg(2))).await,
        _ => {
            eprintln!(
                "usage: analytics_bench generate EVENTS DIR [PER_BATCH] | ingest DIR DB [MAX_BATCHES] | query DIR DB"
            );
            std::process::exit(2);
        }
    }
}
