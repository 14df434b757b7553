//! The suppression list endpoints (`/suppressions`): what `petrel suppression list|add|remove`
//! calls, so an operator can see why a recipient gets no mail and lift or add a suppression
//! without touching the database.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use petrel_mgmt_api::{
    Added, NewSuppression, RemoveSuppression, Removed, SuppressionQuery, SuppressionRow,
    Suppressions,
};
use petrel_suppression::{
    ListQuery, NewEntry, Reason, SuppressionError, SuppressionList, MAX_LIST_LIMIT,
};

use crate::{ApiError, Mgmt};

fn list_of(m: &Mgmt) -> Result<Arc<SuppressionList>, ApiError> {
    m.suppression
        .clone()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "suppression is not enabled"))
}

/// A bad address is the caller's mistake (400); anything else is the server's disk (500).
fn api_error(e: SuppressionError) -> ApiError {
    let status = match e {
        SuppressionError::InvalidAddress(_) => StatusCode::BAD_REQUEST,
        SuppressionError::Io { .. } | SuppressionError::Sqlite(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    ApiError::new(status, e.to_string())
}

/// Runs a database call off the async workers: SQLite blocks.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SuppressionError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(api_error)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// A blank parameter counts as absent, as in the other endpoints.
fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn subaccount(v: Option<String>) -> Result<Option<u64>, ApiError> {
    present(v)
        .map(|s| {
            s.parse().map_err(|_| {
                bad(format!(
                    "`subaccount` must be a non-negative integer, not {s:?}"
                ))
            })
        })
        .transpose()
}

/// `GET /suppressions?subaccount=N&address=A&reason=R&limit=L`: newest first; `total` counts
/// every match, so a caller can tell when `limit` cut the list.
pub(crate) async fn list(
    State(m): State<Mgmt>,
    Query(a): Query<SuppressionQuery>,
) -> Result<Json<Suppressions>, ApiError> {
    let list = list_of(&m)?;
    let reason = present(a.reason)
        .map(|r| {
            Reason::parse(&r).ok_or_else(|| {
                let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
                bad(format!(
                    "`reason` must be one of {}, not {r:?}",
                    names.join(", ")
                ))
            })
        })
        .transpose()?;
    let limit = present(a.limit)
        .map(|l| match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad(format!(
                "`limit` must be between 1 and {MAX_LIST_LIMIT}, not {l:?}"
            ))),
        })
        .transpose()?;
    let q = ListQuery {
        subaccount: subaccount(a.subaccount)?,
        address: present(a.address),
        reason,
        limit,
    };
    let (entries, total) = blocking(move || Ok((list.list(&q)?, list.count(&q)?))).await?;
    let results = entries
        .iter()
        .map(|e| SuppressionRow {
            address: e.address.clone(),
            subaccount: e.subaccount,
            reason: e.reason.as_str().to_string(),
            description: e.description.clone(),
            created: e.created_rfc3339(),
        })
        .collect();
    Ok(Json(Suppressions {
        results,
        total: total as u64,
    }))
}

/// `POST /suppressions` with `{"address", "subaccount", "description"}`: a manual entry.
/// `added` is false when the address was already suppressed (the entry is refreshed).
pub(crate) async fn add(State(m): State<Mgmt>, body: Bytes) -> Result<Json<Added>, ApiError> {
    let list = list_of(&m)?;
    let b: NewSuppression =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON body: {e}")))?;
    let entry = NewEntry {
        address: b.address.trim().to_string(),
        subaccount: b.subaccount,
        reason: Reason::Manual,
        description: b.description,
    };
    let added = blocking(move || list.add(entry)).await?;
    Ok(Json(Added { added }))
}

/// `DELETE /suppressions?address=A&subaccount=N` (subaccount 0 when absent); 404 when there
/// was no such entry, so a typo does not look like success.
pub(crate) async fn remove(
    State(m): State<Mgmt>,
    Query(a): Query<RemoveSuppression>,
) -> Result<Json<Removed>, ApiError> {
    let list = list_of(&m)?;
    let address = present(a.address).ok_or_else(|| bad("parameter `address` is required"))?;
    let sub = subaccount(a.subaccount)?.unwrap_or(0);
    let shown = address.clone();
    let removed = blocking(move || list.remove(sub, &address)).await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{shown} is not suppressed for subaccount {sub}"),
        ));
    }
    Ok(Json(Removed { removed: true }))
}
