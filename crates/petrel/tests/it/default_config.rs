//! The quick start: `petrel serve` with no configuration file runs on loopback
//! (SMTP 127.0.0.1:2525, management 127.0.0.1:8080, Signals service 127.0.0.1:8097) with its
//! data under ./var, and a message injected into it shows up in its own events search.

use crate::common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_without_config_uses_the_builtin_loopback_defaults() {
    if ["127.0.0.1:2525", "127.0.0.1:8080", "127.0.0.1:8097"]
        .iter()
        .any(|a| TcpListener::bind(a).is_err())
    {
        eprintln!("SKIPPED: 127.0.0.1:2525, :8080 or :8097 is busy on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::petrel_bin())
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let greeting = loop {
        if let Ok(mut s) = TcpStream::connect("127.0.0.1:2525") {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "petrel did not listen on 127.0.0.1:2525"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (status, body) = common::http(8080, "GET", "/status");
    // An address literal routes without DNS (to 127.0.0.1:25, loopback only).
    common::send_mail(
        2525,
        "news@quickstart.example",
        &["someone@[127.0.0.1]"],
        "X-Job: first-campaign\r\n",
    );
    let events = common::wait_for_events(
        8097,
        "5ca1ab1e0000000000000000000000000000c0de",
        "events=injection&campaigns=first-campaign",
        30,
        |r| !r.is_empty(),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(events[0]["rcpt_to"], "someone@[127.0.0.1]", "{events:#?}");
    assert_eq!(events[0]["sending_domain"], "quickstart.example");
    assert!(
        dir.path().join("var/signals.db").is_file(),
        "Signals database under ./var"
    );
    assert!(greeting.starts_with("220 localhost"), "{greeting}");
    assert_eq!(status, 200, "{body}");
    assert!(dir.path().join("var/spool").is_dir(), "spool under ./var");
    assert!(
        dir.path().join("var/log/petrel.log").is_file(),
        "log under ./var/log"
    );
}
