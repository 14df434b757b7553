//! One HTTP/1.1 request to a Signals service on loopback, with `Connection: close`: the
//! tests and benchmarks that talk to the service over a real socket share it (through
//! `#[path]`).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `method path` with the API key and extra header lines (each ending in `\r\n`);
/// returns the status and the raw body (empty when the answer has none).
pub async fn request(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: {key}\r\n\
         {headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read");
    let status = String::from_utf8_lossy(&resp[9..12]).parse().unwrap_or(0);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |p| p + 4);
    (status, resp.split_off(split))
}

/// [`request`] with the body read as JSON (`Null` when it is not JSON).
#[allow(dead_code)]
pub async fn json(
    addr: SocketAddr,
    key: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    let (status, body) = request(addr, key, method, path, headers, body).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// The header lines of a gzip-compressed NDJSON upload.
#[allow(dead_code)]
pub const GZIP_NDJSON: &str = "Content-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\n";
