//! kill -9 during a delivery burst: after restart, every acknowledged message reaches the
//! sink (at least once — a message in flight at the kill may arrive twice, never zero times).

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{python, text, Petrel, Sink};

const BURST: &str = r#"
import smtplib, sys, threading
port, count = int(sys.argv[1]), int(sys.argv[2])
lock = threading.Lock()
def worker(t):
    for n in range(count // 10):
        rcpt = "t%d-%d@sink.example" % (t, n)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.sendmail("src@example.org", [rcpt], "Subject: burst\r\n\r\nbody\r\n")
        except Exception:
            return
        with lock:
            print(rcpt, flush=True)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(10)]
for t in threads: t.start()
for t in threads: t.join()
"#;

#[test]
fn every_acknowledged_message_is_delivered_after_a_crash() {
    let sink = Sink::start("127.0.0.1");
    let mut p = Petrel::start(&format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n<domain sink.example>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n</domain>\n",
        sink.port
    ));
    let port = p.smtp_port.to_string();
    let injector = std::thread::spawn(move || python(BURST, &[&port, "400"]));
    // Kill while deliveries are under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.records().len() < 50 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    p.kill9();
    let out = injector.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let acked: HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!acked.is_empty());
    p.spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = sink
            .records()
            .iter()
            .flat_map(|m| {
                m["rcpts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let missing: Vec<_> = acked.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged messages never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
