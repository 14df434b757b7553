//! The uploader against a small HTTP server written here, on loopback only.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use flate2::read::GzDecoder;
use petrel_events::{
    Event, EventKind, EventSpool, SpoolConfig, UploadOutcome, Uploader, UploaderConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const PATH: &str = "/api/v1/ingest/events";

#[derive(Debug, Clone)]
struct Req {
    head: String,
    body: Vec<u8>,
    status: u16,
}

impl Req {
    fn lines(&self) -> Vec<String> {
        let mut raw = String::new();
        GzDecoder::new(self.body.as_slice())
            .read_to_string(&mut raw)
            .unwrap();
        assert!(raw.ends_with('\n'), "body must end with a newline");
        raw.lines().map(str::to_owned).collect()
    }
}

/// The value of header `name` in a request head (names compare case-insensitively).
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    /// Answers with the scripted statuses in turn, then 200 forever.
    async fn start(script: Vec<u16>) -> Server {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
    }

    fn start_on(listener: TcpListener, script: Vec<u16>) -> Server {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let reqs = requests.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let reqs = reqs.clone();
                let script = script.clone();
                tokio::spawn(async move {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 65536];
                    let head_end = loop {
                        let n = sock.read(&mut buf).await.unwrap();
                        assert!(n > 0, "client closed before the header ended");
                        raw.extend_from_slice(&buf[..n]);
                        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
                    let len: usize = header(&head, "content-length")
                        .expect("Content-Length")
                        .parse()
                        .unwrap();
                    while raw.len() < head_end + len {
                        let n = sock.read(&mut buf).await.unwrap();
                        assert!(n > 0, "client closed mid-body");
                        raw.extend_from_slice(&buf[..n]);
                    }
                    let status = script.lock().unwrap().pop_front().unwrap_or(200);
                    let body = {
                        let mut reqs = reqs.lock().unwrap();
                        reqs.push(Req {
                            head,
                            body: raw[head_end..head_end + len].to_vec(),
                            status,
                        });
                        if status == 200 {
                            format!("{{\"results\":{{\"id\":\"batch-{}\"}}}}", reqs.len())
                        } else {
                            "{\"errors\":[{\"message\":\"nope\"}]}".to_owned()
                        }
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(resp.as_bytes()).await.unwrap();
                    let _ = sock.shutdown().await;
                });
            }
        });
        Server { addr, requests }
    }

    fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// Lines the server accepted (answered 200).
    fn accepted_lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.status == 200)
            .flat_map(Req::lines)
            .collect()
    }
}

fn event(n: u64) -> Event {
    Event {
        recv_method: Some("esmtp".into()),
        rcpt_to: Some(format!("r{n}@example.net")),
        ..Event::new(
            EventKind::Reception,
            n,
            format!("m{n}"),
            UNIX_EPOCH + Duration::from_secs(1_767_225_600),
        )
    }
}

fn config(dir: &Path, addr: SocketAddr) -> UploaderConfig {
    UploaderConfig {
        log_verbose: true,
        min_free_space: 0,
        poll_interval: Duration::from_millis(20),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        reject_retry: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        ..UploaderConfig::new(dir, format!("http://{addr}{PATH}"), KEY)
    }
}

/// Writes events `range` into closed files of `per_file` events each.
fn spool_events(dir: &Path, range: std::ops::Range<u64>, per_file: u64) -> Vec<String> {
    let spool = EventSpool::open(SpoolConfig::new(dir)).unwrap();
    let ids: Vec<u64> = range.clone().collect();
    for chunk in ids.chunks(per_file as usize) {
        for &n in chunk {
            spool.emit(&event(n)).unwrap();
        }
        spool.rotate().unwrap();
    }
    spool.close().unwrap();
    range.map(|n| event(n).to_ingest_json()).collect()
}

