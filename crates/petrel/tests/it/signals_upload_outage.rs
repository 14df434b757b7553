//! The ingest service is down while mail flows: events wait on disk, and once a standalone
//! `petrel signals serve` comes up (with a key made by `petrel signals create-key`) every
//! event arrives exactly once and the event files are deleted.

use crate::common;

use std::time::{Duration, Instant};

use common::{event_files, send_mail, signals_get, wait_for_events, Petrel, StandaloneSignals};

#[test]
fn events_wait_for_the_service_and_then_arrive_exactly_once() {
    let mut svc = StandaloneSignals::new();
    let sig_port = svc.port;
    let key = svc.create_key("mta-1", "ingest,read");
    assert_eq!(key.len(), 40, "a SparkPost-shaped key: {key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");

    // The MTA uploads to a port where nothing listens yet.
    let p = Petrel::start(&format!(
        r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
</source>
<signals>
  api-key {key}
  upload-url http://127.0.0.1:{sig_port}/api/v1/ingest/events
  event-dir {{DIR}}/events
  upload-interval 200ms
  log-verbose true
</signals>
"#
    ));
    for i in 0..10 {
        send_mail(
            p.smtp_port,
            "news@brand.example",
            &[
                &format!("a{i}@wait.example"),
                &format!("b{i}@wait.example"),
                &format!("c{i}@wait.example"),
            ],
            "X-Job: outage\r\n",
        );
    }
    let events_dir = p.dir.path().join("events");
    let deadline = Instant::now() + Duration::from_secs(20);
    while event_files(&events_dir, true).is_empty() {
        assert!(Instant::now() < deadline, "no event file was closed");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Several upload cycles fail while the service is down.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !event_files(&events_dir, true).is_empty(),
        "files are kept while the service is down"
    );

    svc.start();

    let events = wait_for_events(
        sig_port,
        &key,
        "campaigns=outage&events=injection&per_page=1000",
        60,
        |r| r.len() >= 30,
    );
    assert_eq!(events.len(), 30, "{events:#?}");
    let mut rcpts: Vec<&str> = events
        .iter()
        .map(|e| e["rcpt_to"].as_str().unwrap())
        .collect();
    rcpts.sort();
    rcpts.dedup();
    assert_eq!(rcpts.len(), 30, "one injection event per recipient");

    // Exactly once on the wire too: the batches accepted 30 events and saw no duplicates.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, batches) = signals_get(sig_port, &key, "/api/v1/events/ingest?per_page=1000");
        assert_eq!(status, 200, "{batches}");
        let list = batches["results"].as_array().unwrap();
        let sum = |f: &str| list.iter().map(|b| b[f].as_i64().unwrap_or(0)).sum::<i64>();
        if event_files(&events_dir, true).is_empty() {
            assert_eq!(sum("number_succeeded"), 30, "{batches:#}");
            assert_eq!(sum("number_duplicates"), 0, "{batches:#}");
            assert_eq!(sum("number_failed"), 0, "{batches:#}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "event files were not deleted after upload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = p.log();
    assert!(
        log.contains("signals: upload failed; will retry"),
        "the failed uploads are logged: {log}"
    );
    // log-verbose, in the article's words: each file found, each file sent (with the batch
    // id after it), and a summary per cycle; the failed cycles transferred nothing.
    assert!(log.contains("Signals: Discovered sp1-"), "{log}");
    assert!(
        log.contains(" files, transferred 0 files successfully")
            || log.contains(" file, transferred 0 files successfully"),
        "{log}"
    );
    let transferred = log
        .lines()
        .find(|l| l.contains("Signals: Transferred sp1-") && l.contains(" successfully."))
        .unwrap_or_else(|| panic!("no transferred line: {log}"));
    let batch_id = transferred
        .split("batch_id=")
        .nth(1)
        .map(|s| s.trim().trim_matches('"'))
        .unwrap_or_default();
    assert_eq!(batch_id.len(), 36, "a UUID batch id: {transferred}");
}
