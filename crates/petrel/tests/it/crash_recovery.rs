//! kill -9 during an injection burst: every message that got a 250 is in the spool after
//! restart. Twenty smtplib clients inject in parallel; the daemon is killed mid-burst.

use crate::common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require, Petrel};

const CONFIG: &str = r#"
<source 0/0>
  always-allow-relaying yes
</source>
"#;

/// Each thread sends messages with unique recipients and prints the recipient only after
/// the server's 250 to DATA. It stops at the first failure (the daemon is gone).
const BURST: &str = r#"
import smtplib, sys, threading
port = int(sys.argv[1])
lock = threading.Lock()
body = "Subject: burst\r\n\r\n" + ("x" * 76 + "\r\n") * 64
def worker(t):
    n = 0
    while n < 100000:
        rcpt = "t%d-%d@burst.example" % (t, n)
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=10)
            s.sendmail("src@example.org", [rcpt], body)
        except Exception:
            return
        with lock:
            print(rcpt, flush=True)
        try:
            s.quit()
        except Exception:
            pass
        n += 1
threads = [threading.Thread(target=worker, args=(t,)) for t in range(20)]
for t in threads: t.start()
for t in threads: t.join()
"#;

#[test]
fn acknowledged_messages_survive_sigkill() {
    require("python3");
    let mut p = Petrel::start(CONFIG);
    let mut child = Command::new("python3")
        .args(["-c", BURST, &p.smtp_port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut acked = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < 600 {
        assert!(
            Instant::now() < deadline,
            "burst too slow: {} acked",
            acked.len()
        );
        if let Ok(r) = rx.recv_timeout(Duration::from_secs(5)) {
            acked.insert(r);
        }
    }
    // Mid-burst: SIGKILL, no chance to flush anything.
    p.kill9();
    let _ = child.wait();
    reader.join().unwrap();
    while let Ok(r) = rx.try_recv() {
        acked.insert(r);
    }

    p.spawn();
    let list = p.list();
    let spooled: HashSet<String> = list["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["rcpts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
        })
        .collect();
    let lost: Vec<_> = acked.difference(&spooled).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(
        p.log().contains("recovered") || p.log().contains("messages"),
        "recovery report missing from log:\n{}",
        p.log()
    );
}
