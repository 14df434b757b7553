//! petrel's own Signals service: a SparkPost-compatible event ingest endpoint, message event
//! search, Metrics API and Signals API (health score, spam traps, engagement cohorts) over a
//! store interface with an embedded SQLite backend.
//!
//! Three layers, each in its own place: [`store`] (the [`AnalyticsStore`] interface and one
//! module per backend: schema, rollup maintenance, retention), [`api`] (parameters,
//! validation, SparkPost's envelopes), and the pure definitions of what the numbers mean in
//! the `petrel-signals-model` crate. See `docs/signals-service.md`.

pub mod api;
mod enrich;
pub mod event;
pub mod ingest;
mod query;
pub mod retention;
pub mod store;
mod timefmt;

use std::sync::Arc;

pub use api::{router, ApiError, ServiceOptions};
pub use ingest::{IngestError, PreparedBatch, MAX_BATCH_BYTES};
pub use query::{keyword_matches, BatchQuery, EventQuery};
pub use store::{
    AnalyticsStore, BatchOutcome, BatchPage, EventPage, Retention, SqliteStore, StoreError,
};

/// The embedded store, under its historical name.
pub type SignalsStore = SqliteStore;

/// What an API key may do. Kept separate so an MTA's upload key cannot read the data back
/// and a dashboard's read key cannot inject fake events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `POST /api/v1/ingest/events` (SparkPost's "Incoming Events: Write").
    Ingest,
    /// The read endpoints: events, metrics and signals.
    Read,
}

impl Permission {
    /// The name stored in the database and accepted by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::Read => "read",
        }
    }

    /// Parses a stored or CLI-given name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "ingest" => Some(Permission::Ingest),
            "read" => Some(Permission::Read),
            _ => None,
        }
    }
}

/// Creates an API key with `permissions` and returns the secret (shown once; only its hash is
/// stored). The entry point of `petrel signals create-key`.
pub fn create_api_key(
    store: &Arc<impl AnalyticsStore + ?Sized>,
    label: &str,
    permissions: &[Permission],
) -> Result<String, StoreError> {
    store.create_api_key(label, permissions)
}
