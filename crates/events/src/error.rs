//! Typed errors of the events crate.

use std::io;
use std::path::PathBuf;

/// Errors of the event spool and the uploader, typed so callers can tell a configuration
/// mistake (bad URL) from a transient I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The spool directory could not be created, read or written.
    #[error("event spool {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The writer thread is gone, so events can no longer be accepted.
    #[error("event spool writer has stopped")]
    WriterGone,
    /// `upload-url` cannot be used.
    #[error("upload-url {url:?}: {reason}")]
    BadUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Why one HTTP exchange with the ingest service failed; either way the uploader keeps the
/// files and retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The exchange did not finish in time.
    #[error("timed out")]
    Timeout,
    /// Connecting, the TLS handshake, writing or reading failed, or the answer was not HTTP.
    #[error("network: {0}")]
    Network(#[source] reqwest::Error),
}

impl HttpError {
    pub(crate) fn from_request(e: reqwest::Error) -> HttpError {
        if e.is_timeout() {
            HttpError::Timeout
        } else {
            HttpError::Network(e)
        }
    }
}
