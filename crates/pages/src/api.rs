//! The pages' only way to data: requests to the public HTTP APIs, made in-process through
//! the API's own router (no socket), with the same path and query string a curl user would
//! send. Each request is recorded so the page can show it as a curl command: every number
//! on a page can be reproduced outside the browser.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::web::CallView;

/// Largest API answer a page reads (an events page of 1,000 events is about 1 MB).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// How a request identifies its client to the API.
#[derive(Clone)]
pub enum Credential {
    /// The Signals APIs: the key, sent as `Authorization: <key>`.
    Key(String),
    /// The management API: the client's address, which `http-access` judges.
    Peer(SocketAddr),
}

/// A failed API request: the status and the API's own error message.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The API's status.
    pub status: StatusCode,
    /// `errors[0].message` (Signals APIs) or `error` (management API), else the status text.
    pub message: String,
    /// The parameter at fault, when the API names one.
    pub param: Option<String>,
}

/// A request made for the page being built.
pub struct Recorded {
    method: Method,
    path: String,
    status: u16,
    ms: f64,
}

/// One page view's client: the API router, who asks, and what was asked so far.
pub struct Client {
    router: Router,
    credential: Credential,
    /// The page request's `Host`, sent on each API request as a curl user's would be, so
    /// the API's own Host checks judge the page's requests as they judge curl's.
    host: Option<HeaderValue>,
    /// The requests made, in order.
    pub calls: Vec<Recorded>,
}

impl Client {
    /// A client for one page view, asking as the page's request (`page`: its headers).
    pub fn new(router: Router, credential: Credential, page: &HeaderMap) -> Client {
        Client {
            router,
            credential,
            host: page.get(header::HOST).cloned(),
            calls: Vec::new(),
        }
    }

    /// `GET path_and_query`, read as the API's answer type `T`.
    pub async fn get_as<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Failure> {
        let value = self.get(path).await?;
        typed(path, value)
    }

    /// `POST path_and_query`, read as the API's answer type `T`.
    pub async fn post_as<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, Failure> {
        let value = self.post(path).await?;
        typed(path, value)
    }

    /// `GET path_and_query`, parsed as JSON.
    pub async fn get(&mut self, path: &str) -> Result<Value, Failure> {
        self.send(Method::GET, path).await
    }

    /// `POST path_and_query` with an empty body (the management commands take their
    /// arguments in the query string).
    pub async fn post(&mut self, path: &str) -> Result<Value, Failure> {
        self.send(Method::POST, path).await
    }

    async fn send(&mut self, method: Method, path: &str) -> Result<Value, Failure> {
        let started = Instant::now();
        let mut req = Request::builder().method(method.clone()).uri(path);
        if let Some(host) = &self.host {
            req = req.header(header::HOST, host.clone());
        }
        match &self.credential {
            Credential::Key(key) => req = req.header(header::AUTHORIZATION, key.as_str()),
            Credential::Peer(addr) => req = req.extension(ConnectInfo(*addr)),
        }
        let req = req.body(Body::empty()).map_err(|e| Failure {
            status: StatusCode::BAD_REQUEST,
            message: format!("cannot build the request {path}: {e}"),
            param: None,
        })?;
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
            .await
            .unwrap_or_default();
        self.calls.push(Recorded {
            method,
            path: path.to_string(),
            status: status.as_u16(),
            ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return json.ok_or_else(|| Failure {
                status: StatusCode::BAD_GATEWAY,
                message: format!("{path} did not answer JSON"),
                param: None,
            });
        }
        let json = json.unwrap_or(Value::Null);
        let first = &json["errors"][0];
        let message = first["message"]
            .as_str()
            .or_else(|| json["error"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_string()
            });
        Err(Failure {
            status,
            message,
            param: first["param"].as_str().map(str::to_string),
        })
    }

    /// The requests made so far as curl commands against `base` (e.g.
    /// `http://127.0.0.1:8097`), with the key left as `$PETREL_KEY`.
    pub fn call_views(&self, base: &str) -> Vec<CallView> {
        self.calls
            .iter()
            .map(|c| {
                let auth = match &self.credential {
                    Credential::Key(_) => " -H \"Authorization: $PETREL_KEY\"",
                    Credential::Peer(_) => "",
                };
                let method = if c.method == Method::GET {
                    String::new()
                } else {
                    format!(" -X {}", c.method)
                };
                CallView {
                    curl: format!("curl -s{method}{auth} '{base}{}'", c.path),
                    outcome: format!("{} · {:.0} ms", c.status, c.ms),
                }
            })
            .collect()
    }
}

/// An answer as its type, or a failure naming the path whose answer did not fit.
fn typed<T: DeserializeOwned>(path: &str, value: Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|e| Failure {
        status: StatusCode::BAD_GATEWAY,
        message: format!("{path} answered in an unexpected shape: {e}"),
        param: None,
    })
}

/// `http://host` for curl commands, from the request's `Host` header.
pub fn base_url(headers: &axum::http::HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}
