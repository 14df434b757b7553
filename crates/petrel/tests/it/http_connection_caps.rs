//! Connection floods on the HTTP listeners (issue 17 item 1). 21,000 idle connections to the
//! tracking host once took every file descriptor; SMTP injection and the management API then
//! failed each `accept`. Here petrel runs under a small open-file limit (600), each HTTP
//! listener is flooded past its cap from loopback, and SMTP injection and `petrel show
//! status` must keep answering; connections over a cap read `503` and are closed, and an idle
//! connection is closed after `http-header-timeout`. Bounded: about 700 connections, all on
//! loopback, all closed when the test ends.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{free_port, send_mail, text, Petrel};

const CONFIG: &str = r#"
total-max-smtp-in 20
http-mgmt-max-connections 8
http-mgmt-max-connections-per-ip 4
http-header-timeout {TIMEOUT}
<source 0/0>
  always-allow-relaying yes
</source>
<signals>
  api-key 0123456789abcdef0123456789abcdef01234567
  upload false
  event-dir {DIR}/events
  engagement-tracking sparkpost
  tracking-listener 127.0.0.1:{TRACK}
  tracking-key 3 http-connection-caps-test-secret-01
  tracking-max-connections-per-ip 100
</signals>
<signals-service>
  listener 127.0.0.1:{SIGSVC}
  database {DIR}/signals.db
  max-connections 150
</signals-service>
"#;

/// The configuration with `http-header-timeout` `timeout`, its tracking and Signals ports.
fn config(timeout: &str) -> (String, u16, u16) {
    let (track, sigsvc) = (free_port(), free_port());
    let text = CONFIG
        .replace("{TRACK}", &track.to_string())
        .replace("{SIGSVC}", &sigsvc.to_string())
        .replace("{TIMEOUT}", timeout);
    (text, track, sigsvc)
}

/// Opens `n` connections to `to` from `from` (a loopback address) and keeps them.
fn flood(from: &str, to: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .expect("socket");
            let local: SocketAddr = format!("{from}:0").parse().unwrap();
            sock.bind(&local.into()).expect("bind a loopback source");
            let remote: SocketAddr = format!("127.0.0.1:{to}").parse().unwrap();
            sock.connect_timeout(&remote.into(), Duration::from_secs(5))
                .expect("connect");
            let s: TcpStream = sock.into();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// How many of `conns` were refused with a `503`, and how many are closed (refused or
/// timed out); a connection reads its `503` only once, so each is looked at once per call.
fn refused(conns: &[TcpStream]) -> usize {
    std::thread::sleep(Duration::from_millis(500));
    conns
        .iter()
        .filter(|c| {
            let (mut c, mut buf): (&TcpStream, _) = (c, [0u8; 256]);
            match c.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let got = String::from_utf8_lossy(&buf[..n]);
                    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
                    true
                }
                _ => false,
            }
        })
        .count()
}

/// How many of `conns` are still open (nothing to read yet, not closed).
fn still_open(conns: &[TcpStream]) -> usize {
    conns
        .iter()
        .filter(|c| {
            let (mut c, mut buf): (&TcpStream, _) = (c, [0u8; 256]);
            matches!(c.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock)
        })
        .count()
}

/// SMTP injection and `petrel show status` both work.
fn still_answering(p: &Petrel, what: &str) {
    send_mail(p.smtp_port, "a@b.example", &["r@sink.example"], "");
    let status = p.cli(&["show", "status"]);
    assert!(
        status.status.success(),
        "show status failed during the {what} flood: {}",
        text(&status)
    );
}

#[test]
fn floods_of_every_http_listener_leave_smtp_and_management_answering() {
    // Idle connections stay for the whole flood (a short timeout would free descriptors
    // while the test counts).
    let (config, track, sigsvc) = config("60s");
    let p = Petrel::start_with_nofile(&config, 600);
    let log = p.log();
    assert!(
        log.contains("open-file limit 600"),
        "the limit is logged: {log}"
    );

    // The tracking host: 100 per client IP, so a 150-connection flood from one address is
    // cut at 100.
    let one_ip = flood("127.0.0.2", track, 150);
    assert_eq!(refused(&one_ip), 50, "per-IP cap of the tracking host");
    still_answering(&p, "tracking (one IP)");

    // From four more addresses: 400 more connections. Together with the 100 held, far past
    // what 600 descriptors allow; the shared budget (600 - 256 reserve - 20 SMTP - 8
    // management = 316) cuts them, so SMTP and management still have descriptors.
    let many: Vec<TcpStream> = ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
        .iter()
        .flat_map(|ip| flood(ip, track, 100))
        .collect();
    let cut = refused(&many);
    assert_eq!(cut, 500 - 316, "the shared budget of the public listeners");
    still_answering(&p, "tracking (many IPs)");

    // The Signals service shares that budget, which the tracking flood has spent: refused.
    let sig = flood("127.0.0.7", sigsvc, 50);
    assert_eq!(
        refused(&sig),
        50,
        "the Signals service over the shared budget"
    );
    still_answering(&p, "Signals service");
    drop(many);
    drop(one_ip);
    drop(sig);

    // The management API: 4 per client IP. A flood from one address takes its 4, the rest
    // are refused, and the CLI (from 127.0.0.1) still gets in.
    let mgmt = flood("127.0.0.8", p.mgmt_port, 20);
    assert_eq!(refused(&mgmt), 16, "per-IP cap of the management API");
    still_answering(&p, "management API");

    assert!(p.log().contains("connection over the"), "{}", p.log());
}

#[test]
fn idle_http_connections_are_closed_after_http_header_timeout() {
    let (config, track, sigsvc) = config("2s");
    let p = Petrel::start(&config);
    // One idle connection to each HTTP listener, and one that sent half a request head.
    let mut idle = flood("127.0.0.1", p.mgmt_port, 1);
    idle.extend(flood("127.0.0.1", track, 1));
    idle.extend(flood("127.0.0.1", sigsvc, 1));
    let half = flood("127.0.0.1", sigsvc, 1);
    (&half[0])
        .write_all(b"GET /api/v1/ HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    idle.extend(half);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(still_open(&idle), 4, "open before the timeout");
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let open = still_open(&idle);
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{open} idle connections still open after {:?}",
            started.elapsed()
        );
    }
}
