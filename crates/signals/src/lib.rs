//! petrel's own Signals service: a SparkPost-compatible event ingest endpoint and message
//! event search over an embedded SQLite database, so users without a SparkPost account see
//! the same event data their MTA would upload to SparkPost.
//!
//! This crate is a library: the daemon (or `petrel signals serve`) opens a [`SignalsStore`]
//! and mounts [`router`]. See `docs/signals-service.md`.

mod enrich;
mod event;
mod http;
mod query;
mod store;
mod timefmt;

use std::sync::Arc;

pub use http::{router, ApiError};
pub use query::{BatchQuery, EventQuery};
pub use store::{
    BatchOutcome, BatchPage, EventPage, IngestError, SignalsStore, StoreError, MAX_BATCH_BYTES,
};

/// What an API key may do. Kept separate so an MTA's upload key cannot read the data back
/// and a dashboard's read key cannot inject fake events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// `POST /api/v1/ingest/events` (SparkPost's "Incoming Events: Write").
    Ingest,
    /// The search endpoints under `/api/v1/events/`.
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
/// stored). The entry point for the future `petrel signals create-key` command.
pub fn create_api_key(
    store: &Arc<SignalsStore>,
    label: &str,
    permissions: &[Permission],
) -> Result<String, StoreError> {
    store.create_api_key(label, permissions)
}
