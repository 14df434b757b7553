//! Load generator for the tracking host.
//!
//! ```text
//! cargo run --release -p petrel-tracking-host --example tracking_load -- \
//!     [--requests 200000] [--connections 32] [--tokens 50000] [--mode mix|open|click] \
//!     [--secs 60] [--url http://HOST:PORT[/prefix] --secret SECRET [--key-id 1]]
//! ```
//!
//! Without `--url` it starts a `TrackingHost` on 127.0.0.1:0 with an event spool in a
//! temporary directory, so client and server share the machine. It pre-signs `--tokens`
//! distinct tokens per kind, then `--connections` keep-alive connections send requests until
//! `--requests` are answered or `--secs` have passed: open pixels, clicks, or both
//! alternately. The client is a bare HTTP/1.1 loop over `TcpStream` (write the request, read
//! the head and the `Content-Length` body), so nearly all the CPU goes to the server.
//!
//! It prints `RESULT mode=… requests=… secs=… rps=… events=…`; `events` is the number of
//! lines in the spool files after the spool is closed and must equal the 200 + 302 answers
//! (else it prints `MISMATCH` and exits 1). With `--url` the events are not counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_events::{EventSpool, SpoolConfig};
use petrel_tracking::{Action, TokenData, TokenKeys};
use petrel_tracking_host::{serve, HostConfig, TrackingHost};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEFAULT_SECRET: &str = "tracking-load-secret-0123456789";
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Click,
    Mix,
}

#[derive(Debug)]
struct Args {
    requests: u64,
    connections: usize,
    tokens: usize,
    mode: Mode,
    secs: u64,
    url: Option<String>,
    secret: String,
    key_id: u8,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        requests: 200_000,
        connections: 32,
        tokens: 50_000,
        mode: Mode::Mix,
        secs: 60,
        url: None,
        secret: DEFAULT_SECRET.into(),
        key_id: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--requests" => a.requests = num(value()?)?,
            "--connections" => a.connections = num(value()?)?.max(1) as usize,
            "--tokens" => a.tokens = num(value()?)?.max(1) as usize,
            "--secs" => a.secs = num(value()?)?,
            "--key-id" => a.key_id = u8::try_from(num(value()?)?).map_err(|e| e.to_string())?,
            "--secret" => a.secret = value()?,
            "--url" => a.url = Some(value()?),
            "--mode" => {
                a.mode = match value()?.as_str() {
                    "open" => Mode::Open,
                    "click" => Mode::Click,
                    "mix" => Mode::Mix,
                    other => return Err(format!("--mode {other}: open, click or mix")),
                }
            }
            "-h" | "--help" => return Err("see the comment at the top of tracking_load.rs".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// `http://host:port[/prefix]` → (address, prefix without trailing slash).
fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("--url must be http://HOST:PORT[/prefix]")?;
    let (hostport, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or(format!("{hostport}: no address"))?;
    Ok((addr, prefix.to_string()))
}

/// Every request this run sends, fully formatted; request `i` is `requests[i % len]`.
fn build_requests(keys: &TokenKeys, args: &Args, prefix: &str) -> Vec<Vec<u8>> {
    let expires_unix = 4_000_000_000;
    let mut out = Vec::with_capacity(args.tokens * 2);
    for i in 0..args.tokens {
        let message_id = format!("{:020x}", 0xabc0_0000_0000u64 + i as u64);
        let recipient = format!("Reader{i}@Example.com");
        let open = keys.sign(&TokenData {
            message_id: message_id.clone(),
            recipient: recipient.clone(),
            action: if i % 2 == 0 {
                Action::InitialOpen
            } else {
                Action::Open
            },
            url: None,
            link_name: None,
            unsubscribe: None,
            expires_unix,
        });
        let click = keys.sign(&TokenData {
            message_id,
            recipient,
            action: Action::Click { link_index: 1 },
            url: Some(format!(
                "https://shop.example.com/item/{i}?utm_source=newsletter&utm_medium=email"
            )),
            link_name: (i % 3 == 0).then(|| "Shop now".to_string()),
            unsubscribe: None,
            expires_unix,
        });
        let req = |kind: &str, token: &str| {
            format!(
                "GET {prefix}/{kind}/{token} HTTP/1.1\r\nHost: track.example.com\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n"
            )
            .into_bytes()
        };
        match args.mode {
            Mode::Open => out.push(req("o", &open)),
            Mode::Click => out.push(req("c", &click)),
            Mode::Mix => {
                out.push(req("o", &open));
                out.push(req("c", &click));
            }
        }
    }
    out
}

/// Status counts of one connection.
type Counts = BTreeMap<u16, u64>;

/// One keep-alive connection sending requests until the shared budget or the deadline runs
/// out.
async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicU64>,
    total: u64,
    deadline: Instant,
) -> Result<Counts, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut counts = Counts::new();
    let mut buf = Vec::with_capacity(8192);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total || Instant::now() >= deadline {
            return Ok(counts);
        }
        let req = &requests[(i % requests.len() as u64) as usize];
        stream.write_all(req).await.map_err(|e| e.to_string())?;
        let status = read_response(&mut stream, &mut buf).await?;
        *counts.entry(status).or_default() += 1;
    }
}

