//! The part of ingest that needs no database: decompress the body, validate each line, and
//! work out what the store cannot (spam traps and list quality of injections). It runs
//! before the store's writer lock, so two uploads use two cores.

use std::io::Read;

use petrel_signals_model::traps::{self, TrapList};
use petrel_signals_model::types::EventType;

use crate::event::{self, StoredEvent};

/// The most uncompressed NDJSON one batch may hold: SparkPost's 5 MB, read as the safe
/// (uncompressed, MiB) interpretation of spec §1.3.
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

/// Why an ingest request is refused outright (no batch record is written).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch is larger than [`MAX_BATCH_BYTES`] before or after decompression.
    #[error("batch exceeds {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A batch ready for [`crate::store::AnalyticsStore::ingest`].
#[derive(Debug)]
pub struct PreparedBatch {
    /// SHA-256 (hex) of the body as uploaded, for `duplicate_batch`.
    pub content_hash: String,
    /// `empty_batch` or `decompress` when the body itself is the problem.
    pub batch_error: Option<&'static str>,
    /// Valid events in batch order.
    pub events: Vec<StoredEvent>,
    /// Lines that failed validation.
    pub failed: u64,
    /// The first failure, `line N: why`.
    pub first_error: Option<String>,
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Decompresses and validates `body`; only an oversize batch is an error.
pub fn prepare(body: &[u8], traps: &TrapList) -> Result<PreparedBatch, IngestError> {
    let mut batch = PreparedBatch {
        content_hash: sha256_hex(body),
        batch_error: None,
        events: Vec::new(),
        failed: 0,
        first_error: None,
    };
    if body.is_empty() {
        batch.batch_error = Some("empty_batch");
        return Ok(batch);
    }
    let mut text = Vec::with_capacity(body.len().saturating_mul(6).min(MAX_BATCH_BYTES + 1));
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(MAX_BATCH_BYTES as u64 + 1);
    if dec.read_to_end(&mut text).is_err() {
        batch.batch_error = Some("decompress");
        return Ok(batch);
    }
    if text.len() > MAX_BATCH_BYTES {
        return Err(IngestError::TooLarge);
    }
    for (n, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match event::parse_line(line) {
            Ok(mut ev) => {
                if ev.facts.kind == Some(EventType::Injection) {
                    let domain = ev.recipient_domain.clone().unwrap_or_default();
                    ev.trap = traps.check(ev.address.as_deref(), &domain);
                    ev.list_quality_hit =
                        traps::is_list_quality_hit(ev.address.as_deref(), &domain);
                }
                batch.events.push(ev);
            }
            Err(e) => {
                batch.failed += 1;
                batch
                    .first_error
                    .get_or_insert_with(|| format!("line {}: {e}", n + 1));
            }
        }
    }
    if batch.events.is_empty() && batch.failed == 0 {
        batch.batch_error = Some("empty_batch");
    }
    Ok(batch)
}
