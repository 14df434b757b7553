//! The sinks: one projection of an [`crate::Outcome`] each.

pub(crate) mod accounting;
mod counters;
pub(crate) mod signals;

pub use accounting::AccountingSink;
pub use counters::{Counters, CountersSnapshot};
pub use signals::SignalsSink;
