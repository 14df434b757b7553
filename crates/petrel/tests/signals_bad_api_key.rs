//! An api-key the ingest service does not know: the uploads are refused with 401, the log
//! names the configuration problem, and the event files stay on disk. Once the key is valid
//! (here: the daemon restarted with its own `<signals-service>`, which registers the key),
//! the kept events arrive — nothing was lost, even though the daemon was killed with -9 while
//! the newest events may still have been in an open event file.

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, petrel_bin, send_mail, wait_for_events, Petrel};

const KEY: &str = "feedfacefeedfacefeedfacefeedfacefeedface";

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn event_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("sp1-"))
                .count()
        })
        .unwrap_or(0)
}

fn event_lines(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("sp1-"))
                .map(|e| {
                    std::fs::read(e.path())
                        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_refused_key_keeps_the_events_until_the_key_works() {
    // A standalone service with no keys at all.
    let svc_dir = tempfile::tempdir().unwrap();
    let foreign = free_port();
    let svc_conf = svc_dir.path().join("signals.conf");
    std::fs::write(
        &svc_conf,
        format!(
            "<signals-service>\n  listener 127.0.0.1:{foreign}\n  database {}/signals.db\n</signals-service>\n",
            svc_dir.path().display()
        ),
    )
    .unwrap();
    let _svc = Child(
        Command::new(petrel_bin())
            .args(["signals", "serve", "--config"])
            .arg(&svc_conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", foreign)).is_err() {
        assert!(
            Instant::now() < deadline,
            "petrel signals serve did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

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
        event_files(&events_dir) > 0,
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
