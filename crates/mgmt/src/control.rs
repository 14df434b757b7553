//! Job and queue control (PowerMTA's `pause`, `resume`, `schedule`, `delete`) and the views
//! that need the delivery engine (`show jobs`, `show vmtas`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use petrel_mgmt_api::{
    CommandResult, Data, DeleteArgs, JobArg, JobRow, Jobs, ModeArgs, PoolRow, QueueArg, VmtaRow,
    Vmtas,
};

use crate::{ApiError, Mgmt};

type CommandAnswer = Result<Json<Data<CommandResult>>, ApiError>;

/// The engine, or 503 when the daemon runs without one.
pub(crate) fn engine(m: &Mgmt) -> Result<&petrel_delivery::Engine, ApiError> {
    m.engine.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the delivery engine is not running",
        )
    })
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

fn done(result: String, matched: Option<usize>, recipients: Option<usize>) -> CommandAnswer {
    Ok(Json(Data {
        data: CommandResult {
            result,
            matched,
            recipients,
        },
    }))
}

pub(crate) async fn pause_queue(State(m): State<Mgmt>, Query(a): Query<QueueArg>) -> CommandAnswer {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.set_queue_paused(&q, true);
    done(format!("{n} queue(s) paused."), Some(n), None)
}

pub(crate) async fn resume_queue(
    State(m): State<Mgmt>,
    Query(a): Query<QueueArg>,
) -> CommandAnswer {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.set_queue_paused(&q, false);
    done(format!("{n} queue(s) resumed."), Some(n), None)
}

/// `set queue --mode=backoff|normal`.
pub(crate) async fn set_queue_mode(
    State(m): State<Mgmt>,
    Query(a): Query<ModeArgs>,
) -> CommandAnswer {
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
    let name = if backoff { "backoff" } else { "normal" };
    done(format!("{n} queue(s) set to {name} mode."), Some(n), None)
}

pub(crate) async fn pause_job(State(m): State<Mgmt>, Query(a): Query<JobArg>) -> CommandAnswer {
    let j = required(a.job_id, "jobId")?;
    engine(&m)?.set_job_paused(&j, true);
    done("paused job.".into(), None, None)
}

pub(crate) async fn resume_job(State(m): State<Mgmt>, Query(a): Query<JobArg>) -> CommandAnswer {
    let j = required(a.job_id, "jobId")?;
    engine(&m)?.set_job_paused(&j, false);
    done("resumed job.".into(), None, None)
}

pub(crate) async fn schedule(State(m): State<Mgmt>, Query(a): Query<QueueArg>) -> CommandAnswer {
    let q = required(a.queue, "queue")?;
    let n = engine(&m)?.schedule(&q);
    done(format!("{n} matching queue(s) scheduled."), Some(n), None)
}

pub(crate) async fn delete(State(m): State<Mgmt>, Query(a): Query<DeleteArgs>) -> CommandAnswer {
    if a.queue.is_none() && a.job_id.is_none() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "delete needs `queue` or `jobId`",
        ));
    }
    let n = engine(&m)?
        .delete(a.queue.as_deref(), a.job_id.as_deref())
        .await;
    done(format!("{n} recipient(s) deleted."), None, Some(n))
}

pub(crate) async fn jobs(State(m): State<Mgmt>) -> Result<Json<Data<Jobs>>, ApiError> {
    let jobs = engine(&m)?
        .jobs()
        .into_iter()
        .map(|j| JobRow {
            job: j.job,
            recipients: j.recipients,
            paused: j.paused,
        })
        .collect();
    Ok(Json(Data {
        data: Jobs { jobs, total: None },
    }))
}

pub(crate) async fn vmtas(State(m): State<Mgmt>) -> Result<Json<Data<Vmtas>>, ApiError> {
    let vmtas = engine(&m)?
        .vmtas()
        .into_iter()
        .map(|v| VmtaRow {
            name: v.name,
            domains: v.domains,
            recipients: v.recipients,
            connections: v.connections,
        })
        .collect();
    let pools = m
        .config
        .get()
        .pools
        .iter()
        .map(|p| PoolRow {
            name: p.name.clone(),
            members: p.members.clone(),
        })
        .collect();
    Ok(Json(Data {
        data: Vmtas {
            vmtas,
            pools,
            total: None,
        },
    }))
}
