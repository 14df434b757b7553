//! The dispatcher: one task that wakes when work arrives or a retry time comes, promotes
//! due work, ends expired backoff, and opens as many connections per queue as its limits
//! allow now.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::connection::connection_task;
use crate::engine::Inner;
use crate::queue::ConnectLimits;

pub(crate) async fn dispatcher(inner: Arc<Inner>) {
    loop {
        let now = inner.clock.now();
        let config = inner.config();
        let (starts, next_due) = {
            let mut q = inner.lock_queues();
            let promoted = q.promote_due(now);
            for key in &promoted {
                inner.idle_notifier(key).notify_one();
            }
            for key in q.end_expired_backoffs(now, |k| {
                config
                    .domain_settings(&k.domain, &k.vmta)
                    .backoff_to_normal_after
            }) {
                info!("{key}: backoff-to-normal-after has passed; back to normal mode");
            }
            let (starts, allowed_at) = q.start_connections(now, |k, backoff| {
                let s = config.domain_settings(&k.domain, &k.vmta);
                let (max, rate) = if backoff {
                    (s.backoff_max_smtp_out, s.backoff_max_connect_rate)
                } else {
                    (s.max_smtp_out, s.max_connect_rate)
                };
                ConnectLimits {
                    max,
                    rate: rate.map(|r| (r.count, r.window)),
                    rampup: s.smtp_out_rampup_interval,
                }
            });
            let next_due = match (q.next_due(now), allowed_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (starts, next_due)
        };
        for (key, n) in starts {
            for _ in 0..n {
                inner.counters.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection_task(inner.clone(), key.clone()));
            }
        }
        let mut sleep = inner.tick;
        if let Some(due) = next_due {
            if let Ok(d) = due.duration_since(now) {
                sleep = sleep.min(d.max(Duration::from_millis(5)));
            }
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}
