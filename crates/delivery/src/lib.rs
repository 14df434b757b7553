//! The delivery engine: takes spooled mail to the destination's MX, from the right virtual
//! MTA, and accounts for every recipient (delivered, bounced, deferred).
//!
//! Queues are kept per recipient domain and virtual MTA, as PowerMTA keeps them; a
//! dispatcher opens connections up to each queue's `max-smtp-out`; each connection task
//! drains its queue over one reused SMTP connection. Time comes from a [`Clock`], so retry
//! and expiry are testable without waiting.

mod clock;
mod connection;
mod dispatch;
mod dkim;
mod dsn;
mod engine;
mod outcome;
mod queue;
mod record;
mod route;
mod settle;
mod tracking;
mod transaction;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dsn::{build_failure_dsn, wants_failure_dsn, FailedRecipient};
pub use engine::{Engine, EngineError, EngineStats, JobView, Parts, VmtaView};
pub use queue::{queue_matcher, QueueKey, QueueView, Queues, Work};
pub use route::{Destination, RouteError, Router};
