//! SparkPost Signals events for petrel: the typed event every stage emits, the durable
//! NDJSON event spool, and the uploader that ships spooled events to SparkPost's ingest API
//! (or any compatible service).
//!
//! See `docs/events.md` for the event fields, the file layout and the uploader's behaviour.

mod error;
mod event;
mod http;
mod provider;
mod redact;
mod spool;
mod uploader;
mod verbose_log;

pub use error::{EventsError, HttpError};
pub use event::{next_event_id, Event, EventKind, Privacy};
pub use provider::mailbox_provider;
pub use redact::redact_reason;
pub use spool::{EventSpool, SpoolConfig};
pub use uploader::{UploadCounters, UploadOutcome, Uploader, UploaderConfig};
