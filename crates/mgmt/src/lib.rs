//! The management HTTP API on `http-mgmt-port`: JSON views of the running daemon that the
//! `petrel` CLI (and any monitoring) reads, guarded by `http-access`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod control;
mod metrics;
mod suppression;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use petrel_listener::Context;
use petrel_suppression::SuppressionList;
use serde_json::json;

pub use access::{AccessLevel, AccessRule};
pub use metrics::{Metric, MetricKind, MetricSource};

use metrics::Section;

/// A function the API calls for `reload`: re-reads the configuration file and applies it,
/// or explains why not. Supplied by the binary, which knows where the file is.
pub type Reloader = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct Mgmt {
    ctx: Arc<Context>,
    engine: Option<petrel_delivery::Engine>,
    access: Arc<Vec<AccessRule>>,
    started: SystemTime,
    reloader: Option<Reloader>,
    suppression: Option<Arc<SuppressionList>>,
    /// Sections the binary adds (`signals_upload`, `tracking`, `returns`, …), in order.
    sources: Arc<Vec<(&'static str, MetricSource)>>,
}

/// An error answer: an HTTP status with a JSON body `{"error": "..."}`, so scripts never have
/// to parse HTML.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// An error with the given status and explanation.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl Mgmt {
    /// Builds the API state. `access` is the `http-access` list; empty means loopback only.
    pub fn new(
        ctx: Arc<Context>,
        engine: Option<petrel_delivery::Engine>,
        access: Vec<AccessRule>,
        reloader: Option<Reloader>,
    ) -> Self {
        Mgmt {
            ctx,
            engine,
            access: Arc::new(access),
            started: SystemTime::now(),
            reloader,
            suppression: None,
            sources: Arc::new(Vec::new()),
        }
    }

    /// Serves `/suppressions` from `list`. Without it those endpoints answer 404
    /// "suppression is not enabled", so a daemon built without a list says so plainly.
    pub fn with_suppression(mut self, list: Arc<SuppressionList>) -> Self {
        self.suppression = Some(list);
        self
    }

    /// Adds a section to `/status` and `/metrics` (as `petrel_<section>_…`). The daemon
    /// registers one per optional part it runs, so an absent part shows no section at all.
    pub fn with_metrics(mut self, section: &'static str, source: MetricSource) -> Self {
        Arc::make_mut(&mut self.sources).push((section, source));
        self
    }

    /// Every section's values now: the listener, delivery, spool and suppression list this
    /// crate knows, then the registered sources.
    fn sections(&self) -> Vec<Section> {
        use std::sync::atomic::Ordering::Relaxed;
        let l = &self.ctx.stats;
        let mut out = vec![Section {
            name: "smtp_in",
            metrics: vec![
                Metric::counter(
                    "connections",
                    "SMTP connections accepted.",
                    l.connections.load(Relaxed),
                ),
                Metric::counter(
                    "messages",
                    "Messages accepted with 250 (durable in the spool).",
                    l.messages.load(Relaxed),
                ),
                Metric::counter(
                    "recipients",
                    "Recipients of the accepted messages.",
                    l.recipients.load(Relaxed),
                ),
                Metric::counter(
                    "rejections",
                    "Commands or messages refused with 4xx/5xx.",
                    l.rejections.load(Relaxed),
                ),
            ],
        }];
        if let Some(e) = &self.engine {
            let d = e.stats();
            out.push(Section {
                name: "delivery",
                metrics: vec![
                    Metric::counter("delivered", "Recipients delivered.", d.delivered),
                    Metric::counter(
                        "bounced",
                        "Recipients bounced (in-band or expired).",
                        d.bounced,
                    ),
                    Metric::counter(
                        "deferred",
                        "Temporary failures (recipient stays queued).",
                        d.deferred,
                    ),
                    Metric::counter(
                        "connections",
                        "Outbound SMTP connections opened.",
                        d.connections,
                    ),
                    Metric::counter("dsns", "Delivery status notifications generated.", d.dsns),
                ],
            });
        }
        let sp = self.ctx.spool.stats();
        out.push(Section {
            name: "spool",
            metrics: vec![
                Metric::gauge("messages", "Messages in the spool.", sp.messages),
                Metric::gauge(
                    "recipients",
                    "Recipients not yet delivered or bounced.",
                    sp.recipients,
                ),
                Metric::gauge(
                    "bytes",
                    "Body bytes of the messages in the spool.",
                    sp.bytes,
                ),
                Metric::gauge(
                    "disk_bytes",
                    "Size of the spool's segment files.",
                    sp.disk_bytes,
                ),
                Metric::counter(
                    "fsyncs",
                    "fdatasync calls (group commit: records per fsync is the batch size).",
                    sp.fsyncs,
                ),
                Metric::counter(
                    "records_written",
                    "Records appended to the spool.",
                    sp.records_written,
                ),
            ],
        });
        if let Some(list) = &self.suppression {
            out.push(Section {
                name: "suppression",
                metrics: vec![Metric::gauge(
                    "entries",
                    "Addresses on the suppression list (all subaccounts).",
                    list.len() as u64,
                )],
            });
        }
        for (name, source) in self.sources.iter() {
            out.push(Section {
                name,
                metrics: source(),
            });
        }
        out
    }

    /// `/status`'s `counters`: `{"section": {"name": value, …}, …}`.
    pub(crate) fn counters_json(&self) -> serde_json::Value {
        self.sections()
            .iter()
            .map(|s| (s.name.to_string(), metrics::section_json(&s.metrics)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// The router with every endpoint, and the MTA monitor's pages (`/`, `/ui/…`), which
    /// read these endpoints in-process.
    pub fn router(self) -> Router {
        let signals = self
            .ctx
            .config()
            .signals_service
            .as_ref()
            .map(|s| s.listener);
        let api = Router::new()
            .route("/status", get(views::status))
            .route("/access", get(access))
            .route("/metrics", get(prometheus))
            .route("/queues", get(views::queues))
            .route("/domains", get(views::domains))
            .route("/messages", get(views::messages))
            .route("/messageBody", get(views::message_body))
            .route("/reload", post(reload))
            .route("/jobs", get(control::jobs))
            .route("/vmtas", get(control::vmtas))
            .route("/pauseQueue", post(control::pause_queue))
            .route("/resumeQueue", post(control::resume_queue))
            .route("/pauseJob", post(control::pause_job))
            .route("/resumeJob", post(control::resume_job))
            .route("/schedule", post(control::schedule))
            .route("/setQueueMode", post(control::set_queue_mode))
            .route("/delete", post(control::delete))
            .route(
                "/suppressions",
                get(suppression::list)
                    .post(suppression::add)
                    .delete(suppression::remove),
            )
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self);
        petrel_pages::with_monitor(api, petrel_pages::MonitorOptions { signals })
    }

    /// Serves the API on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }
}

/// `/metrics`: every section in Prometheus's text format.
async fn prometheus(State(m): State<Mgmt>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::prometheus_text(&m.sections()),
    )
        .into_response()
}

/// `http-access`: first matching rule wins; no match (or `none`) is 403.
async fn guard(
    State(m): State<Mgmt>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let level = access::level_for(&m.access, peer.ip());
    let needed = if req.method() == axum::http::Method::GET {
        AccessLevel::Monitor
    } else {
        AccessLevel::Operator
    };
    if level < needed {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not use this endpoint (http-access gives {level:?})",
                peer.ip()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// `/access`: what `http-access` lets the asking client do (the monitor shows its command
/// buttons only when `control` is true; the commands themselves are checked by `guard`).
async fn access(
    State(m): State<Mgmt>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Json<serde_json::Value> {
    let level = access::level_for(&m.access, peer.ip());
    Json(json!({ "data": {
        "client": peer.ip().to_string(),
        "level": format!("{level:?}").to_lowercase(),
        "control": level >= AccessLevel::Operator,
    }}))
}

async fn reload(State(m): State<Mgmt>) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(reloader) = &m.reloader else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "reload is not available",
        ));
    };
    match reloader() {
        Ok(msg) => Ok(Json(json!({ "data": { "result": msg } }))),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}
