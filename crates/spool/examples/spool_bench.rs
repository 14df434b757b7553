//! Micro benchmark of durable commits: N messages of S bytes from C concurrent tasks.
//!
//!     cargo run --release -p petrel-spool --example spool_bench -- [N] [C] [S] [DIR]
//!
//! Defaults: 20000 messages, 64 tasks, 5000 bytes, a temporary directory under /var/tmp
//! (a real disk; /tmp may be tmpfs, whose fsync is free). Prints throughput, commit latency
//! and records per fsync, which shows how many messages each group commit served.
//! `SPOOL_BENCH_PREALLOCATE=0` turns segment preallocation off (append mode) to compare.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_spool::{Envelope, Recipient, Spool, SpoolOptions};

fn arg<T: std::str::FromStr>(n: usize, default: T) -> T {
    std::env::args()
        .nth(n)
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("bad argument {n}: {s}"))
        })
        .unwrap_or(default)
}

fn envelope(i: u64) -> Envelope {
    Envelope {
        mail_from: "bounces@sender.example".into(),
        recipients: vec![Recipient::new(format!("user{i}@dest{}.example", i % 50))],
        vmta: Envelope::DEFAULT_VMTA.into(),
        job_id: Some("bench".into()),
        env_id: None,
        ret: None,
        smtputf8: false,
        body_8bit: false,
        auth_user: None,
        client_ip: Some([127, 0, 0, 1].into()),
        client_helo: None,
        received_at_unix_ms: 0,
        facts: Default::default(),
    }
}

fn main() {
    let total: u64 = arg(1, 20_000);
    let concurrency: u64 = arg(2, 64);
    let size: usize = arg(3, 5000);
    let tmp;
    let dir: PathBuf = match std::env::args().nth(4) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("spool-bench")
                .tempdir_in("/var/tmp")
                .expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let preallocate = std::env::var("SPOOL_BENCH_PREALLOCATE").as_deref() != Ok("0");
        let opts = SpoolOptions {
            preallocate,
            ..SpoolOptions::default()
        };
        let (spool, report) = Spool::open(&dir, opts).expect("open");
        eprintln!("{report}");
        let body = Arc::new(vec![b'x'; size]);
        let before = spool.stats();
        let started = Instant::now();
        let per_task = total / concurrency;
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let spool = spool.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_task as usize);
                    for k in 0..per_task {
                        let t0 = Instant::now();
                        spool
                            .commit(envelope(t * per_task + k), body.to_vec())
                            .await
                            .expect("commit");
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat: Vec<Duration> = Vec::new();
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed();
        let after = spool.stats();
        let n = lat.len() as f64;
        lat.sort();
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
        let fsyncs = after.fsyncs - before.fsyncs;
        let records = after.records_written - before.records_written;
        println!(
            "spool_bench: {} msgs x {} B, {} tasks, {}, dir {}",
            lat.len(),
            size,
            concurrency,
            if preallocate { "preallocated" } else { "appended" },
            dir.display()
        );
        println!(
            "  {:.0} msgs/s ({:.1} MB/s), {:.2} s",
            n / elapsed.as_secs_f64(),
            n * size as f64 / elapsed.as_secs_f64() / 1e6,
            elapsed.as_secs_f64()
        );
        println!(
            "  commit latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            lat.last().unwrap().as_secs_f64() * 1e3
        );
        println!(
            "  {records} records, {fsyncs} fsyncs: {:.1} records/fsync; {} segments, {} bytes on disk",
            records as f64 / fsyncs.max(1) as f64,
            after.segments,
            after.disk_bytes
        );
        spool.shutdown();
    });
}
