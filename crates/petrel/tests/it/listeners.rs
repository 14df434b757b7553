//! Several `smtp-listener` lines: two IPv4 ports and IPv6 loopback all serve SMTP.

use crate::common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::{free_port, Petrel};

fn greeting(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn every_configured_listener_answers() {
    let second = free_port();
    let v6 = free_port();
    let has_v6 = std::net::TcpListener::bind(("::1", 0)).is_ok();
    let mut body = format!("smtp-listener 127.0.0.1:{second}\n");
    if has_v6 {
        body.push_str(&format!("smtp-listener [::1]:{v6}\n"));
    }
    let p = Petrel::start(&body);
    assert!(greeting(&format!("127.0.0.1:{}", p.smtp_port)).starts_with("220 petrel.test"));
    assert!(greeting(&format!("127.0.0.1:{second}")).starts_with("220 petrel.test"));
    if has_v6 {
        assert!(greeting(&format!("[::1]:{v6}")).starts_with("220 petrel.test"));
    } else {
        eprintln!("SKIPPED the IPv6 listener: this machine has no ::1");
    }
}
