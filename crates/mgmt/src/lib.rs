//! The management HTTP API on `http-mgmt-port`: JSON views of the running daemon that the
//! `petrel` CLI (and any monitoring) reads, guarded by `http-access`.

mod access;
mod control;
mod metrics;
mod origin;
mod suppression;
mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use petrel_config::LiveConfig;
use petrel_mgmt_api::{paths, Access, Data, ErrorBody, ReloadResult};
use petrel_spool::Spool;
use petrel_suppression::SuppressionList;

pub use access::{AccessLevel, AccessRule};
pub use metrics::{Metric, MetricKind, MetricSource};

use metrics::Section;

/// What the API calls for `reload` (`true`: apply) and `checkConfig` (`false`: only say what
/// applying would do): re-reads the configuration file, or explains why it cannot be used.
/// Supplied by the binary, which knows where the file is.
pub type Reloader = Arc<dyn Fn(bool) -> Result<ReloadResult, String> + Send + Sync>;

/// The SMTP listener's traffic since start, for `/status` and the `smtp_in` section.
#[derive(Debug, Default, Clone, Copy)]
pub struct Inbound {
    /// Connections accepted.
    pub connections: u64,
    /// Messages accepted with 250 (durable in the spool).
    pub messages: u64,
    /// Recipients of those messages.
    pub recipients: u64,
    /// Commands or messages refused with 4xx/5xx.
    pub rejections: u64,
}

/// Reads the listener's counters now (supplied by the daemon, which runs the listener).
pub type InboundSource = Arc<dyn Fn() -> Inbound + Send + Sync>;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct Mgmt {
    config: LiveConfig,
    spool: Spool,
    inbound: Option<InboundSource>,
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
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

impl Mgmt {
    /// Builds the API state over the daemon's configuration and spool. `access` is the
    /// `http-access` list; empty means loopback only.
    pub fn new(
        config: LiveConfig,
        spool: Spool,
        engine: Option<petrel_delivery::Engine>,
        access: Vec<AccessRule>,
        reloader: Option<Reloader>,
    ) -> Self {
        Mgmt {
            config,
            spool,
            inbound: None,
            engine,
            access: Arc::new(access),
            started: SystemTime::now(),
            reloader,
            suppression: None,
            sources: Arc::new(Vec::new()),
        }
    }

    /// Shows the SMTP listener's traffic (`/status`, the `smtp_in` section) read by `source`.
    pub fn with_inbound(mut self, source: InboundSource) -> Self {
        self.inbound = Some(source);
        self
    }

    /// The listener's traffic now (zero without a listener).
    pub(crate) fn inbound(&self) -> Inbound {
        self.inbound.as_ref().map(|f| f()).unwrap_or_default()
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
        let l = self.inbound();
        let mut out = vec![Section {
            name: "smtp_in",
            metrics: vec![
                Metric::counter("connections", "SMTP connections accepted.", l.connections),
                Metric::counter(
                    "messages",
                    "Messages accepted with 250 (durable in the spool).",
                    l.messages,
                ),
                Metric::counter(
                    "recipients",
                    "Recipients of the accepted messages.",
                    l.recipients,
                ),
                Metric::counter(
                    "rejections",
                    "Commands or messages refused with 4xx/5xx.",
                    l.rejections,
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
        let sp = self.spool.stats();
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
    pub(crate) fn counters(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.sections()
            .iter()
            .map(|s| {
                let values = s.metrics.iter().map(|m| (m.name.to_string(), m.value));
                (s.name.to_string(), values.collect())
            })
            .collect()
    }

    /// The router with every endpoint, and the MTA monitor's pages (`/`, `/ui/…`), which
    /// read these endpoints in-process.
    pub fn router(self) -> Router {
        let signals = self
            .config
            .get()
            .signals_service
            .as_ref()
            .map(|s| s.listener);
        let api = Router::new()
            .route(paths::STATUS, get(views::status))
            .route(paths::ACCESS, get(access))
            .route(paths::METRICS, get(prometheus))
            .route(paths::QUEUES, get(views::queues))
            .route(paths::DOMAINS, get(views::domains))
            .route(paths::MESSAGES, get(views::messages))
            .route(paths::MESSAGE_BODY, get(views::message_body))
            .route(paths::RELOAD, post(reload))
            .route(paths::CHECK_CONFIG, get(check_config))
            .route(paths::JOBS, get(control::jobs))
            .route(paths::VMTAS, get(control::vmtas))
            .route(paths::PAUSE_QUEUE, post(control::pause_queue))
            .route(paths::RESUME_QUEUE, post(control::resume_queue))
            .route(paths::PAUSE_JOB, post(control::pause_job))
            .route(paths::RESUME_JOB, post(control::resume_job))
            .route(paths::SCHEDULE, post(control::schedule))
            .route(paths::SET_QUEUE_MODE, post(control::set_queue_mode))
            .route(paths::DELETE, post(control::delete))
            .route(
                paths::SUPPRESSIONS,
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
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        limits: petrel_http_serve::Limits,
    ) -> std::io::Result<()> {
        let gate = petrel_http_serve::Gate::new(limits, None);
        let app = self.router();
        petrel_http_serve::serve(
            "management API",
            listener,
            None,
            gate,
            app,
            std::future::pending(),
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

/// The request's `Host` and `Origin` (see `origin.rs`), then `http-access`: first matching
/// rule wins; no match (or `none`) is 403.
async fn guard(
    State(m): State<Mgmt>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    // Before `http-access`: a browser page (CSRF, DNS rebinding) comes from a loopback peer.
    if let Err(why) = origin::check(req.method(), req.headers(), &m.config.get().host_name) {
        return ApiError::new(StatusCode::FORBIDDEN, why).into_response();
    }
    let level = access::level_for(&m.access, peer.ip());
    let needed = access::needed_for(req.method(), req.uri().path());
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
) -> Json<Data<Access>> {
    let level = access::level_for(&m.access, peer.ip());
    Json(Data {
        data: Access {
            client: peer.ip().to_string(),
            level: format!("{level:?}").to_lowercase(),
            control: level >= AccessLevel::Operator,
        },
    })
}

/// `reload`: re-read the configuration file and apply it; the answer names the changes
/// that take effect only after a restart.
async fn reload(State(m): State<Mgmt>) -> Result<Json<Data<ReloadResult>>, ApiError> {
    run_reloader(&m, true)
}

/// `checkConfig`: what `reload` would do with the daemon's configuration file now, without
/// applying it.
async fn check_config(State(m): State<Mgmt>) -> Result<Json<Data<ReloadResult>>, ApiError> {
    run_reloader(&m, false)
}

fn run_reloader(m: &Mgmt, apply: bool) -> Result<Json<Data<ReloadResult>>, ApiError> {
    let Some(reloader) = &m.reloader else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "reload is not available: the daemon runs without a configuration file",
        ));
    };
    match reloader(apply) {
        Ok(data) => Ok(Json(Data { data })),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}