fn closed_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn request_carries_key_and_gzip_and_files_are_deleted_after_200() {
    let server = Server::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let lines = spool_events(tmp.path(), 0..7, 4);
    assert_eq!(closed_files(tmp.path()), 2);
    let up = Uploader::new(config(tmp.path(), server.addr)).unwrap();

    let outcome = up.run_once().await;
    assert_eq!(
        outcome,
        UploadOutcome::Uploaded {
            files: 2,
            events: 7,
            batch_id: Some("batch-1".into())
        }
    );
    assert_eq!(up.run_once().await, UploadOutcome::Idle);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let head = &reqs[0].head;
    assert!(
        head.starts_with(&format!("POST {PATH} HTTP/1.1\r\n")),
        "{head}"
    );
    let user_agent = format!("petrel/{}", env!("CARGO_PKG_VERSION"));
    let length = reqs[0].body.len().to_string();
    for (name, value) in [
        ("host", server.addr.to_string().as_str()),
        ("authorization", KEY),
        ("content-type", "application/x-ndjson"),
        ("content-encoding", "gzip"),
        ("user-agent", &user_agent),
        ("content-length", &length),
    ] {
        assert_eq!(header(head, name), Some(value), "{name} in\n{head}");
    }
    assert_eq!(&reqs[0].body[..2], &[0x1f, 0x8b], "gzip magic");
    assert_eq!(
        reqs[0].lines(),
        lines,
        "oldest file first, every line once, in order"
    );
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// Files an earlier petrel named in lower-case hex are still found and sent, in age order
/// with the upper-case names written now (text order would put `…B` before `…a`).
#[tokio::test]
async fn files_named_by_an_earlier_version_are_still_sent_oldest_first() {
    let server = Server::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let old = event(1).to_ingest_json();
    let newer = event(2).to_ingest_json();
    fs::write(
        tmp.path().join("sp1-000000000000000a.json"),
        format!("{old}\n"),
    )
    .unwrap();
    fs::write(
        tmp.path().join("sp1-000000000000000B.json"),
        format!("{newer}\n"),
    )
    .unwrap();
    let now = spool_events(tmp.path(), 3..5, 2);
    let up = Uploader::new(config(tmp.path(), server.addr)).unwrap();
    assert!(matches!(
        up.run_once().await,
        UploadOutcome::Uploaded {
            files: 3,
            events: 4,
            ..
        }
    ));
    let mut want = vec![old, newer];
    want.extend(now);
    assert_eq!(server.accepted_lines(), want);
    assert_eq!(closed_files(tmp.path()), 0);
}

#[tokio::test]
async fn server_errors_are_retried_and_every_event_arrives_exactly_once() {
    let server = Server::start(vec![500, 503]).await;
    let tmp = tempfile::tempdir().unwrap();
    let lines = spool_events(tmp.path(), 0..10, 3);
    let up = Uploader::new(config(tmp.path(), server.addr)).unwrap();
    assert_eq!(up.run_once().await, UploadOutcome::Transient);
    assert_eq!(closed_files(tmp.path()), 4, "files kept after a 500");

    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(up.run(rx));
    wait_until("all files uploaded", || closed_files(tmp.path()) == 0).await;
    tx.send(true).unwrap();
    task.await.unwrap();

    let reqs = server.requests();
    assert_eq!(reqs[0].status, 500);
    assert_eq!(reqs[1].status, 503);
    assert_eq!(reqs[0].body, reqs[1].body, "a retry resends the same batch");
    let mut got = server.accepted_lines();
    got.sort();
    let mut want = lines;
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn unauthorized_keeps_the_files() {
    let server = Server::start(vec![401, 403]).await;
    let tmp = tempfile::tempdir().unwrap();
    spool_events(tmp.path(), 0..3, 3);
    let up = Uploader::new(config(tmp.path(), server.addr)).unwrap();
    assert_eq!(up.run_once().await, UploadOutcome::Rejected { status: 401 });
    assert_eq!(up.run_once().await, UploadOutcome::Rejected { status: 403 });
    assert_eq!(closed_files(tmp.path()), 1);
    // Once the key is fixed, the same events go through.
    assert!(matches!(
        up.run_once().await,
        UploadOutcome::Uploaded { events: 3, .. }
    ));
    assert_eq!(closed_files(tmp.path()), 0);
}

#[tokio::test]
async fn open_tmp_files_are_never_uploaded() {
    let server = Server::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let lines = spool_events(tmp.path(), 0..2, 2);
    let partial = tmp.path().join("sp1-ffffffffffffffff.json.tmp");
    fs::write(&partial, "{\"half\":").unwrap();
    let up = Uploader::new(config(tmp.path(), server.addr)).unwrap();
    assert!(matches!(
        up.run_once().await,
        UploadOutcome::Uploaded { files: 1, .. }
    ));
    assert_eq!(up.run_once().await, UploadOutcome::Idle);
    assert_eq!(server.accepted_lines(), lines);
    assert!(partial.exists());
}

#[tokio::test]
async fn batches_respect_the_size_cap() {
    let server = Server::start(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let lines = spool_events(tmp.path(), 0..9, 3);
    let one_file = (lines[0].len() as u64 + 1) * 3;
    let up = Uploader::new(UploaderConfig {
        max_batch_bytes: one_file + 10,
        ..config(tmp.path(), server.addr)
    })
    .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            up.run_once().await,
            UploadOutcome::Uploaded {
                files: 1,
                events: 3,
                ..
            }
        ));
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.accepted_lines(), lines);
}

