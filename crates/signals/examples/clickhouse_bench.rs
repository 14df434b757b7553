//! The scale-out benchmark (issue 16): the same generated events (`tests/support/generator.rs`:
//! every type and facet, late and duplicated events) ingested through the HTTP API by several
//! concurrent uploaders into SQLite and into ClickHouse, side by side; then the disk bytes per
//! million events and the latency (p50 / p95 / max) of Metrics and Signals queries over the
//! whole 90 days.
//!
//! ```text
//! cargo run --release -p petrel-signals --example clickhouse_bench -- \
//!     [--events N] [--per-batch N] [--uploaders N] [--store sqlite|clickhouse|both] \
//!     [--clickhouse-url URL] [--database NAME] [--queries-only] [--dir DIR] [--rounds N]
//! ```
//!
//! Without `--clickhouse-url` it starts Debian's clickhouse-server with its data under
//! `--dir` (default `target/bench-data`), and removes it afterwards; `bench/signals-scale.sh`
//! runs the sizes of docs/BENCHMARKS.md.
//!
//! To work on the queries without ingesting again: run once against a server of your own
//! with `--clickhouse-url URL --database NAME` (the database is kept), then again with
//! `--queries-only` added (same `--events`, which only sets the generator's plan: nothing
//! is generated or ingested). With a server of its own or `--clickhouse-url`, each query
//! kind's median time is printed with what the server read for it (marks, compressed and
//! uncompressed bytes; from `system.events`, so only right when nothing else uses that
//! server).

#[path = "../tests/support/generator.rs"]
#[allow(dead_code)]
mod generator;
#[path = "../tests/support/http.rs"]
mod http;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use petrel_signals::{
    router, AnalyticsStore, ClickHouseSettings, ClickHouseStore, Permission, ServiceOptions,
    SqliteStore,
};
use petrel_test_clickhouse::ClickHouseServer;

const KEY: &str = "be0c0000000000000000000000000000000000be";
/// Monday 2026-08-03 00:00 UTC.
const BASE: i64 = 1_785_715_200;

struct Args {
    events: u64,
    per_batch: usize,
    uploaders: usize,
    stores: Vec<String>,
    clickhouse_url: Option<String>,
    dir: PathBuf,
    rounds: usize,
    /// ClickHouse database (default `bench_<pid>`).
    database: Option<String>,
    /// Skip generating and ingesting: query an already loaded `--database`.
    queries_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        events: 1_000_000,
        per_batch: 5_000,
        uploaders: 4,
        stores: vec!["sqlite".into(), "clickhouse".into()],
        clickhouse_url: None,
        dir: PathBuf::from("target/bench-data"),
        rounds: 5,
        database: None,
        queries_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--queries-only" {
            a.queries_only = true;
            continue;
        }
        let v = it.next().unwrap_or_default();
        match flag.as_str() {
            "--events" => a.events = v.parse().expect("--events N"),
            "--per-batch" => a.per_batch = v.parse().expect("--per-batch N"),
            "--uploaders" => a.uploaders = v.parse().expect("--uploaders N"),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            "--store" if v == "both" => {}
            "--store" => a.stores = vec![v],
            "--clickhouse-url" => a.clickhouse_url = Some(v),
            "--dir" => a.dir = PathBuf::from(v),
            "--database" => a.database = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, usize) {
    let (status, body) = http::request(addr, KEY, method, path, http::GZIP_NDJSON, body).await;
    (status, body.len())
}

