//! Connection-level limits: `total-max-smtp-in` answers 421 to the connection over the cap,
//! and `smtp-command-timeout` closes an idle session with 421 4.4.2.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Petrel;

fn read_some(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn connections_over_total_max_smtp_in_get_421() {
    let p = Petrel::start(
        "total-max-smtp-in 2\n<source 0/0>\n  always-allow-relaying yes\n</source>\n",
    );
    let addr = ("127.0.0.1", p.smtp_port);
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(read_some(&mut a).starts_with("220"));
    assert!(read_some(&mut b).starts_with("220"));
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let third = read_some(&mut c);
    assert!(third.starts_with("421 4.3.2"), "{third}");
    // A slot frees when a session ends.
    a.write_all(b"QUIT\r\n").unwrap();
    assert!(read_some(&mut a).starts_with("221"));
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = TcpStream::connect(addr).unwrap();
        d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let greeting = read_some(&mut d);
        if greeting.starts_with("220") {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed: {greeting}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_sessions_time_out_with_421() {
    let p = Petrel::start("<source 0/0>\n  smtp-command-timeout 1s\n</source>\n");
    let mut s = TcpStream::connect(("127.0.0.1", p.smtp_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(read_some(&mut s).starts_with("220"));
    let started = Instant::now();
    let reply = read_some(&mut s);
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(read_some(&mut s), "", "the server closes after 421");
}
