//! An api-key the ingest service does not know: the uploads are refused with 401, the log
//! names the configuration problem, and the event files stay on disk. Once the key is valid
//! (here: the daemon restarted with its own `<signals-service>`, which registers the key),
//! the kept events arrive — nothing was lost, even though the daemon was killed with -9 while
//! the newest events may still have been in an open event file.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    event_files, event_lines, free_port, send_mail, wait_for_events, Petrel, StandaloneSignals,
};

const KEY: &str = "feedfacefeedfacefeedfacefeedfacefeedface";

#[test]
fn a_refused_key_keeps_the_events_until_the_key_works() {
    // A standalone service with no keys at all.
    let mut svc = StandaloneSignals::new();
    svc.start();
    let foreign = svc.port;

    let mut p = Petrel::start(&format!(
        r#"
<source 0/0>
  always-allow-relaying yes
  process-x-job yes
</source>
<signals>
  api-key {KEY}
  upload-url http://127.0.0.1:{foreign}/api/v1/ingest/events
  event-dir {{DIR}}/events
  upload-interval 200ms
</signals>
"#
    ));
    for i in 0..2 {
        send_mail(
            p.smtp_port,
            "news@brand.example",
            &[&format!("r{i}@wait.example")],
            "X-Job: badkey\r\n",
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = p.log();
        if log.contains("signals: upload rejected: check api-key") {
            assert!(log.contains("401"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "no rejection in the log: {log}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events_dir = p.dir.path().join("events");
    assert!(
        !event_files(&events_dir, false).is_empty(),
        "refused events are kept on disk"
    );
    // Both events are on disk (closed files or the open `.tmp` one) before the kill -9.
    let deadline = Instant::now() + Duration::from_secs(20);
    while event_lines(&events_dir) < 2 {
        assert!(
            Instant::now() < deadline,
            "events did not reach the event files"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Fix the key: the daemon now runs its own service, which registers the api-key.
    p.kill9();
    let own = free_port();
    let text = std::fs::read_to_string(&p.config).unwrap().replace(
        &format!("127.0.0.1:{foreign}/api"),
        &format!("127.0.0.1:{own}/api"),
    ) + &format!(
        "<signals-service>\n  listener 127.0.0.1:{own}\n  database {}/own.db\n</signals-service>\n",
        p.dir.path().display()
    );
    std::fs::write(&p.config, text).unwrap();
    p.spawn();
    let events = wait_for_events(own, KEY, "campaigns=badkey&events=injection", 30, |r| {
        r.len() >= 2
    });
    assert_eq!(events.len(), 2, "{events:#?}");
}
