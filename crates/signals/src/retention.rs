//! The background task that enforces `event-retention` and `metrics-retention`.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{AnalyticsStore, Retention};
use crate::timefmt;

/// Runs a retention pass now and then every `every`, until the task is aborted.
pub fn spawn(
    store: Arc<dyn AnalyticsStore>,
    retention: Retention,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.expire(&retention, timefmt::now_secs()))
                .await
            {
                Ok(Ok(e)) if e.events + e.batches + e.rollup_rows > 0 => tracing::info!(
                    "signals retention: removed {} events, {} batch records, {} rollup rows",
                    e.events,
                    e.batches,
                    e.rollup_rows
                ),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("signals retention: {e}"),
                Err(e) => tracing::warn!("signals retention task: {e}"),
            }
            tokio::time::sleep(every).await;
        }
    })
}
