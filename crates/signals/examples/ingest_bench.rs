//! Micro benchmark: ingests N generated events through the HTTP API into a fresh SQLite file
//! and prints events per second.
//!
//! `cargo run --release -p petrel-signals --example ingest_bench -- [events] [per_batch] [connections]`

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use petrel_signals::{create_api_key, router, Permission, ServiceOptions, SignalsStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn event_line(i: u64) -> String {
    format!(
        "{{\"msys\":{{\"message_event\":{{\"type\":\"delivery\",\"event_id\":\"{}\",\"message_id\":\"0000{:016x}\",\"timestamp\":\"{}\",\"delv_method\":\"esmtp\",\"recv_method\":\"esmtp\",\"rcpt_to\":\"user{}@example{}.net\",\"routing_domain\":\"example{}.net\",\"msg_from\":\"bounces@mail.example.com\",\"friendly_from\":\"news@example.com\",\"subject\":\"Spring is here\",\"msg_size\":\"18234\",\"num_retries\":\"0\",\"queue_time\":\"2870\",\"binding\":\"vmta-a\",\"binding_group\":\"pool{}\",\"sending_ip\":\"192.0.2.{}\",\"ip_address\":\"198.51.100.25\",\"outbound_tls\":\"1\",\"campaign_id\":\"campaign-{}\",\"subaccount_id\":{}}}}}}}\n",
        4_000_000_000_000_000_000u64 + i,
        i,
        1_767_225_600 + i / 100,
        i,
        i % 50,
        i % 50,
        i % 4,
        i % 16,
        i % 20,
        i % 3
    )
}

async fn post(addr: SocketAddr, key: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/ingest/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: {key}\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    String::from_utf8_lossy(&resp[..12.min(resp.len())])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(200_000);
    let per_batch = args.get(1).copied().unwrap_or(5_000);
    let conns = args.get(2).copied().unwrap_or(2) as usize;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SignalsStore::open(&dir.path().join("bench.db")).expect("open"));
    let key = create_api_key(&store, "bench", &[Permission::Ingest]).expect("key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        async move { axum::serve(listener, router(store, ServiceOptions::default())).await },
    );

    // Prepare the gzip bodies before timing: the client's work is not the server's.
    let mut batches = Vec::new();
    let mut raw_bytes = 0usize;
    let mut i = 0;
    while i < total {
        let mut text = String::new();
        let end = (i + per_batch).min(total);
        for n in i..end {
            text.push_str(&event_line(n));
        }
        raw_bytes += text.len();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gzip");
        batches.push(enc.finish().expect("gzip"));
        i = end;
    }
    println!(
        "{total} events in {} batches of <= {per_batch} ({:.1} MB raw), {conns} connections",
        batches.len(),
        raw_bytes as f64 / 1e6
    );

    let batches = Arc::new(batches);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (batches, next, key) = (batches.clone(), next.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = batches.get(n) else { break };
                let status = post(addr, &key, body).await;
                assert_eq!(status, 200, "batch {n} answered {status}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "ingested {total} events in {secs:.2} s: {:.0} events/s",
        total as f64 / secs
    );
}
