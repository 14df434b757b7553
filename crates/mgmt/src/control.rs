//! Job and queue control (PowerMTA's `pause`, `resume`, `schedule`, `delete`) and the views
//! that need the delivery engine (`show jobs`, `show vmtas`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{ApiError, Mgmt};

type ApiResult = Result<Json<Value>, ApiError>;

fn engine(m: &Mgmt) -> Result<&petrel_delivery::Engine, ApiError> {
    m.engine.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the delivery engine is not running",
        )
    })
}

#[derive(Deserialize)]
pub(crate) struct QueueArg {
    queue: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ModeArgs {
    queue: Option<String>,
    mode: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct JobArg {
    #[serde(rename = "jobId")]
    job_id: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DeleteArgs {
    queue: Option<String>,
    #[serde(rename = "jobId")]
    job_id: Option<String>,
}

fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("parameter `{name}` is required"),
        )),
    }
}

pub(crate) async fn pause_queue(State(m): State<Mgmt>, Query(a): Query<QueueArg>) -> ApiResult {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.set_queue_paused(&q, true);
    Ok(Json(
        json!({ "data": { "result": format!("{n} queue(s) paused."), "matched": n } }),
    ))
}

pub(crate) async fn resume_queue(State(m): State<Mgmt>, Query(a): Query<QueueArg>) -> ApiResult {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.set_queue_paused(&q, false);
    Ok(Json(
        json!({ "data": { "result": format!("{n} queue(s) resumed."), "matched": n } }),
    ))
}

/// `set queue --mode=backoff|normal`.
pub(crate) async fn set_queue_mode(State(m): State<Mgmt>, Query(a): Query<ModeArgs>) -> ApiResult {
    let q = required(a.queue, "queue")?;
    let mode = required(a.mode, "mode")?;
    let backoff = match mode.to_ascii_lowercase().as_str() {
        "backoff" => true,
        "normal" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("`mode` must be `backoff` or `normal`, not `{other}`"),
            ))
        }
    };
    let n = engine(&m)?.set_queue_backoff(&q, backoff);
    Ok(Json(json!({ "data": {
        "result": format!("{n} queue(s) set to {} mode.", if backoff { "backoff" } else { "normal" }),
        "matched": n,
    } })))
}

pub(crate) async fn pause_job(State(m): State<Mgmt>, Query(a): Query<JobArg>) -> ApiResult {
    let j = required(a.job_id, "jobId")?;
    engine(&m)?.set_job_paused(&j, true);
    Ok(Json(json!({ "data": { "result": "paused job." } })))
}

pub(crate) async fn resume_job(State(m): State<Mgmt>, Query(a): Query<JobArg>) -> ApiResult {
    let j = required(a.job_id, "jobId")?;
    engine(&m)?.set_job_paused(&j, false);
    Ok(Json(json!({ "data": { "result": "resumed job." } })))
}

pub(crate) async fn schedule(State(m): State<Mgmt>, Query(a): Query<QueueArg>) -> ApiResult {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.schedule(&q);
    Ok(Json(
        json!({ "data": { "result": format!("{n} matching queue(s) scheduled."), "matched": n } }),
    ))
}

pub(crate) async fn delete(State(m): State<Mgmt>, Query(a): Query<DeleteArgs>) -> ApiResult {
    if a.queue.is_none() && a.job_id.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "delete needs `queue` or `jobId`",
        ));
    }
    let n = engine(&m)?
        .delete(a.queue.as_deref(), a.job_id.as_deref())
        .await;
    Ok(Json(
        json!({ "data": { "result": format!("{n} recipient(s) deleted."), "recipients": n } }),
    ))
}

pub(crate) async fn jobs(State(m): State<Mgmt>) -> ApiResult {
    let jobs = engine(&m)?.jobs();
    Ok(Json(json!({ "data": { "jobs": jobs } })))
}

pub(crate) async fn vmtas(State(m): State<Mgmt>) -> ApiResult {
    let vmtas = engine(&m)?.vmtas();
    let pools: Vec<Value> = m
        .ctx
        .config()
        .pools
        .iter()
        .map(|p| json!({ "name": p.name, "members": p.members }))
        .collect();
    Ok(Json(json!({ "data": { "vmtas": vmtas, "pools": pools } })))
}
