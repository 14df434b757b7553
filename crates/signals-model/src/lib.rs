//! What petrel's Signals numbers mean, apart from where they are stored.
//!
//! Every store backend (SQLite embedded, ClickHouse at scale) and the HTTP APIs use these
//! definitions, so the same events give the same answers whatever holds them:
//!
//! - [`types`]: what each event type counts as (its names come from `petrel-event-types`,
//!   the one table the emitter uses too);
//! - [`bounce`]: SparkPost's bounce classes and the categories the Metrics API reports;
//! - [`counters`]: the additive counters a rollup row keeps, what one event adds to them,
//!   and the public metrics (`count_accepted`, …) derived from them;
//! - [`daily`]: the per-day counters behind the Signals API;
//! - [`cohort`]: engagement-recency cohorts of a recipient at injection time;
//! - [`traps`]: the operator's spam-trap list and built-in typo-domain detection;
//! - [`health`]: the published, explainable Health Score.

pub mod bounce;
pub mod cohort;
pub mod counters;
pub mod daily;
pub mod health;
pub mod traps;
pub mod types;
