//! SMTP smuggling on the way out (issue 17 item 2): a message received with a bare CR "end
//! of data" (`x\r.\rMAIL FROM:…`) must not reach the next hop as such, and a line over 998
//! octets must not be relayed unchanged. The next hop here is a deliberately lenient
//! receiver, written in this test, that ends DATA at `\r.\r` or `\n.\n` as well as at
//! `\r\n.\r\n` — the kind that reads a second, forged message out of such input. The
//! delivered message is DKIM-signed by petrel and must still verify with dkimpy: petrel signs
//! what it sends.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dkim_fixture_txt, text, Petrel};

/// One message as the lenient receiver understood it.
#[derive(Clone, Debug)]
struct Received {
    mail_from: String,
    data: Vec<u8>,
}

/// A loopback SMTP server that ends DATA at the first `\r\n.\r\n`, `\r.\r` or `\n.\n`, and
/// reads whatever follows as commands.
struct LenientReceiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl LenientReceiver {
    fn start() -> LenientReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        LenientReceiver { port, got }
    }

    fn messages(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(mut s: TcpStream, got: &Mutex<Vec<Received>>) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(b"220 lenient.test ESMTP\r\n");
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 65536];
    let mut mail_from = String::new();
    let mut in_data = false;
    loop {
        // Handle everything complete in the buffer.
        loop {
            if in_data {
                let ends = [&b"\r\n.\r\n"[..], b"\r.\r", b"\n.\n"];
                let hit = ends
                    .iter()
                    .filter_map(|e| find(&buf, e).map(|i| (i, e.len())))
                    .min();
                let Some((at, len)) = hit else { break };
                got.lock().unwrap().push(Received {
                    mail_from: mail_from.clone(),
                    data: buf[..at].to_vec(),
                });
                buf.drain(..at + len);
                in_data = false;
                let _ = s.write_all(b"250 2.0.0 queued\r\n");
                continue;
            }
            let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = buf.drain(..=eol).collect();
            let cmd = String::from_utf8_lossy(&line).trim().to_string();
            let upper = cmd.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250 lenient.test\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                mail_from = cmd[10..].to_string();
                b"250 2.1.0 ok\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = s.write_all(b"221 bye\r\n");
                return;
            } else {
                b"250 ok\r\n"
            };
            let _ = s.write_all(reply);
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn queued_recipients(p: &Petrel) -> u64 {
    let out = p.cli(&["show", "queues", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["data"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["rcp"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn bare_cr_dot_and_long_lines_never_reach_the_next_hop() {
    let receiver = LenientReceiver::start();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let config = format!(
        "<source 0/0>\n  always-allow-relaying yes\n</source>\n\
         domain-key mypmta, pmta.signalsdemo.trymsys.net, {}\n\
         <domain sink.example>\n  smtp-hosts [127.0.0.1]:{}\n  use-starttls no\n  dkim-sign yes\n</domain>\n",
        fixtures.join("dkim-mypmta.pem").display(),
        receiver.port
    );
    let p = Petrel::start(&config);

    // The attack: a bare-CR "end of data" followed by a whole second transaction, then a
    // 3,000-octet line, then the real end of data.
    let long_line = "L".repeat(3000);
    let mut input = Vec::new();
    input.extend_from_slice(
        b"EHLO attacker.test\r\nMAIL FROM:<news@pmta.signalsdemo.trymsys.net>\r\n\
          RCPT TO:<reader@sink.example>\r\nDATA\r\n",
    );
    input.extend_from_slice(
        b"From: <news@pmta.signalsdemo.trymsys.net>\r\nTo: <reader@sink.example>\r\n\
          Subject: legit\r\n\r\nhello\r.\rMAIL FROM:<forged@evil.example>\r\n\
          RCPT TO:<victim@sink.example>\r\nDATA\r\nFrom: <ceo@bank.example>\r\n\
          Subject: forged\r\n\r\nsend money\r\n",
    );
    input.extend_from_slice(long_line.as_bytes());
    input.extend_from_slice(b"\r\nbare lf\nend\r\n.\r\nQUIT\r\n");
    let out = p.raw(&input, Duration::from_secs(3));
    assert!(
        out.contains("250 2.6.0"),
        "petrel accepts the message: {out}"
    );

    // Delivered (queue empty), then a moment for a second message to show up if it would.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.messages().is_empty() || queued_recipients(&p) > 0 {
        assert!(
            Instant::now() < deadline,
            "not delivered in 30 s; log:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let got = receiver.messages();
    let senders: Vec<&str> = got.iter().map(|m| m.mail_from.as_str()).collect();
    assert_eq!(
        got.len(),
        1,
        "the lenient receiver saw a smuggled second message: {senders:?}"
    );
    let data = &got[0].data;

    // Only CRLF line ends, and no line longer than 998 octets (the receiver's bytes still
    // carry the dot-stuffing, which the RFC does not count).
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(data[i - 1], b'\r', "bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(data.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    let unstuffed: Vec<u8> = String::from_utf8_lossy(data)
        .replace("\r\n..", "\r\n.")
        .into_bytes();
    for line in unstuffed.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
    let text_got = String::from_utf8_lossy(&unstuffed).into_owned();
    // The smuggled commands arrived as text of the one message, the dot line stuffed.
    assert!(
        text_got.contains("hello\r\n.\r\nMAIL FROM:<forged@evil.example>\r\n"),
        "{text_got}"
    );
    // The long line is folded (CRLF SPACE) and nothing of it is lost.
    assert!(
        text_got.replace("\r\n ", "").contains(&long_line),
        "the long line's text must survive folding"
    );
    assert!(text_got.contains("bare lf\r\nend"), "{text_got}");

    // DKIM: petrel signed what it sent, so an independent verifier accepts it.
    assert!(text_got.starts_with("DKIM-Signature:"), "{text_got}");
    let txt = dkim_fixture_txt();
    let script = r#"
import dkim, sys
msg = sys.stdin.buffer.read()
txt = sys.argv[1].encode()
ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)
print("verify", ok)
sys.exit(0 if ok else 1)
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &txt])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&unstuffed).unwrap();
    let verified = child.wait_with_output().unwrap();
    assert!(verified.status.success(), "{}", text(&verified));
}
