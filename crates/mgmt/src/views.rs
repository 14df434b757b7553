//! Read-only views: status, queues, domains, messages. Shapes follow PowerMTA's JSON
//! (`{"data": {...}}`) so existing monitoring can be pointed at petrel with few changes; the
//! types are `petrel-mgmt-api`'s, shared with the CLI.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use petrel_mgmt_api::{
    BodyQuery, Conn, ConnTotal, Data, DeliveryCounts, DomainRow, Domains, MessageRow, Messages,
    MessagesQuery, Mode, MsgRcp, Product, QueueRow, Queues, SpoolCounts, Status, Traffic,
    TrafficTotal,
};

use crate::control::engine;
use crate::{ApiError, Mgmt};

fn unix_secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

pub(crate) async fn status(State(m): State<Mgmt>) -> Json<Data<Status>> {
    let s = m.inbound();
    let spool = m.spool.stats();
    Json(Data {
        data: Status {
            status: "running".into(),
            product: Product {
                name: "petrel".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            host_name: m.config.get().primary_host_name().to_string(),
            startup_time: unix_secs(m.started).unwrap_or(0),
            uptime_seconds: m.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
            traffic: Traffic {
                total: TrafficTotal {
                    inbound: MsgRcp {
                        msg: s.messages,
                        rcp: s.recipients,
                    },
                },
            },
            conn: Conn {
                smtp_in: ConnTotal {
                    total: s.connections,
                },
            },
            rejections: s.rejections,
            spool: SpoolCounts {
                messages: spool.messages,
                recipients: spool.recipients,
                bytes: spool.bytes,
                segments: spool.segments,
                disk_bytes: spool.disk_bytes,
                preallocated_bytes: spool.preallocated_bytes,
                fsyncs: spool.fsyncs,
                records_written: spool.records_written,
            },
            delivery: m.engine.as_ref().map(|e| {
                let d = e.stats();
                DeliveryCounts {
                    delivered: d.delivered,
                    bounced: d.bounced,
                    deferred: d.deferred,
                    connections: d.connections,
                    dsns: d.dsns,
                }
            }),
            counters: m.counters(),
        },
    })
}

/// `show queues`: the engine's queues, each with the messages waiting in it (a pool member's
/// queue, a `queue-to` target's), paused, backoff or retry state, and the last error.
pub(crate) async fn queues(State(m): State<Mgmt>) -> Result<Json<Data<Queues>>, ApiError> {
    let queues = engine(&m)?
        .queues()
        .into_iter()
        .filter(|q| q.recipients != 0 || q.paused || q.backoff_since.is_some())
        .map(|q| {
            let retry_until = q.retry_until.and_then(unix_secs);
            QueueRow {
                queue: q.key.to_string(),
                domain: q.key.domain,
                vmta: q.key.vmta,
                rcp: q.recipients,
                msg: q.messages,
                kb: q.bytes.div_ceil(1024),
                conn: q.connections,
                paused: q.paused,
                mode: if q.backoff_since.is_some() {
                    Mode::Backoff
                } else {
                    Mode::Normal
                },
                backoff_since: q.backoff_since.and_then(unix_secs),
                retry: retry_until.is_some(),
                retry_until,
                last_error: q.last_error,
            }
        })
        .collect();
    Ok(Json(Data {
        data: Queues {
            queues,
            total: None,
        },
    }))
}

pub(crate) async fn domains(State(m): State<Mgmt>) -> Json<Data<Domains>> {
    let domains = m
        .spool
        .domain_summary()
        .into_iter()
        .map(|d| DomainRow {
            domain: d.domain,
            rcp: d.recipients,
            msg: d.messages,
            kb: d.bytes.div_ceil(1024),
        })
        .collect();
    Json(Data {
        data: Domains {
            domains,
            total: None,
        },
    })
}

pub(crate) async fn messages(
    State(m): State<Mgmt>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Data<Messages>>, ApiError> {
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
        rows.push(MessageRow {
            id: id.to_string(),
            orig: env.mail_from.clone(),
            rcpts: env
                .recipients
                .iter()
                .filter(|r| !r.done)
                .map(|r| r.address.clone())
                .collect(),
            vmta: env.vmta.clone(),
            job_id: env.job_id.clone(),
            env_id: env.env_id.clone(),
            auth_user: env.auth_user.clone(),
            received_at_unix_ms: env.received_at_unix_ms,
        });
    }
    Ok(Json(Data {
        data: Messages { messages: rows },
    }))
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
