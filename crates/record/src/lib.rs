//! What happened to mail, recorded once.
//!
//! Every stage that sees something happen to a recipient (the delivery engine at reception
//! and after each attempt, the returned-mail processor for bounce reports and complaints)
//! describes it as one typed [`Outcome`] and hands it to the daemon's one [`Recorder`]. The
//! recorder passes it to each [`Sink`]; a sink is a projection of the outcome:
//!
//! * [`AccountingSink`]: the PowerMTA accounting row (`r`, `d`, `b`, `t`, `tq`, `rb`, `rs`,
//!   `f`), `sinks/accounting.rs`;
//! * [`SignalsSink`]: the SparkPost Signals event (`reception`, `delivery`, `inband`,
//!   `tempfail`, `rejection`, `outofband`, `feedback`), `sinks/signals.rs`;
//! * [`Counters`]: the metrics counters (`show status`, `/metrics`), `sinks/counters.rs`.
//!
//! So the accounting files, the event stream and the counters cannot disagree: none of them
//! is built anywhere else. Which messages produce Signals events at all, and with which
//! subaccount, is [`Scope`] (also used by delivery for VERP and suppression).

mod outcome;
mod recorder;
mod scope;
mod sinks;

#[cfg(test)]
mod tests;

pub use outcome::{
    AttemptKind, Attempted, Attribution, Complaint, Outcome, QueueDeferred, Received, Recipient,
    Remote, RemoteReport, Route, Session,
};
pub use recorder::{Recorder, Sink};
pub use scope::{subaccount, tracking, tracking_flags, Scope, Tracking, TrackingFlags};
pub use sinks::{AccountingSink, Counters, CountersSnapshot, SignalsSink};
