//! The quick start: `petrel serve` with no configuration file runs on loopback
//! (SMTP 127.0.0.1:2525, management 127.0.0.1:8080) with its data under ./var.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_without_config_uses_the_builtin_loopback_defaults() {
    if TcpListener::bind("127.0.0.1:2525").is_err() || TcpListener::bind("127.0.0.1:8080").is_err()
    {
        eprintln!("SKIPPED: 127.0.0.1:2525 or :8080 is busy on this machine");
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
    let _ = child.kill();
    let _ = child.wait();
    assert!(greeting.starts_with("220 localhost"), "{greeting}");
    assert_eq!(status, 200, "{body}");
    assert!(dir.path().join("var/spool").is_dir(), "spool under ./var");
    assert!(
        dir.path().join("var/log/petrel.log").is_file(),
        "log under ./var/log"
    );
}
