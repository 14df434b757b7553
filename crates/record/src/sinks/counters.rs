//! The metrics projection: how many recipients each kind of outcome had since start.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use petrel_config::Config;

use crate::outcome::{AttemptKind, Outcome};
use crate::recorder::Sink;

/// Counters of outcomes since start (`show status`, `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    bounced: AtomicU64,
    deferred: AtomicU64,
    queue_deferred: AtomicU64,
    remote_bounces: AtomicU64,
    complaints: AtomicU64,
}

/// The counters' values at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Recipients accepted at reception.
    pub received: u64,
    /// Recipients delivered.
    pub delivered: u64,
    /// Recipients bounced: in the session, by expiry, by petrel's own policy (suppressed) or
    /// deleted by an operator.
    pub bounced: u64,
    /// Temporary failures (the recipient stays queued).
    pub deferred: u64,
    /// Times a whole queue could not be reached.
    pub queue_deferred: u64,
    /// Recipients of remote bounce reports (failures and delays).
    pub remote_bounces: u64,
    /// Recipients of feedback-loop complaints.
    pub complaints: u64,
}

impl Counters {
    /// The values now.
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            received: self.received.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            bounced: self.bounced.load(Relaxed),
            deferred: self.deferred.load(Relaxed),
            queue_deferred: self.queue_deferred.load(Relaxed),
            remote_bounces: self.remote_bounces.load(Relaxed),
            complaints: self.complaints.load(Relaxed),
        }
    }
}

impl Sink for Counters {
    fn write(&self, _config: &Config, outcome: &Outcome<'_>) {
        let counter = match outcome {
            Outcome::Received(_) => &self.received,
            Outcome::Attempted(a) => match a.kind {
                AttemptKind::Delivered => &self.delivered,
                AttemptKind::Bounced => &self.bounced,
                AttemptKind::Deferred => &self.deferred,
            },
            Outcome::QueueDeferred(_) => &self.queue_deferred,
            Outcome::Reported(_) => &self.remote_bounces,
            Outcome::Complained(_) => &self.complaints,
        };
        counter.fetch_add(1, Relaxed);
    }
}
