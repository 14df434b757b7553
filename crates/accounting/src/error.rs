//! Typed accounting errors.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong while setting up or writing accounting files.
///
/// Exists so the caller can tell a configuration mistake (reported at start-up, like
/// PowerMTA refusing an unknown `record-fields` name) from an I/O problem at run time
/// (reported as PowerMTA's `Error writing to "…"` and retried).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcctError {
    /// `record-fields` names a field PowerMTA does not know.
    #[error("{target}: record-fields {record_type}: unknown field `{field}`")]
    UnknownField {
        /// The `<acct-file>` argument (path or `|command`).
        target: String,
        /// The record type whose list holds the name (`d`, `b`, …).
        record_type: &'static str,
        /// The name as written.
        field: String,
    },
    /// A file target has no file name (e.g. `<acct-file />`), so no dated name can be made.
    #[error("{0}: an accounting file needs a file name")]
    BadPath(PathBuf),
    /// Creating, writing, syncing, moving or deleting an accounting file failed.
    #[error("error {context} \"{path}\": {source}")]
    Io {
        /// What was being done ("writing to", "opening", "moving", …).
        context: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Starting or writing to a pipe target failed; it is restarted after the retry interval.
    #[error("error {context} \"{command}\": {source}")]
    Pipe {
        /// "starting", "writing to" or "executing".
        context: &'static str,
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A target could not take rows for so long that its in-memory backlog hit the cap, so
    /// rows were discarded. Reported (never silent) so the operator can see the loss.
    #[error("{target}: backlog full, {dropped} accounting row(s) discarded")]
    Dropped {
        /// The `<acct-file>` argument.
        target: String,
        /// Rows discarded by this call.
        dropped: u64,
    },
    /// The accounting writer thread could not be started.
    #[error("cannot start the accounting thread: {0}")]
    Thread(#[source] Arc<io::Error>),
    /// [`crate::Accounting`] was shut down; the record was not taken.
    #[error("accounting is shut down")]
    Closed,
    /// The background writer thread died (a bug); the record was not taken.
    #[error("accounting writer thread is gone")]
    ThreadGone,
}

impl AcctError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        AcctError::Io {
            context,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn pipe(context: &'static str, command: &str, source: io::Error) -> Self {
        AcctError::Pipe {
            context,
            command: command.to_string(),
            source: Arc::new(source),
        }
    }
}