/// Reads one response (head plus `Content-Length` body) and returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    let head_end = loop {
        if let Some(p) = find(buf, b"\r\n\r\n") {
            break p + 4;
        }
        fill(stream, buf).await?;
    };
    let head = &buf[..head_end];
    let status = std::str::from_utf8(head.get(9..12).ok_or("short status line")?)
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("bad status line")?;
    let body_len = content_length(head).unwrap_or(0);
    while buf.len() < head_end + body_len {
        fill(stream, buf).await?;
    }
    buf.drain(..head_end + body_len);
    Ok(status)
}

fn content_length(head: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"\r\ncontent-length:";
    let at = head
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))?;
    let rest = &head[at + NAME.len()..];
    let end = find(rest, b"\r\n")?;
    std::str::from_utf8(&rest[..end]).ok()?.trim().parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("server closed the connection".into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn count_event_lines(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut lines = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with("sp1-") && n.ends_with(".json")) {
            let data = std::fs::read(&path)?;
            lines += data.iter().filter(|&&b| b == b'\n').count() as u64;
        }
    }
    Ok(lines)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tracking_load: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = match TokenKeys::new(args.key_id, args.secret.as_bytes()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("tracking_load: {e}");
            return ExitCode::from(2);
        }
    };

    // The host under test: given, or our own on a loopback port.
    let tmp = tempfile::tempdir().expect("temporary directory");
    let events_dir = tmp.path().join("events");
    let mut local = None;
    let (addr, prefix) = match &args.url {
        Some(url) => match parse_url(url) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("tracking_load: {e}");
                return ExitCode::from(2);
            }
        },
        None => {
            let spool =
                Arc::new(EventSpool::open(SpoolConfig::new(&events_dir)).expect("event spool"));
            let host = Arc::new(TrackingHost::new(
                HostConfig::new(keys.clone()),
                spool.clone(),
                None,
            ));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("local address");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(serve(listener, None, host.clone(), async {
                let _ = stopped.await;
            }));
            local = Some((spool, host, stop, server));
            (addr, String::new())
        }
    };

    let mode = match args.mode {
        Mode::Open => "open",
        Mode::Click => "click",
        Mode::Mix => "mix",
    };
    let requests = Arc::new(build_requests(&keys, &args, &prefix));
    eprintln!(
        "tracking_load: {} requests ({mode}) over {} connections to {addr}, {} distinct URLs",
        args.requests,
        args.connections,
        requests.len()
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            tokio::spawn(connection(
                addr,
                requests.clone(),
                next.clone(),
                args.requests,
                deadline,
            ))
        })
        .collect();
    let mut counts = Counts::new();
    let mut failed = false;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => {
                for (status, n) in c {
                    *counts.entry(status).or_default() += n;
                }
            }
            Ok(Err(e)) => {
                eprintln!("tracking_load: connection failed: {e}");
                failed = true;
            }
            Err(e) => {
                eprintln!("tracking_load: connection task failed: {e}");
                failed = true;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let answered: u64 = counts.values().sum();
    let recorded_answers =
        counts.get(&200).copied().unwrap_or(0) + counts.get(&302).copied().unwrap_or(0);
    let statuses = counts
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(",");

    let events = match local {
        None => None,
        Some((spool, host, stop, server)) => {
            let _ = stop.send(());
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("tracking_load: server: {e}"),
                Err(e) => eprintln!("tracking_load: server task: {e}"),
            }
            let close_started = Instant::now();
            if let Err(e) = spool.close() {
                eprintln!("tracking_load: closing the spool: {e}");
                failed = true;
            }
            eprintln!(
                "tracking_load: spool closed in {:.2} s; host stats {:?}",
                close_started.elapsed().as_secs_f64(),
                host.stats()
            );
            match count_event_lines(&events_dir) {
                Ok(n) => Some(n),
                Err(e) => {
                    eprintln!("tracking_load: reading the spool: {e}");
                    failed = true;
                    Some(0)
                }
            }
        }
    };

    let events_str = events.map_or("n/a".to_string(), |n| n.to_string());
    println!(
        "RESULT mode={mode} requests={answered} secs={secs:.2} rps={:.0} events={events_str} connections={} statuses={statuses}",
        answered as f64 / secs,
        args.connections,
    );
    if let Some(n) = events {
        if n != recorded_answers {
            println!("MISMATCH events={n} answered_200_302={recorded_answers}");
            return ExitCode::from(1);
        }
    }
    if failed {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
