//! Shared helpers: a tracking host on a loopback port with its own event spool, tokens, a
//! tiny HTTP/1.1 client over raw TCP (or TLS), and the events written to the spool.
#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use petrel_events::{EventSpool, SpoolConfig};
use petrel_suppression::SuppressionList;
use petrel_tracking::{Action, TokenData, TokenKeys};
use petrel_tracking_host::{serve, HostConfig, TrackingHost};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &[u8] = b"tracking-host-test-secret-0001";
pub const MESSAGE_ID: &str = "0123456789abcdef0042";
pub const RECIPIENT: &str = "Fred.Smith@Example.COM";
pub const CUSTOMER_ID: u64 = 4242;
pub const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
pub const NO_CACHE: &str = "no-cache, no-store, must-revalidate, private, max-age=0";

pub fn keys() -> TokenKeys {
    TokenKeys::new(1, SECRET).unwrap()
}

/// Far in the future (2033).
pub const EXPIRES: u64 = 2_000_000_000;

pub fn open_token(action: Action) -> String {
    keys().sign(&TokenData {
        message_id: MESSAGE_ID.into(),
        recipient: RECIPIENT.into(),
        action,
        url: None,
        link_name: None,
        unsubscribe: None,
        expires_unix: EXPIRES,
    })
}

pub fn click_token(url: &str, link_name: Option<&str>) -> String {
    keys().sign(&TokenData {
        message_id: MESSAGE_ID.into(),
        recipient: RECIPIENT.into(),
        action: Action::Click { link_index: 3 },
        url: Some(url.into()),
        link_name: link_name.map(String::from),
        unsubscribe: None,
        expires_unix: EXPIRES,
    })
}

/// A wrapped link marked `data-msys-unsubscribe="1"` in a message of `subaccount`.
pub fn unsubscribe_token(url: &str, subaccount: u64) -> String {
    keys().sign(&TokenData {
        message_id: MESSAGE_ID.into(),
        recipient: RECIPIENT.into(),
        action: Action::Click { link_index: 4 },
        url: Some(url.into()),
        link_name: None,
        unsubscribe: Some(subaccount),
        expires_unix: EXPIRES,
    })
}

/// A running tracking host on 127.0.0.1 with its spool in a temporary directory.
pub struct Harness {
    pub addr: SocketAddr,
    pub host: Arc<TrackingHost>,
    pub spool: Arc<EventSpool>,
    /// The suppression list unsubscribe clicks add to (SQLite in `dir`).
    pub suppression: Arc<SuppressionList>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(None).await
    }

    pub async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Harness {
        Harness::start_configured(tls, |_| {}).await
    }

    /// Like [`Harness::start_with`], with `adjust` applied to the host's configuration.
    pub async fn start_configured(
        tls: Option<Arc<rustls::ServerConfig>>,
        adjust: impl FnOnce(&mut HostConfig),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(
            EventSpool::open(SpoolConfig {
                max_file_age: Duration::from_millis(200),
                ..SpoolConfig::new(dir.path().join("events"))
            })
            .unwrap(),
        );
        let mut config = HostConfig {
            customer_id: Some(CUSTOMER_ID),
            ..HostConfig::new(keys())
        };
        adjust(&mut config);
        let suppression =
            Arc::new(SuppressionList::open(&dir.path().join("suppression.db")).unwrap());
        let host = Arc::new(TrackingHost::new(
            config,
            spool.clone(),
            Some(suppression.clone()),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tls, host.clone(), async {
            let _ = stopped.await;
        }));
        Harness {
            addr,
            host,
            spool,
            suppression,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// One request on a fresh connection.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.request("GET", path, headers).await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let mut c = HttpClient::connect(self.addr).await;
        c.send(method, path, headers).await
    }

    /// Stops the server (it must shut down cleanly), closes the spool and returns the
    /// engagement events written, in order.
    pub async fn finish(mut self) -> Vec<Value> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server did not shut down")
                .unwrap()
                .expect("serve returned an error");
        }
        self.spool.close().unwrap();
        read_events(&self.dir.path().join("events"))
    }
}

/// Every line of every closed `sp1-*.json` file, unwrapped to the inner event object (of
/// whichever grouping: `track_event`, `unsubscribe_event`).
pub fn read_events(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("sp1-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    let mut events = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let inner = v["msys"].as_object().and_then(|m| m.values().next());
            events.push(inner.cloned().unwrap_or_default());
        }
    }
    events
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error message of a 4xx answer, checking the body's shape on the way.
    pub fn error_message(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let v: Value = serde_json::from_slice(&self.body).unwrap();
        let errors = v["errors"].as_array().expect("errors array");
        assert_eq!(errors.len(), 1, "{v}");
        errors[0]["message"].as_str().expect("message").to_string()
    }
}

/// A minimal HTTP/1.1 client on one keep-alive connection.
pub struct HttpClient<S> {
    stream: S,
    buf: Vec<u8>,
}

impl HttpClient<TcpStream> {
    pub async fn connect(addr: SocketAddr) -> Self {
        HttpClient::new(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpClient<S> {
    pub fn new(stream: S) -> Self {
        HttpClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its response (no body for HEAD, 1xx, 204 and 304).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: track.example\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(10),
            self.read_response(method == "HEAD"),
        )
        .await
        .expect("response timed out")
    }

    async fn read_response(&mut self, head_request: bool) -> HttpResponse {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let body_len = if head_request || status < 200 || status == 204 || status == 304 {
            0
        } else {
            len
        };
        while self.buf.len() < body_len {
            self.fill().await;
        }
        let body = self.buf.drain(..body_len).collect();
        HttpResponse {
            status,
            headers,
            body,
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-response");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Whether the server has nothing more to say: after a HEAD, no stray body bytes may
    /// follow the head.
    pub async fn nothing_pending(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut chunk = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(200), self.stream.read(&mut chunk)).await {
            Err(_) => true, // nothing arrived
            Ok(Ok(0)) => true,
            Ok(_) => false,
        }
    }
}