#[tokio::test]
async fn target_down_for_a_while_then_everything_arrives_exactly_once() {
    // Reserve a port, then free it: nothing listens there until the server "comes back".
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);

    let tmp = tempfile::tempdir().unwrap();
    let spool = Arc::new(
        EventSpool::open(SpoolConfig {
            max_file_age: Duration::from_millis(30),
            ..SpoolConfig::new(tmp.path())
        })
        .unwrap(),
    );
    let up = Uploader::new(config(tmp.path(), addr)).unwrap();
    assert_eq!(up.run_once().await, UploadOutcome::Idle);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(up.run(rx));

    let producer = {
        let spool = spool.clone();
        std::thread::spawn(move || {
            for n in 0..300 {
                spool.emit(&event(n)).unwrap();
                if n % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        closed_files(tmp.path()) > 0,
        "events wait on disk while the target is down"
    );
    let server = Server::start_on(TcpListener::bind(addr).await.unwrap(), vec![]);
    producer.join().unwrap();
    spool.close().unwrap();

    wait_until("every event delivered", || closed_files(tmp.path()) == 0).await;
    tx.send(true).unwrap();
    task.await.unwrap();

    let mut got = server.accepted_lines();
    got.sort();
    let mut want: Vec<String> = (0..300).map(|n| event(n).to_ingest_json()).collect();
    want.sort();
    assert_eq!(got.len(), 300);
    assert_eq!(got, want);
}

#[test]
fn min_free_space_deletes_the_oldest_closed_files() {
    let tmp = tempfile::tempdir().unwrap();
    spool_events(tmp.path(), 0..6, 2);
    let open = tmp.path().join("sp1-ffffffffffffffff.json.tmp");
    fs::write(&open, "x\n").unwrap();
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // No disk has this much free space, so every closed file goes.
    let up = Uploader::new(UploaderConfig {
        min_free_space: u64::MAX,
        ..config(tmp.path(), addr)
    })
    .unwrap();
    assert_eq!(up.enforce_min_free_space().unwrap(), 6);
    assert_eq!(closed_files(tmp.path()), 0);
    assert!(open.exists(), "the file being written is left alone");
    // With room to spare nothing is deleted. (Opening a spool would recover the .tmp.)
    fs::remove_file(&open).unwrap();
    spool_events(tmp.path(), 0..2, 2);
    let up = Uploader::new(UploaderConfig {
        min_free_space: 1,
        ..config(tmp.path(), addr)
    })
    .unwrap();
    assert_eq!(up.enforce_min_free_space().unwrap(), 0);
    assert_eq!(closed_files(tmp.path()), 1);
}

#[test]
fn garbage_urls_are_startup_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for url in [
        "api.sparkpost.com",
        "http://:80/x",
        "ftp://h/x",
        "http://h:port/x",
    ] {
        assert!(
            Uploader::new(UploaderConfig::new(tmp.path(), url, KEY)).is_err(),
            "{url}"
        );
    }
    let default = "https://api.sparkpost.com/api/v1/ingest/events";
    assert!(Uploader::new(UploaderConfig::new(tmp.path(), default, KEY)).is_ok());
}

#[tokio::test]
async fn https_urls_speak_tls_and_a_failed_handshake_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first_byte = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut b = [0u8; 1];
        sock.read_exact(&mut b).await.unwrap();
        // Not TLS: answer in plain text, which the client must refuse.
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .await;
        b[0]
    });
    let tmp = tempfile::tempdir().unwrap();
    spool_events(tmp.path(), 0..2, 2);
    let cfg = UploaderConfig {
        upload_url: format!("https://{addr}{PATH}"),
        ..config(tmp.path(), addr)
    };
    let up = Uploader::new(cfg).unwrap();
    assert_eq!(up.run_once().await, UploadOutcome::Transient);
    assert_eq!(
        first_byte.await.unwrap(),
        0x16,
        "a TLS handshake record, not cleartext HTTP"
    );
    assert_eq!(closed_files(tmp.path()), 1, "files kept");
}
