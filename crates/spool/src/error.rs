//! Typed spool errors.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::MessageId;

/// Everything that can go wrong in the spool. `Full` and `Io` both mean "the message is
/// not durable": the SMTP listener answers `452 4.3.1 Insufficient system storage` and the
/// client keeps the message. They are separate so operators and metrics can tell a full
/// disk from a broken one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    /// No room: below `min_free_space`, or the file system said ENOSPC/EDQUOT.
    #[error("spool storage full: {0}")]
    Full(FullCause),
    /// Any other I/O failure (EIO, read-only file system, permissions, …). The group that
    /// hit it was rolled back; later requests try again.
    #[error("spool I/O error while {context}: {source}")]
    Io {
        /// What the spool was doing, e.g. "syncing segment".
        context: &'static str,
        /// The OS error (shared: every caller of a failed group gets a copy).
        #[source]
        source: Arc<io::Error>,
    },
    /// The message is not (or no longer) in the spool.
    #[error("message {0} is not in the spool")]
    NotFound(MessageId),
    /// `recipient_done` named a recipient index the message does not have.
    #[error("message {id} has no recipient #{index}")]
    NoSuchRecipient {
        /// The message.
        id: MessageId,
        /// The index that was asked for.
        index: u32,
    },
    /// `commit` got an envelope without recipients; such a message could never leave.
    #[error("envelope has no recipients")]
    NoRecipients,
    /// Envelope plus body exceed the 4 GiB a record can hold.
    #[error("message too large for one spool record")]
    TooLarge,
    /// A stored record failed its CRC (or did not decode) when read back.
    #[error("corrupt record in segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// Segment number.
        segment: u64,
        /// Offset of the record in the segment.
        offset: u64,
        /// What did not check out.
        reason: String,
    },
    /// The spool was shut down; nothing more can be written.
    #[error("spool is shut down")]
    Closed,
}

/// Why the spool counts as full.
#[derive(Debug, Clone)]
pub enum FullCause {
    /// The file system has `available` bytes free; writing would leave less than the
    /// configured `min_free_space`.
    BelowMinFree {
        /// Bytes available to petrel on the spool's file system.
        available: u64,
        /// The configured floor.
        min_free_space: u64,
    },
    /// The file system itself refused the write.
    NoSpace(Arc<io::Error>),
}

impl fmt::Display for FullCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FullCause::BelowMinFree {
                available,
                min_free_space,
            } => write!(
                f,
                "{available} bytes available, min-free-space is {min_free_space}"
            ),
            FullCause::NoSpace(e) => write!(f, "{e}"),
        }
    }
}

impl SpoolError {
    /// Wraps an I/O error, classifying ENOSPC and EDQUOT as [`SpoolError::Full`].
    pub(crate) fn io(context: &'static str, err: io::Error) -> SpoolError {
        let no_space = matches!(
            rustix::io::Errno::from_io_error(&err),
            Some(rustix::io::Errno::NOSPC | rustix::io::Errno::DQUOT)
        );
        if no_space {
            SpoolError::Full(FullCause::NoSpace(Arc::new(err)))
        } else {
            SpoolError::Io {
                context,
                source: Arc::new(err),
            }
        }
    }

    /// True for the errors that mean "storage is unhealthy, try later" (the SMTP layer
    /// answers 452 for these): [`SpoolError::Full`], [`SpoolError::Io`],
    /// [`SpoolError::Closed`].
    pub fn is_storage_unavailable(&self) -> bool {
        matches!(
            self,
            SpoolError::Full(_) | SpoolError::Io { .. } | SpoolError::Closed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_full_eio_is_io() {
        let full = SpoolError::io("writing", io::Error::from_raw_os_error(28));
        assert!(matches!(full, SpoolError::Full(FullCause::NoSpace(_))));
        let eio = SpoolError::io("writing", io::Error::from_raw_os_error(5));
        assert!(matches!(eio, SpoolError::Io { .. }));
        assert!(full.is_storage_unavailable() && eio.is_storage_unavailable());
    }
}
