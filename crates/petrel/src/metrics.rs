//! The daemon's optional parts as sections of `/status` and `/metrics`: accounting, the
//! Signals event stream and uploader, the tracking host and the bounce / feedback-loop
//! processor. Each part that is not running adds no section.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use petrel_accounting::Accounting;
use petrel_events::{EventSpool, UploadCounters};
use petrel_mgmt::{Metric, MetricSource, Mgmt};
use petrel_returns::ReturnsProcessor;
use petrel_tracking_host::TrackingHost;

/// What the daemon runs; `None` for a part that is off.
pub struct Parts<'a> {
    pub accounting: Option<&'a Arc<Accounting>>,
    pub events: Option<&'a Arc<EventSpool>>,
    pub uploader: Option<&'a Arc<UploadCounters>>,
    pub tracking: Option<&'a Arc<TrackingHost>>,
    pub returns: Option<&'a Arc<ReturnsProcessor>>,
}

fn source(f: impl Fn() -> Vec<Metric> + Send + Sync + 'static) -> MetricSource {
    Arc::new(f)
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

/// Adds a section to `mgmt` for every part that runs.
pub fn register(mut mgmt: Mgmt, parts: Parts<'_>) -> Mgmt {
    if let Some(acct) = parts.accounting.cloned() {
        mgmt = mgmt.with_metrics(
            "accounting",
            source(move || {
                let s = acct.stats();
                vec![
                    Metric::counter(
                        "records",
                        "Records handed to accounting (before each file's `records` filter).",
                        s.recorded,
                    ),
                    Metric::counter("errors", "Errors writing accounting targets.", s.errors),
                    Metric::counter(
                        "dropped",
                        "Rows discarded because a failing target's backlog was full.",
                        s.dropped,
                    ),
                ]
            }),
        );
    }
    if let Some(events) = parts.events.cloned() {
        let upload = parts.uploader.cloned();
        mgmt = mgmt.with_metrics(
            "signals",
            source(move || {
                let mut m = vec![
                    Metric::counter(
                        "events_emitted",
                        "Signals events written to the event spool.",
                        events.emitted(),
                    ),
                    Metric::counter(
                        "events_lost",
                        "Signals events lost because the event spool's disk refused them (full or failing).",
                        events.lost(),
                    ),
                ];
                if let Some(u) = &upload {
                    m.extend([
                        Metric::counter(
                            "batches_uploaded",
                            "Batches the ingest service accepted (200).",
                            get(&u.batches),
                        ),
                        Metric::counter(
                            "events_uploaded",
                            "Events in the accepted batches.",
                            get(&u.events),
                        ),
                        Metric::counter(
                            "upload_bytes",
                            "Gzipped bytes of the accepted batches.",
                            get(&u.gzip_bytes),
                        ),
                        Metric::counter(
                            "upload_failures",
                            "Uploads that failed with 5xx, 429 or a network error (retried).",
                            get(&u.failures),
                        ),
                        Metric::counter(
                            "upload_rejections",
                            "Uploads refused with 401/403 or another 4xx (check api-key, upload-url).",
                            get(&u.rejections),
                        ),
                        Metric::counter(
                            "events_dropped",
                            "Events deleted unsent because free space fell below min-free-space.",
                            get(&u.dropped_events),
                        ),
                        Metric::gauge(
                            "files_pending",
                            "Closed event files waiting to be uploaded.",
                            get(&u.pending_files),
                        ),
                        Metric::gauge(
                            "bytes_pending",
                            "Bytes of the event files waiting to be uploaded.",
                            get(&u.pending_bytes),
                        ),
                    ]);
                }
                m
            }),
        );
    }
    if let Some(host) = parts.tracking.cloned() {
        mgmt = mgmt.with_metrics(
            "tracking",
            source(move || {
                let s = host.stats();
                vec![
                    Metric::counter(
                        "initial_opens",
                        "Top pixels served (initial_open events).",
                        s.initial_opens,
                    ),
                    Metric::counter("opens", "Bottom pixels served (open events).", s.opens),
                    Metric::counter("clicks", "Click redirects sent (click events).", s.clicks),
                    Metric::counter(
                        "unsubscribes",
                        "Unsubscribe links followed (link_unsubscribe events).",
                        s.unsubscribes,
                    ),
                    Metric::counter(
                        "unsubscribes_suppressed",
                        "Recipients put on the suppression list by unsubscribe links.",
                        s.suppressed,
                    ),
                    Metric::counter(
                        "not_found",
                        "404s: unknown paths and bad, forged or expired tokens.",
                        s.not_found,
                    ),
                    Metric::counter(
                        "rate_limited",
                        "403s from the per-token burst limit.",
                        s.limited,
                    ),
                    Metric::counter(
                        "head_requests",
                        "HEAD requests answered (no event).",
                        s.head,
                    ),
                    Metric::counter(
                        "method_not_allowed",
                        "405s: methods other than GET and HEAD.",
                        s.method_not_allowed,
                    ),
                    Metric::counter(
                        "emit_failures",
                        "Hits answered whose event could not be spooled.",
                        s.emit_failures,
                    ),
                ]
            }),
        );
    }
    if let Some(p) = parts.returns.cloned() {
        mgmt = mgmt.with_metrics(
            "returns",
            source(move || {
                let s = &p.stats;
                vec![
                    Metric::counter(
                        "bounces",
                        "Bounce reports processed (bounceProcessed).",
                        get(&s.bounces),
                    ),
                    Metric::counter(
                        "complaints",
                        "Feedback-loop complaints processed (feedbackLoopProcessed).",
                        get(&s.complaints),
                    ),
                    Metric::counter(
                        "unmatched",
                        "Messages to a processor address that were not reports.",
                        get(&s.unmatched),
                    ),
                    Metric::counter(
                        "unattributed",
                        "Reports not attributable to a message by a signed return path.",
                        get(&s.unattributed),
                    ),
                ]
            }),
        );
    }
    mgmt
}
