//! The HTTP API: SparkPost's ingest endpoint and the two event searches.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::query::{BatchQuery, EventQuery};
use crate::store::{IngestError, SignalsStore, StoreError, MAX_BATCH_BYTES};
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
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({ "errors": [ { "message": self.to_string() } ] });
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

type Shared = Arc<SignalsStore>;

/// Builds the service's router. Mount it on its own listener or merge it into another
/// router; it carries its own state.
pub fn router(store: Arc<SignalsStore>) -> Router {
    Router::new()
        .route("/api/v1/ingest/events", post(ingest))
        .route("/api/v1/events/ingest", get(search_batches))
        .route("/api/v1/events/message", get(search_events))
        // The body size is checked by hand so that the 413 carries SparkPost's JSON envelope.
        .layer(DefaultBodyLimit::disable())
        .with_state(store)
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

async fn authorize(store: &Shared, headers: &HeaderMap, need: Permission) -> Result<(), ApiError> {
    let key = api_key(headers).ok_or(ApiError::Unauthorized)?;
    let store = store.clone();
    let perms = tokio::task::spawn_blocking(move || store.key_permissions(&key))
        .await
        .map_err(|_| ApiError::Internal)??
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
    let outcome = tokio::task::spawn_blocking(move || store.ingest(&bytes))
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
    let q = EventQuery::from_pairs(pairs).map_err(ApiError::BadRequest)?;
    let page = tokio::task::spawn_blocking(move || store.search_events(&q))
        .await
        .map_err(|_| ApiError::Internal)??;
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
    let page = tokio::task::spawn_blocking(move || store.search_batches(&q))
        .await
        .map_err(|_| ApiError::Internal)??;
    Ok(Json(json!({
        "results": page.results,
        "total_count": page.total_count,
        "links": next_link("/api/v1/events/ingest", raw.as_deref(), page.next_cursor),
    })))
}
