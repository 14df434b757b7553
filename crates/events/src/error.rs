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

/// Why one HTTP exchange with the ingest service failed, so the uploader can pick between
/// "retry soon" (network) and "the answer was unusable" (protocol).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("network: {0}")]
    Io(#[from] io::Error),
    /// The exchange did not finish in time.
    #[error("timed out")]
    Timeout,
    /// The server's answer was not valid HTTP/1.x.
    #[error("bad response: {0}")]
    Protocol(&'static str),
}
