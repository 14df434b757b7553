//! A minimal HTTP/1.1 client for the CLI: one request to the local management API.
//! Enough for JSON GET/POST on loopback without pulling an HTTP client stack into the build.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).with_context(|| {
        format!("cannot reach the petrel daemon on 127.0.0.1:{port} (is it running?)")
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n{content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP answer from the daemon"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("malformed HTTP status line"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    let value: Value = serde_json::from_str(&body)
        .with_context(|| format!("daemon answered {status} with non-JSON body"))?;
    if status >= 400 {
        bail!(
            "daemon answered {status}: {}",
            value["error"].as_str().unwrap_or(&body)
        );
    }
    Ok(value)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// `GET path`, parsed as JSON.
pub fn get(port: u16, path: &str) -> Result<Value> {
    request(port, "GET", path, None)
}

/// `POST path` with an empty body, parsed as JSON.
pub fn post(port: u16, path: &str) -> Result<Value> {
    request(port, "POST", path, None)
}

/// `POST path` with a JSON body, parsed as JSON.
pub fn post_json(port: u16, path: &str, body: &Value) -> Result<Value> {
    request(port, "POST", path, Some(body))
}

/// `DELETE path`, parsed as JSON.
pub fn delete(port: u16, path: &str) -> Result<Value> {
    request(port, "DELETE", path, None)
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
