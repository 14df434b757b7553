//! The management HTTP API on `http-mgmt-port`: JSON views of the running daemon that the
//! `petrel` CLI (and any monitoring) reads, guarded by `http-access`.
#![forbid(unsafe_code)]

mod access;
mod control;
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
        }
    }

    /// Serves `/suppressions` from `list`. Without it those endpoints answer 404
    /// "suppression is not enabled", so a daemon built without a list says so plainly.
    pub fn with_suppression(mut self, list: Arc<SuppressionList>) -> Self {
        self.suppression = Some(list);
        self
    }

    /// The router with every endpoint.
    pub fn router(self) -> Router {
        Router::new()
            .route("/status", get(views::status))
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
            .route("/delete", post(control::delete))
            .route(
                "/suppressions",
                get(suppression::list)
                    .post(suppression::add)
                    .delete(suppression::remove),
            )
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
            .layer(middleware::from_fn_with_state(self.clone(), guard))
            .with_state(self)
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
