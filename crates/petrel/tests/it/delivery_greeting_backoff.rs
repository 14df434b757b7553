//! A receiver that refuses at the greeting ("421 … [TS03] … maximum connection limit"): the
//! `reply` pattern `mode=backoff, defer-queue` puts the queue into backoff and into retry
//! mode on the `backoff-retry-after` schedule, so petrel stops knocking — it does not come
//! back after the 1 s of `retry-after`.

use crate::common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{free_port, send_mail, spawn_ready, text, Petrel};
use serde_json::Value;

/// The refusing server's process, killed when the test ends (also when it fails).
struct Refuser(Child);

impl Drop for Refuser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-line SMTP "server": greets every connection with a 421 and hangs up, counting
/// connections in a file.
fn refusing_server(port: u16, count: &std::path::Path) -> Refuser {
    let script = r#"
import socket, sys
port, count = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
print("ready", flush=True)
n = 0
while True:
    c, _ = s.accept()
    n += 1
    open(count, "w").write(str(n))
    c.sendall(b"421 4.7.0 [TS03] All available IPs are at maximum connection limit\r\n")
    c.close()
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, &port.to_string(), count.to_str().unwrap()]);
    Refuser(spawn_ready(&mut cmd, "refusing greeting server"))
}

fn connections(count: &std::path::Path) -> u32 {
    std::fs::read_to_string(count)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_refusing_greeting_defers_the_queue_on_the_backoff_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("connections");
    let port = free_port();
    let _server = refusing_server(port, &count);
    let p = Petrel::start(&format!(
        r#"
<source 0/0>
  always-allow-relaying yes
</source>
<smtp-pattern-list busy>
  reply /\[TS03\]/ mode=backoff, defer-queue
</smtp-pattern-list>
<domain busy.example>
  smtp-hosts [127.0.0.1]:{port}
  use-starttls no
  smtp-pattern-list busy
  retry-after 1s
  backoff-retry-after 1h
</domain>
"#
    ));
    send_mail(
        p.smtp_port,
        "news@brand.example",
        &["someone@busy.example"],
        "",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while connections(&count) == 0 {
        assert!(Instant::now() < deadline, "petrel never connected");
        std::thread::sleep(Duration::from_millis(50));
    }
    // retry-after 1s would bring it back two or three times in this window.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        connections(&count),
        1,
        "no retry before backoff-retry-after"
    );

    let out = p.cli(&["show", "queues", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let q = v["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "busy.example/{default}")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(q["mode"], "backoff", "{q}");
    assert_eq!(q["retry"], true, "{q}");
    assert_eq!(q["rcp"], 1, "the recipient waits: {q}");
    let retry_in = q["retryUntil"].as_u64().unwrap() as i64
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
    assert!(
        (3000..=3600).contains(&retry_in),
        "retry after about an hour (backoff-retry-after), not 1 s: {retry_in}s"
    );
}
