//! Relay benchmark with a real HTML newsletter (Postfix's smtp-source can only send lines of
//! X, which tracking has nothing to rewrite in).
//!
//! In one process: a counting SMTP sink on `--sink 127.0.0.1:P` and an injector that sends
//! `-n` copies of a ~20 KB multipart/alternative message (quoted-printable HTML, 30 links,
//! an unsubscribe footer) from `-c` concurrent sessions to `--inject HOST:PORT`. Like
//! `relay-bench.sh` (smtp-source), each message gets a connection of its own and commands
//! are sent one at a time; `--reuse` keeps each session's connection and pipelines
//! MAIL/RCPT/DATA instead (a bulk injector's shape, much lighter on the MTA).
//! The MTA under test relays them to the sink. Prints
//! `RESULT n=… secs=… inject_mps=… e2e_mps=…` (e2e: first injection to the N-th message
//! received by the sink). `--direct` injects straight into the sink (the limit of this
//! load generator on this machine). Loopback only; bounded by `-n` and `--timeout`.
//!
//! `cargo run --release -p petrel --example html_relay_bench -- -n 5000 [--reuse] --inject 127.0.0.1:2525 --sink 127.0.0.1:2527`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Args {
    n: u64,
    conns: u64,
    inject: SocketAddr,
    sink: SocketAddr,
    direct: bool,
    reuse: bool,
    timeout: Duration,
    print: bool,
}

fn args() -> Args {
    let mut a = Args {
        n: 5000,
        conns: 20,
        inject: "127.0.0.1:2525".parse().unwrap(),
        sink: "127.0.0.1:2527".parse().unwrap(),
        direct: false,
        reuse: false,
        timeout: Duration::from_secs(300),
        print: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("missing value");
        match k.as_str() {
            "-n" => a.n = v().parse().expect("-n N"),
            "-c" => a.conns = v().parse().expect("-c C"),
            "--inject" => a.inject = v().parse().expect("--inject HOST:PORT"),
            "--sink" => a.sink = v().parse().expect("--sink HOST:PORT"),
            "--timeout" => a.timeout = Duration::from_secs(v().parse().expect("--timeout SECS")),
            "--direct" => a.direct = true,
            "--reuse" => a.reuse = true,
            "--print" => a.print = true,
            _ => panic!("unknown argument {k}"),
        }
    }
    for addr in [a.inject, a.sink] {
        assert!(addr.ip().is_loopback(), "loopback only: {addr}");
    }
    a
}

/// A ~20 KB newsletter: quoted-printable HTML with 30 links, images, a footer.
fn newsletter() -> Vec<u8> {
    let mut html = String::from(
        "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>The Spring Letter</title>\r\n\
         <style>body{font-family:Arial,sans-serif;color:#222} .btn{background:#06c;color:#fff;padding:8px 14px}</style>\r\n\
         </head>\r\n<body style=\"margin:0;padding:0;background:#f4f4f4\">\r\n\
         <table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" role=\"presentation\">\r\n",
    );
    let mut i = 0;
    while html.len() < 19_000 {
        html.push_str(&format!(
            "<tr><td style=\"padding:16px\"><img src=\"https://cdn.example.com/spring/{i}.jpg\" width=\"560\" alt=\"Story {i}\">\r\n\
             <h2 style=\"font-size:20px;margin:8px 0\">Story {i}: what our readers built this spring</h2>\r\n\
             <p style=\"line-height:1.5\">A longer paragraph of newsletter prose, the kind that fills most of a real message: \
             a few sentences about the story, a quote from a reader, and a reason to read on. \
             It is long enough that quoted-printable has to fold it.</p>\r\n"
        ));
        if i < 29 {
            html.push_str(&format!(
                "<p><a class=\"btn\" href=\"https://www.example.com/stories/{i}?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=spring\">Read story {i}</a></p>\r\n"
            ));
        }
        html.push_str("</td></tr>\r\n");
        i += 1;
    }
    html.push_str(
        "</table>\r\n<p style=\"font-size:12px;color:#666\">You get this because you subscribed. \
         <a href=\"https://www.example.com/prefs?u=42\">Unsubscribe</a></p>\r\n</body></html>\r\n",
    );
    let mut qp = String::new();
    for line in html.split("\r\n") {
        let line = line.replace('=', "=3D");
        let mut col = 0;
        for ch in line.chars() {
            if col >= 74 {
                qp.push_str("=\r\n");
                col = 0;
            }
            qp.push(ch);
            col += 1;
        }
        qp.push_str("\r\n");
    }
    format!(
        "From: The Spring Letter <news@letter.example.com>\r\nTo: reader@sink.example\r\n\
         Subject: What our readers built this spring\r\nMIME-Version: 1.0\r\n\
         X-Job: spring-letter\r\n\
         Content-Type: multipart/alternative; boundary=\"=_b1\"\r\n\r\n\
         --=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         The Spring Letter: https://www.example.com/stories\r\n\r\n\
         --=_b1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         {qp}--=_b1--\r\n"
    )
    .into_bytes()
}

/// Answers every command with success and counts messages; enough SMTP for an MTA's client
/// (EHLO with PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT), pipelined commands included.
/// The first message the sink received, to show what the MTA delivered.
static FIRST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

