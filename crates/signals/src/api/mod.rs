//! The HTTP APIs: SparkPost's ingest endpoint, the two event searches, the Metrics API and
//! the Signals API. This layer parses and validates parameters and shapes SparkPost's
//! answers and error envelopes; it reads and writes only through [`AnalyticsStore`].

mod metrics;
mod params;
mod signals;
mod timezone;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use petrel_signals_model::traps::TrapList;

use crate::ingest::{IngestError, MAX_BATCH_BYTES};
use crate::query::{BatchQuery, EventQuery};
use crate::store::{AnalyticsStore, StoreError};
use crate::Permission;

/// An error answer in SparkPost's envelope `{"errors":[{"message":"..."}]}`, which the
/// reference upload clients parse (they log `errors[0].message`).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no key or an unknown key.
    #[error("Unauthorized.")]
    Unauthorized,
    /// 403: the key lacks the permission this endpoint needs.
    #[error("Forbidden: API key lacks the {0} permission.")]
    Forbidden(&'static str),
    /// 400: malformed request (bad header or query parameter).
    #[error("{0}")]
    BadRequest(String),
    /// 400 naming the parameter at fault, SparkPost's Metrics API form
    /// `{"errors":[{"message":…,"param":…}]}`, with `validationErrors` for `query_filters`.
    #[error("{message}")]
    BadParam {
        /// What is wrong.
        message: String,
        /// The query parameter.
        param: &'static str,
        /// Schema violations of `query_filters`.
        validation_errors: Vec<String>,
    },
    /// 404: no such report.
    #[error("Resource could not be found.")]
    NotFound,
    /// 413: batch over the size limit.
    #[error(
        "Request entity too large: batches are limited to {MAX_BATCH_BYTES} bytes uncompressed."
    )]
    TooLarge,
    /// 500: the store failed; clients should retry later.
    #[error("Internal server error.")]
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut error = json!({ "message": self.to_string() });
        if let ApiError::BadParam {
            param,
            validation_errors,
            ..
        } = &self
        {
            error["param"] = json!(param);
            if !validation_errors.is_empty() {
                error["validationErrors"] = json!(validation_errors);
            }
        }
        let body = json!({ "errors": [error] });
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("signals store: {e}");
        ApiError::Internal
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooLarge => ApiError::TooLarge,
            IngestError::Store(s) => s.into(),
        }
    }
}

/// What the handlers share: the store and the service's settings.
pub(crate) struct Service {
    pub store: Arc<dyn AnalyticsStore>,
    pub traps: TrapList,
}

type Shared = Arc<Service>;

/// The settings of the service beyond its store.
#[derive(Debug, Clone, Default)]
pub struct ServiceOptions {
    /// The operator's spam-trap list (`spam-trap-file`); typo domains are always detected.
    pub traps: TrapList,
}

/// Builds the service's router over `store`. Mount it on its own listener or merge it into
/// another router; it carries its own state.
pub fn router(store: Arc<dyn AnalyticsStore>, options: ServiceOptions) -> Router {
    let state = Arc::new(Service {
        store,
        traps: options.traps,
    });
    Router::new()
        .route("/api/v1/ingest/events", post(ingest))
        .route("/api/v1/events/ingest", get(search_batches))
        .route("/api/v1/events/message", get(search_events))
        .merge(metrics::routes())
        .merge(signals::routes())
        // The body size is checked by hand so that the 413 carries SparkPost's JSON envelope.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Runs a store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Shared,
    f: impl FnOnce(&dyn AnalyticsStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(state.store.as_ref()))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(ApiError::from)
}

/// Reads the key from `Authorization: <key>` (SparkPost's form) or HTTP Basic with the key as
/// user name.
fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(b64) = value.strip_prefix("Basic ") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        return Some(text.split(':').next().unwrap_or_default().to_string());
    }
    Some(value.to_string())
}

pub(crate) async fn authorize(
    state: &Shared,
    headers: &HeaderMap,
    need: Permission,
) -> Result<(), ApiError> {
    let key = api_key(headers).ok_or(ApiError::Unauthorized)?;
    let perms = blocking(state, move |s| s.key_permissions(&key))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if perms.contains(&need) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(need.as_str()))
    }
}

async fn ingest(
    State(store): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    authorize(&store, &headers, Permission::Ingest).await?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Err(ApiError::BadRequest(
            "Content-Encoding: gzip is required".into(),
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_BATCH_BYTES)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let outcome = tokio::task::spawn_blocking(move || {
        let batch = crate::ingest::prepare(&bytes, &store.traps)?;
        store.store.ingest(batch).map_err(IngestError::Store)
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    Ok(Json(json!({ "results": { "id": outcome.id } })))
}

/// The `links.next` URL: the same query with the cursor replaced.
fn next_link(path: &str, raw: Option<&str>, cursor: Option<String>) -> Value {
    let Some(cursor) = cursor else {
        return json!({});
    };
    let mut parts: Vec<&str> = raw
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .collect();
    let c = format!("cursor={cursor}");
    parts.push(&c);
    json!({ "next": format!("{path}?{}", parts.join("&")) })
}

async fn search_events(
    State(store): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&store, &headers, Permission::Read).await?;
    let mut q = EventQuery::from_pairs(pairs).map_err(ApiError::BadRequest)?;
    let page = blocking(&store, move |s| {
        q.resolve_keywords(|f| s.facet_values(f))?;
        s.search_events(&q)
    })
    .await?;
    let results: Vec<Value> = page
        .results
        .iter()
        .map(|j| crate::event::public_form(j))
        .collect();
    Ok(Json(json!({
        "results": results,
        "total_count": page.total_count,
        "links": next_link("/api/v1/events/message", raw.as_deref(), page.next_cursor),
    })))
}

async fn search_batches(
    State(store): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    authorize(&store, &headers, Permission::Read).await?;
    let q = BatchQuery::from_pairs(pairs).map_err(ApiError::BadRequest)?;
    let page = blocking(&store, move |s| s.search_batches(&q)).await?;
    Ok(Json(json!({
        "results": page.results,
        "total_count": page.total_count,
        "links": next_link("/api/v1/events/ingest", raw.as_deref(), page.next_cursor),
    })))
}
