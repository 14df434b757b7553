//! petrel-accounting: PowerMTA-compatible accounting files (`<acct-file>`).
//!
//! Why it exists: PowerMTA users feed their accounting CSVs (d, b, t, tq, r, f, rb, rs
//! records) into billing, bounce handling and reporting pipelines. petrel writes the same
//! files, column for column, so those pipelines keep working unchanged.
//!
//! * [`AcctRecord`] is one event as typed data, filled by the code that saw it happen.
//! * [`Layout`] turns it into a row: header line, default field order per record type,
//!   `record-fields` selections, the union of columns across record types, RFC 4180.
//! * [`AcctWriter`] owns one `<acct-file>`: dated file names, roll-over at `max-size`,
//!   midnight and `move-interval`, `move-to`, `delete-after`, `sync`, or a pipe command.
//! * [`Accounting`] holds every writer of a configuration behind one background thread, so
//!   recording is a channel send on the hot path.
//!
//! The format and the differences from PowerMTA are described in `docs/accounting.md`.

mod csv;
mod error;
mod field;
mod file_out;
mod layout;
mod naming;
mod pipe_out;
mod record;
mod service;
mod status;
mod writer;

pub use error::AcctError;
pub use field::{default_columns, Column, Field};
pub use layout::{Layout, RowOptions};
pub use record::{AcctRecord, DlvType, DsnAction, SrcType};
pub use service::{Accounting, AcctStats, CHANNEL_CAPACITY, FLUSH_INTERVAL};
pub use status::{EnhancedStatus, ParseStatusError};
pub use writer::{AcctWriter, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_BACKLOG, DEFAULT_RETRY_INTERVAL};