async fn sink(listener: TcpListener, count: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let count = count.clone();
        // Replies are small writes; without this, Nagle holds each until the peer's delayed
        // ACK (40 ms) and the sink, not the MTA, sets the pace.
        stream.set_nodelay(true).ok();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::with_capacity(64 * 1024, r);
            if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                return;
            }
            let mut line = Vec::new();
            let mut out = Vec::new();
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let verb = line
                    .get(..4)
                    .map(|v| v.to_ascii_uppercase())
                    .unwrap_or_default();
                match &verb[..] {
                    b"EHLO" => out.extend_from_slice(
                        b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n",
                    ),
                    b"DATA" => {
                        out.extend_from_slice(b"354 go\r\n");
                        w.write_all(&out).await.ok();
                        out.clear();
                        let mut message = Vec::new();
                        let keep = FIRST.get().is_none();
                        loop {
                            line.clear();
                            if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == b".\r\n" {
                                break;
                            }
                            if keep {
                                message.extend_from_slice(&line);
                            }
                        }
                        if keep {
                            let _ = FIRST.set(message);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                        out.extend_from_slice(b"250 2.0.0 ok\r\n");
                    }
                    b"QUIT" => {
                        out.extend_from_slice(b"221 bye\r\n");
                        let _ = w.write_all(&out).await;
                        return;
                    }
                    _ => out.extend_from_slice(b"250 ok\r\n"),
                }
                // Flush when the client has nothing more pipelined.
                if r.buffer().is_empty() && !out.is_empty() {
                    if w.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            }
        });
    }
}

async fn reply(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<u16> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0));
        }
    }
}

/// One injecting session: a connection per message with one command at a time, or (with
/// `reuse`) one connection, EHLO once, and pipelined MAIL/RCPT/DATA per message.
async fn inject(
    addr: SocketAddr,
    body: Arc<Vec<u8>>,
    next: Arc<AtomicU64>,
    n: u64,
    reuse: bool,
) -> u64 {
    if !reuse {
        let mut sent = 0;
        while next.fetch_add(1, Ordering::Relaxed) < n {
            one_message(addr, &body).await;
            sent += 1;
        }
        return sent;
    }
    let stream = TcpStream::connect(addr).await.expect("connect to the MTA");
    stream.set_nodelay(true).ok();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    assert_eq!(reply(&mut r).await.unwrap(), 220);
    w.write_all(b"EHLO bench.example\r\n").await.unwrap();
    assert_eq!(reply(&mut r).await.unwrap(), 250);
    let mut sent = 0;
    while next.fetch_add(1, Ordering::Relaxed) < n {
        w.write_all(
            b"MAIL FROM:<news@letter.example.com>\r\nRCPT TO:<reader@sink.example>\r\nDATA\r\n",
        )
        .await
        .unwrap();
        let (m, rc, d) = (
            reply(&mut r).await.unwrap(),
            reply(&mut r).await.unwrap(),
            reply(&mut r).await.unwrap(),
        );
        assert!(m == 250 && rc == 250 && d == 354, "{m} {rc} {d}");
        w.write_all(&body).await.unwrap();
        w.write_all(b".\r\n").await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(reply(&mut r).await.unwrap(), 250);
        sent += 1;
    }
    let _ = w.write_all(b"QUIT\r\n").await;
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest).await;
    sent
}

/// smtp-source's shape: connect, EHLO, MAIL, RCPT, DATA, body, QUIT, each awaited.
async fn one_message(addr: SocketAddr, body: &[u8]) {
    let stream = TcpStream::connect(addr).await.expect("connect to the MTA");
    stream.set_nodelay(true).ok();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    assert_eq!(reply(&mut r).await.unwrap(), 220);
    for (cmd, want) in [
        (&b"EHLO bench.example\r\n"[..], 250),
        (b"MAIL FROM:<news@letter.example.com>\r\n", 250),
        (b"RCPT TO:<reader@sink.example>\r\n", 250),
        (b"DATA\r\n", 354),
    ] {
        w.write_all(cmd).await.unwrap();
        let got = reply(&mut r).await.unwrap();
        assert_eq!(got, want, "{}", String::from_utf8_lossy(cmd).trim());
    }
    w.write_all(body).await.unwrap();
    w.write_all(b".\r\n").await.unwrap();
    assert_eq!(reply(&mut r).await.unwrap(), 250);
    let _ = w.write_all(b"QUIT\r\n").await;
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest).await;
}

#[tokio::main]
async fn main() {
    let a = args();
    let body = Arc::new(newsletter());
    if a.print {
        print!("{}", String::from_utf8_lossy(&body));
        return;
    }
    let count = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind(a.sink).await.expect("bind the sink");
    tokio::spawn(sink(listener, count.clone()));
    let target = if a.direct { a.sink } else { a.inject };
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..a.conns)
        .map(|_| tokio::spawn(inject(target, body.clone(), next.clone(), a.n, a.reuse)))
        .collect();
    let mut injected = 0;
    for t in tasks {
        injected += t.await.expect("injector");
    }
    let inject_secs = start.elapsed().as_secs_f64();
    while count.load(Ordering::Relaxed) < a.n {
        assert!(
            start.elapsed() < a.timeout,
            "timeout: the sink got {} of {}",
            count.load(Ordering::Relaxed),
            a.n
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    // Wrapped links in the first delivered message: 0 without tracking. (Quoted-printable
    // may fold a URL, so count the `/c/` path starts after undoing soft line breaks.)
    let first = FIRST.get().cloned().unwrap_or_default();
    let unfolded = String::from_utf8_lossy(&first).replace("=\r\n", "");
    let tracked = unfolded.matches("/c/").count();
    println!(
        "RESULT n={injected} size={} secs={secs:.2} inject_mps={:.0} e2e_mps={:.0} tracked_links_in_first={tracked}",
        body.len(),
        injected as f64 / inject_secs,
        a.n as f64 / secs
    );
}
