//! Read-only views: status, queues, domains, messages. Shapes follow PowerMTA's JSON
//! (`{"data": {...}}`) so existing monitoring can be pointed at petrel with few changes.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{ApiError, Mgmt};

pub(crate) async fn status(State(m): State<Mgmt>) -> Json<Value> {
    let s = m.inbound();
    let spool = m.spool.stats();
    let started = m
        .started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Json(json!({ "data": {
        "status": "running",
        "product": { "name": "petrel", "version": env!("CARGO_PKG_VERSION") },
        "hostName": m.config.get().primary_host_name(),
        "startupTime": started,
        "uptimeSeconds": m.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
        "traffic": { "total": { "in": {
            "msg": s.messages,
            "rcp": s.recipients,
        }}},
        "conn": { "smtpIn": { "total": s.connections } },
        "rejections": s.rejections,
        "spool": serde_json::to_value(&spool).unwrap_or(Value::Null),
        "delivery": m.engine.as_ref().map(|e| serde_json::to_value(e.stats()).unwrap_or(Value::Null)),
        "counters": m.counters_json(),
    }}))
}

pub(crate) async fn queues(State(m): State<Mgmt>) -> Json<Value> {
    if let Some(engine) = &m.engine {
        // With delivery running, the engine's view adds state: paused, connections, retry.
        let summary = m.spool.queue_summary();
        let queues: Vec<Value> = engine
            .queues()
            .into_iter()
            .map(|q| {
                let (msgs, bytes) = summary
                    .iter()
                    .find(|s| s.domain == q.key.domain && s.vmta == q.key.vmta)
                    .map_or((0, 0), |s| (s.messages, s.bytes));
                let retry = q
                    .retry_until
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs());
                json!({
                    "queue": q.key.to_string(),
                    "domain": q.key.domain,
                    "vmta": q.key.vmta,
                    "rcp": q.recipients,
                    "msg": msgs,
                    "kb": bytes.div_ceil(1024),
                    "conn": q.connections,
                    "paused": q.paused,
                    "mode": if q.backoff_since.is_some() { "backoff" } else { "normal" },
                    "backoffSince": q.backoff_since.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                    "retry": retry.is_some(),
                    "retryUntil": retry,
                    "lastError": q.last_error,
                })
            })
            .filter(|q| q["rcp"].as_u64() != Some(0) || q["paused"] == true || q["mode"] == "backoff")
            .collect();
        return Json(json!({ "data": { "queues": queues } }));
    }
    let queues: Vec<Value> = m
        .spool
        .queue_summary()
        .into_iter()
        .map(|q| {
            json!({
                "queue": format!("{}/{}", q.domain, q.vmta),
                "domain": q.domain,
                "vmta": q.vmta,
                "rcp": q.recipients,
                "msg": q.messages,
                "kb": q.bytes.div_ceil(1024),
                "paused": false,
                "mode": "normal",
            })
        })
        .collect();
    Json(json!({ "data": { "queues": queues } }))
}

pub(crate) async fn domains(State(m): State<Mgmt>) -> Json<Value> {
    let mut by_domain: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for q in m.spool.queue_summary() {
        let e = by_domain.entry(q.domain).or_default();
        e.0 += q.recipients;
        e.1 += q.messages;
        e.2 += q.bytes;
    }
    let mut rows: Vec<Value> = by_domain
        .into_iter()
        .map(|(d, (r, msgs, b))| json!({ "domain": d, "rcp": r, "msg": msgs, "kb": b.div_ceil(1024) }))
        .collect();
    rows.sort_by(|a, b| b["rcp"].as_u64().cmp(&a["rcp"].as_u64()));
    Json(json!({ "data": { "domains": rows } }))
}

#[derive(Deserialize)]
pub(crate) struct MessagesQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default, rename = "jobId")]
    job_id: Option<String>,
}

pub(crate) async fn messages(
    State(m): State<Mgmt>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if limit > 100_000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit must be at most 100000",
        ));
    }
    let mut rows = Vec::new();
    for id in m.spool.ids() {
        if rows.len() >= limit {
            break;
        }
        let Some(env) = m.spool.envelope(id) else {
            continue;
        };
        if q.job_id
            .as_ref()
            .is_some_and(|j| env.job_id.as_ref() != Some(j))
        {
            continue;
        }
        rows.push(json!({
            "id": id.to_string(),
            "orig": env.mail_from,
            "rcpts": env.recipients.iter().filter(|r| !r.done).map(|r| r.address.clone()).collect::<Vec<_>>(),
            "vmta": env.vmta,
            "jobId": env.job_id,
            "envId": env.env_id,
            "authUser": env.auth_user,
            "receivedAtUnixMs": env.received_at_unix_ms,
        }));
    }
    Ok(Json(json!({ "data": { "messages": rows } })))
}

#[derive(Deserialize)]
pub(crate) struct BodyQuery {
    id: String,
}

/// The spooled message exactly as it will be delivered (after petrel's header edits), so an
/// operator can see what a client really sent.
pub(crate) async fn message_body(
    State(m): State<Mgmt>,
    Query(q): Query<BodyQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let id: petrel_spool::MessageId = q.id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("`{}` is not a message id", q.id),
        )
    })?;
    let spool = m.spool.clone();
    let body = tokio::task::spawn_blocking(move || spool.read_body(id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            petrel_spool::SpoolError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "message/rfc822")], body).into_response())
}
