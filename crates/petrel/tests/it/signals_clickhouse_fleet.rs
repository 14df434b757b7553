//! Many MTAs, many service instances: three petrel MTAs (sending from 127.0.0.1, .2 and .3)
//! feed two `petrel signals serve` instances that share one real ClickHouse server
//! (`store clickhouse`). On the way an MTA is killed while its uploads are failing and
//! restarted pointing at the other instance, a service instance is killed while batches
//! arrive and restarted, and batches already stored are sent again. The Metrics API must
//! then count exactly what the three MTAs' accounting files say, per MTA and in total, on
//! both instances, with every re-sent event dropped as a duplicate.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    acct_rows, event_files, free_port, metrics_from, petrel_bin, send_mail, signals_get, text,
    Petrel, Sink,
};
use petrel_test_clickhouse::{ClickHouseServer, PASSWORD, USER};
use serde_json::Value;

/// One `petrel signals serve` instance over the shared ClickHouse database.
struct Instance {
    port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn new(dir: &Path, name: &str, url: &str) -> Instance {
        let port = free_port();
        let config = dir.join(format!("{name}.conf"));
        std::fs::write(
            &config,
            format!(
                "<signals-service>\n  listener 127.0.0.1:{port}\n  store clickhouse\n  \
                 clickhouse-url {url}\n  clickhouse-database fleet\n  clickhouse-user {USER}\n  \
                 clickhouse-password {PASSWORD}\n</signals-service>\n"
            ),
        )
        .unwrap();
        let mut i = Instance {
            port,
            config,
            child: None,
        };
        i.start();
        i
    }