fn dir_size(p: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    };
    rd.flatten()
        .map(|e| {
            let m = e.metadata();
            if m.as_ref().is_ok_and(|m| m.is_dir()) {
                dir_size(&e.path())
            } else {
                m.map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

/// The queries timed: Metrics over the whole 90 days (summary, group-bys, filtered,
/// time series, reasons) and the Signals reports over 90 days.
fn queries() -> Vec<String> {
    let w = "from=2026-08-03T00:00&to=2026-11-01T00:00";
    let m = "metrics=count_targeted,count_delivered,count_bounce,count_hard_bounce,count_unique_confirmed_opened,count_clicked,count_accepted";
    let d = "/api/v1/metrics/deliverability";
    let mut q = vec![
        format!("{d}?{w}&{m}"),
        format!("{d}/campaign?{w}&{m}"),
        format!("{d}/ip-pool?{w}&{m}"),
        format!("{d}/sending-ip?{w}&{m}"),
        format!("{d}/subaccount?{w}&{m}"),
        format!("{d}/domain?{w}&{m}"),
        format!("{d}/mailbox-provider?{w}&{m}"),
        format!("{d}/domain?{w}&{m}&campaigns=campaign-20"),
        format!("{d}/campaign?{w}&{m}&domains=gmail.com"),
        format!("{d}/time-series?{w}&precision=day&{m}"),
        format!("{d}/bounce-reason?{w}&metrics=count_bounce"),
        format!("{d}/link-name?{w}&metrics=count_clicked"),
    ];
    for r in [
        "health-score",
        "spam-hits",
        "cohort-engagement",
        "eng-cohort",
    ] {
        q.push(format!("/api/v1/signals/{r}?from=2026-08-03&to=2026-10-31"));
        q.push(format!(
            "/api/v1/signals/{r}/campaign_id?from=2026-08-03&to=2026-10-31&limit=100"
        ));
    }
    q
}

struct Store {
    name: String,
    store: Arc<dyn AnalyticsStore>,
    /// Bytes of the store on disk.
    size: Box<dyn Fn() -> u64>,
    /// The ClickHouse HTTP interface (to read its counters), for ClickHouse.
    url: Option<String>,
    _server: Option<ClickHouseServer>,
    _dir: tempfile::TempDir,
}

fn open(name: &str, a: &Args) -> Store {
    std::fs::create_dir_all(&a.dir).expect("bench dir");
    let dir = tempfile::tempdir_in(&a.dir).expect("tempdir");
    if name == "sqlite" {
        let db = dir.path().join("bench.db");
        let store = Arc::new(SqliteStore::open(&db).expect("sqlite"));
        let base = dir.path().to_path_buf();
        return Store {
            name: name.into(),
            store,
            size: Box::new(move || dir_size(&base)),
            url: None,
            _server: None,
            _dir: dir,
        };
    }
    let server = a
        .clickhouse_url
        .is_none()
        .then(|| ClickHouseServer::start_in(Some(dir.path())));
    let url = a
        .clickhouse_url
        .clone()
        .unwrap_or_else(|| server.as_ref().expect("server").url());
    let db = a
        .database
        .clone()
        .unwrap_or_else(|| format!("bench_{}", std::process::id()));
    let settings = ClickHouseSettings {
        url: url.clone(),
        database: db.clone(),
        ..ClickHouseSettings::default()
    };
    let store = Arc::new(ClickHouseStore::connect(&settings).expect("clickhouse"));
    let server_url = url.clone();
    let size = move || {
        let sql = format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active"
        );
        clickhouse_text(&url, &sql)
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    Store {
        name: name.into(),
        store,
        size: Box::new(size),
        url: Some(server_url),
        _server: server,
        _dir: dir,
    }
}

fn clickhouse_text(url: &str, sql: &str) -> Option<String> {
    ureq::post(format!("{url}/"))
        .send(sql.as_bytes())
        .ok()
        .and_then(|r| r.into_body().read_to_string().ok())
}

/// The server's totals of marks (granules of rows), compressed and uncompressed bytes
/// read by queries so far (18.16 counts no rows in `system.events`; its `query_log` has
/// them per statement when `log_queries` is on).
fn read_counters(url: &str) -> [u64; 3] {
    let text = clickhouse_text(
        url,
        "SELECT event, value FROM system.events WHERE event IN \
         ('SelectedMarks', 'ReadCompressedBytes', 'CompressedReadBufferBytes')",
    )
    .unwrap_or_default();
    let mut out = [0; 3];
    for line in text.lines() {
        let mut f = line.split('\t');
        let (Some(name), Some(v)) = (f.next(), f.next().and_then(|v| v.parse().ok())) else {
            continue;
        };
        match name {
            "SelectedMarks" => out[0] = v,
            "ReadCompressedBytes" => out[1] = v,
            _ => out[2] = v,
        }
    }
    out
}

/// CPU seconds (user, system) a process has used so far, from `/proc` (0 elsewhere).
fn cpu_secs(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// CPU used so far by this process (uploaders and service) and the ClickHouse server the
/// benchmark started: on a shared machine the CPU per event says more than the wall time
/// (and user time more than system time, which other processes' file churn inflates).
fn cpu_now(s: &Store) -> [(f64, f64); 2] {
    let server = s
        ._server
        .as_ref()
        .and_then(|c| c.pid())
        .map_or((0.0, 0.0), cpu_secs);
    [cpu_secs(std::process::id()), server]
}

/// Serves `s` on a free loopback port.
async fn serve(s: &Store) -> SocketAddr {
    s.store
        .ensure_api_key(KEY, "bench", &[Permission::Ingest, Permission::Read])
        .expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(s.store.clone(), ServiceOptions::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn ingest(s: &Store, addr: SocketAddr, batches: Arc<Vec<Vec<u8>>>, events: u64, a: &Args) {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_now(s);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.uploaders {
        let (batches, next) = (batches.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = batches.get(n) else { break };
                let (status, _) = request(addr, "POST", "/api/v1/ingest/events", body).await;
                assert_eq!(status, 200, "batch {n}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("uploader");
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = cpu_now(s);
    let bytes = (s.size)();
    println!(
        "{}: ingest {events} events in {secs:.1} s = {:.0} events/s ({} uploaders, {} per batch); \
         disk {:.1} MB = {:.1} MB per million events",
        s.name,
        events as f64 / secs,
        a.uploaders,
        a.per_batch,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / (events as f64 / 1e6)
    );
    let per_event = |i: usize| {
        let user = cpu_after[i].0 - cpu_before[i].0;
        let sys = cpu_after[i].1 - cpu_before[i].1;
        let us = |cpu: f64| cpu * 1e6 / events as f64;
        format!(
            "{:.1} µs/event (user {:.1} + system {:.1})",
            us(user + sys),
            us(user),
            us(sys)
        )
    };
    println!(
        "{}: CPU during ingest: service and uploaders {}, ClickHouse server {}",
        s.name,
        per_event(0),
        per_event(1)
    );
}

async fn query(s: &Store, addr: SocketAddr, a: &Args) {
    let mut times = Vec::new();
    // Per query kind: times and what the server read (marks, compressed and uncompressed
    // bytes; the last round's).
    let mut kinds: Vec<(String, Vec<f64>, [u64; 3])> = queries()
        .into_iter()
        .map(|q| (q, Vec::new(), [0; 3]))
        .collect();
    for round in 0..a.rounds {
        for (q, kind_times, read) in kinds.iter_mut() {
            let before = s.url.as_deref().map(read_counters);
            let t = Instant::now();
            let (status, _) = request(addr, "GET", q, b"").await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(status, 200, "{q}");
            if let (Some(b), Some(url)) = (before, s.url.as_deref()) {
                let after = read_counters(url);
                for i in 0..3 {
                    read[i] = after[i].saturating_sub(b[i]);
                }
            }
            if round > 0 || a.rounds == 1 {
                times.push((ms, q.clone()));
                kind_times.push(ms);
            }
        }
    }
    for (q, mut t, read) in kinds {
        t.sort_by(f64::total_cmp);
        let median = t.get(t.len() / 2).copied().unwrap_or(0.0);
        let read = if s.url.is_some() {
            format!(
                "; read {} marks, {:.1} MB compressed, {:.1} MB uncompressed",
                read[0],
                read[1] as f64 / 1e6,
                read[2] as f64 / 1e6
            )
        } else {
            String::new()
        };
        println!("{}:   {median:7.1} ms  {q}{read}", s.name);
    }
    times.sort_by(|x, y| x.0.total_cmp(&y.0));
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].0;
    let worst = times.last().expect("times");
    println!(
        "{}: {} Metrics/Signals queries over 90 days: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({})",
        s.name,
        times.len(),
        pct(50),
        pct(95),
        worst.0,
        worst.1
    );
}

#[tokio::main]
async fn main() {
    // RUST_LOG=petrel_signals=debug shows each ClickHouse group commit and where its time
    // went (lease, reads, counting, insert).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let a = args();
    if a.queries_only {
        for name in &a.stores {
            let s = open(name, &a);
            let addr = serve(&s).await;
            query(&s, addr, &a).await;
        }
        return;
    }
    let plan = generator::Plan {
        events: a.events,
        per_batch: a.per_batch,
        start: BASE,
        days: 90,
        recipients: (a.events / 16).max(1_000),
        messy: true,
        seed: 0xbe4c,
    };
    let t = Instant::now();
    let mut gen = generator::batches(plan);
    let batches: Vec<Vec<u8>> = gen.by_ref().collect();
    let events = gen.emitted();
    println!(
        "{events} events in {} batches generated in {:.1} s",
        batches.len(),
        t.elapsed().as_secs_f64()
    );
    let batches = Arc::new(batches);
    for name in &a.stores {
        let s = open(name, &a);
        let addr = serve(&s).await;
        ingest(&s, addr, batches.clone(), events, &a).await;
        query(&s, addr, &a).await;
    }
}
