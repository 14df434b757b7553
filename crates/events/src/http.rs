//! A minimal HTTP/1.1 POST client: just enough for the ingest API, without pulling a full
//! client stack into the build. `http://` and `https://` (rustls, Mozilla's roots from
//! `webpki-roots`).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{EventsError, HttpError};

/// Largest response body read; ingest answers are tiny.
const MAX_RESPONSE: usize = 1024 * 1024;

/// A parsed `upload-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub(crate) fn parse(url: &str) -> Result<Url, EventsError> {
        let bad = |reason| EventsError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        let default_port = if tls { 443 } else { 80 };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing or unsupported host"));
        }
        let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
            let (h, after) = stripped
                .split_once(']')
                .ok_or_else(|| bad("bad IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("bad host")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        Ok(Url {
            tls,
            host,
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A response: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `body` with the given extra headers; one connection per request (`Connection: close`).
pub(crate) async fn post(
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    tokio::time::timeout(timeout, post_inner(url, headers, body))
        .await
        .map_err(|_| HttpError::Timeout)?
}

async fn post_inner(
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let tcp = TcpStream::connect((url.host.as_str(), url.port)).await?;
    if !url.tls {
        return exchange(tcp, url, headers, body).await;
    }
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| HttpError::Protocol("host is not a valid TLS server name"))?;
    let tls = tls_connector()?.connect(name, tcp).await?;
    exchange(tls, url, headers, body).await
}

/// A TLS client trusting Mozilla's root store (`webpki-roots`), so no system CA files are
/// needed. Built per request: batches are seconds apart, so resumption would save little.
fn tls_connector() -> Result<tokio_rustls::TlsConnector, HttpError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| HttpError::Protocol("TLS setup failed"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, HttpError> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\n",
        url.path,
        url.host_header()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            // Servers that close without TLS close_notify: treat as end of data.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(HttpError::Protocol("response too large"));
        }
        if let Some(resp) = parse_response(&raw)? {
            return Ok(resp);
        }
    }
    parse_complete(&raw)
}

/// A response parsed once enough bytes have arrived (`None`: need more).
fn parse_response(raw: &[u8]) -> Result<Option<Response>, HttpError> {
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head =
        std::str::from_utf8(&raw[..end]).map_err(|_| HttpError::Protocol("non-UTF-8 header"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Protocol("not an HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Protocol("bad status code"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Protocol("bad Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let body = &raw[end + 4..];
    if chunked {
        return Ok(decode_chunked(body)?.map(|body| Response { status, body }));
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(Some(Response {
            status,
            body: body[..len].to_vec(),
        })),
        Some(_) => Ok(None),
        // Without a length the body runs to the end of the connection.
        None => Ok(None),
    }
}

/// At EOF: whatever was received must be a full response, or a body delimited by close.
fn parse_complete(raw: &[u8]) -> Result<Response, HttpError> {
    if let Some(resp) = parse_response(raw)? {
        return Ok(resp);
    }
    let Some(end) = find(raw, b"\r\n\r\n") else {
        return Err(HttpError::Protocol(
            "connection closed before the response header",
        ));
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if head.contains("content-length:") || head.contains("chunked") {
        return Err(HttpError::Protocol("connection closed mid-body"));
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Protocol("bad status code"))?;
    Ok(Response {
        status,
        body: raw[end + 4..].to_vec(),
    })
}

fn decode_chunked(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(data, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..line_end])
            .map_err(|_| HttpError::Protocol("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Protocol("bad chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = Url::parse("http://127.0.0.1:8080/api/v1/ingest/events").unwrap();
        assert_eq!(
            u,
            Url {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/api/v1/ingest/events".into()
            }
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = Url::parse("http://[::1]/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header()),
            ("::1", 80, "[::1]".to_owned())
        );
        let u = Url::parse("https://api.sparkpost.com/api/v1/ingest/events").unwrap();
        assert!(u.tls);
        assert_eq!(
            (u.port, u.host_header()),
            (443, "api.sparkpost.com".to_owned())
        );
        assert_eq!(
            Url::parse("https://h:8443").unwrap().host_header(),
            "h:8443"
        );
        assert!(Url::parse("ftp://x/").is_err());
    }

    #[test]
    fn parses_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok")
                .unwrap()
                .is_none()
        );
        let r = parse_response(
            b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, &b"abc"[..]));
        let r = parse_complete(b"HTTP/1.0 401 Unauthorized\r\n\r\nno").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (401, &b"no"[..]));
        assert!(parse_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").is_err());
    }
}