    fn start(&mut self) {
        self.child = Some(
            Command::new(petrel_bin())
                .args(["signals", "serve", "--config"])
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "signals serve did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL, as a crash would.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// MTA `n`: delivers to the sink from 127.0.0.n, accounts deliveries and bounces, uploads
/// its events to `port`.
fn mta_config(n: u8, sink: u16, key: &str, port: u16) -> String {
    format!(
        r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
  default-virtual-mta pool{n}
</source>
<virtual-mta mta{n}>
  smtp-source-host 127.0.0.{n} mta{n}.petrel.test
</virtual-mta>
<virtual-mta-pool pool{n}>
  virtual-mta mta{n}
</virtual-mta-pool>
<domain sink.example>
  smtp-hosts [127.0.0.1]:{sink}
  use-starttls no
</domain>
<acct-file {{DIR}}/acct.csv>
  records d,b
</acct-file>
<signals>
  api-key {key}
  upload-url http://127.0.0.1:{port}/api/v1/ingest/events
  event-dir {{DIR}}/events
  upload-interval 200ms
</signals>
"#
    )
}

/// Sends messages `ids` of three recipients each (one rejected by the sink: a bounce).
fn send(p: &Petrel, n: u8, ids: std::ops::Range<usize>) {
    for i in ids {
        send_mail(
            p.smtp_port,
            "news@brand.example",
            &[
                &format!("a{n}-{i}@sink.example"),
                &format!("b{n}-{i}@sink.example"),
                &format!("reject-{n}-{i}@sink.example"),
            ],
            "X-Job: fleet\r\n",
        );
    }
}

/// Waits until the MTA has accounted `rcpts` recipients and uploaded every event file.
fn drained(p: &Petrel, rcpts: usize) -> Vec<std::collections::HashMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = acct_rows(p.dir.path());
        if rows.len() >= rcpts && event_files(&p.dir.path().join("events"), false).is_empty() {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "not drained: {} of {rcpts} accounted, event files {:?}\n{}",
            rows.len(),
            event_files(&p.dir.path().join("events"), false),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn metrics(port: u16, key: &str, path: &str) -> Value {
    let (status, v) = signals_get(port, key, path);
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// POSTs NDJSON as uploaders do (gzip); returns the batch id.
fn post_batch(port: u16, key: &str, raw: &[u8]) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(raw).unwrap();
    let body = gz.finish().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /api/v1/ingest/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let mut resp = String::new();
    std::io::Read::read_to_string(&mut s, &mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let v: Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
    v["results"]["id"].as_str().unwrap().to_string()
}

#[test]
fn three_mtas_two_instances_count_what_the_accounting_files_say() {
    let ch = ClickHouseServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = Instance::new(dir.path(), "a", &ch.url());
    let b = Instance::new(dir.path(), "b", &ch.url());
    // A key made through instance A's configuration lives in ClickHouse: instance B takes it.
    let out = Command::new(petrel_bin())
        .args(["signals", "create-key", "--label", "fleet"])
        .args(["--permissions", "ingest,read", "--config"])
        .arg(&a.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let sink = Sink::start("127.0.0.1");
    let dead = free_port();
    let mut m1 = Petrel::start(&mta_config(1, sink.port, &key, a.port));
    let m2 = Petrel::start(&mta_config(2, sink.port, &key, b.port));
    // MTA 3 first uploads to a port where nothing listens: its event files wait on disk.
    let mut m3 = Petrel::start(&mta_config(3, sink.port, &key, dead));
    let per_mta = 12;
    send(&m3, 3, 0..per_mta);
    let events3 = m3.dir.path().join("events");
    let deadline = Instant::now() + Duration::from_secs(30);
    while event_files(&events3, true).is_empty() || acct_rows(m3.dir.path()).len() < 3 * per_mta {
        assert!(Instant::now() < deadline, "MTA 3 closed no event file");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(600));
    // Keep copies of its batches to send again once they are stored.
    let copies = tempfile::tempdir().unwrap();
    for f in event_files(&events3, true) {
        std::fs::copy(&f, copies.path().join(f.file_name().unwrap())).unwrap();
    }
    // The uploader is killed (its files stay) and comes back pointing at instance B.
    m3.kill9();
    let conf = std::fs::read_to_string(&m3.config).unwrap();
    std::fs::write(
        &m3.config,
        conf.replace(&format!(":{dead}/"), &format!(":{}/", b.port)),
    )
    .unwrap();
    m3.spawn();

    // Instance A is killed while MTA 1's batches arrive, and started again.
    send(&m1, 1, 0..per_mta / 2);
    a.kill9();
    send(&m1, 1, per_mta / 2..per_mta);
    send(&m2, 2, 0..per_mta);
    std::thread::sleep(Duration::from_secs(1));
    a.start();
    // MTA 1 restarts too (a crash of the uploader while its files are queued).
    m1.kill9();
    m1.spawn();

    let rows: Vec<_> = [(&m1, 1), (&m2, 2), (&m3, 3)]
        .into_iter()
        .map(|(p, n)| (n, drained(p, 3 * per_mta)))
        .collect();
    // MTA 3's batches, already stored through instance B, sent again in one batch to
    // instance A: every event is a duplicate.
    let mut resent = Vec::new();
    for f in event_files(copies.path(), true) {
        resent.extend(std::fs::read(f).unwrap());
    }
    let lines = resent.iter().filter(|&&c| c == b'\n').count() as i64;
    assert!(lines >= (2 * 3 * per_mta) as i64, "{lines} events re-sent");
    let id = post_batch(a.port, &key, &resent);
    let (_, v) = signals_get(b.port, &key, "/api/v1/events/ingest?per_page=1000");
    let record = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["batch_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record of batch {id}: {v}"))
        .clone();
    assert_eq!(record["number_succeeded"], 0, "{record}");
    assert_eq!(record["number_duplicates"], lines, "{record}");

    // The accounting files, per MTA (source IP) and in total.
    let count = |rows: &[std::collections::HashMap<String, String>], t: &str| {
        rows.iter().filter(|r| r["type"] == t).count() as i64
    };
    let (mut delivered, mut bounced) = (0, 0);
    for (_, r) in &rows {
        delivered += count(r, "d");
        bounced += count(r, "b");
    }
    assert_eq!(delivered, 3 * 2 * per_mta as i64);
    assert_eq!(bounced, 3 * per_mta as i64);

    let from = metrics_from(900);
    let m = "metrics=count_injected,count_delivered,count_bounce,count_inband_bounce";
    let total = format!("/api/v1/metrics/deliverability?from={from}&campaigns=fleet&{m}");
    let by_ip = format!("/api/v1/metrics/deliverability/sending-ip?from={from}&{m}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = metrics(b.port, &key, &total);
        if v["results"][0]["count_injected"] == delivered + bounced {
            break;
        }
        assert!(Instant::now() < deadline, "totals never matched: {v}");
        std::thread::sleep(Duration::from_millis(250));
    }
    for port in [a.port, b.port] {
        let r = &metrics(port, &key, &total)["results"][0];
        assert_eq!(r["count_injected"], delivered + bounced, "{r}");
        assert_eq!(r["count_delivered"], delivered, "{r}");
        let bounces = signals_get(
            port,
            &key,
            "/api/v1/events/message?campaigns=fleet&events=bounce&per_page=10000",
        )
        .1;
        assert_eq!(r["count_bounce"], bounced, "{r}\n{bounces}");
        assert_eq!(r["count_inband_bounce"], bounced, "{r}");
        let v = metrics(port, &key, &by_ip);
        for (n, r) in &rows {
            let ip = format!("127.0.0.{n}");
            let row = v["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["sending_ip"] == ip)
                .unwrap_or_else(|| panic!("no row for {ip}: {v}"));
            assert_eq!(row["count_delivered"], count(r, "d"), "{ip}: {row}");
            assert_eq!(row["count_bounce"], count(r, "b"), "{ip}: {row}");
        }
    }
    // Both instances answer alike, and the events search holds each event once.
    assert_eq!(metrics(a.port, &key, &by_ip), metrics(b.port, &key, &by_ip));
    let (_, v) = signals_get(
        a.port,
        &key,
        "/api/v1/events/message?campaigns=fleet&events=delivery&per_page=10000",
    );
    assert_eq!(
        v["results"].as_array().unwrap().len() as i64,
        delivered,
        "{v}"
    );
    drop(sink);
}
