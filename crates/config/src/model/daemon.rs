//! What the daemon sets up once from the configuration: accounting files, spools and
//! access to the management API.

use super::*;

/// Accounting record types: defined with the event type names, re-exported here for the
/// `records` and `record-fields` directives of `<acct-file>`.
pub use petrel_event_types::RecordType;

/// One element of a `record-fields` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldSelector {
    /// `*`: all default fields.
    All,
    /// A field by name.
    Field(String),
    /// `!name`: exclude a field.
    Exclude(String),
    /// `header_NAME`: a message header.
    Header(String),
}

/// Where an accounting file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcctTarget {
    /// A CSV file (resolved path).
    File(PathBuf),
    /// `|command args`: a long-running pipe (the command line, run by a shell).
    Pipe(String),
}

/// An `<acct-file>` block.
///
/// Exists so the accounting writer (planned) knows what to write where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctFile {
    /// File or pipe.
    pub target: AcctTarget,
    /// Record types written (default d,b).
    pub records: Vec<RecordType>,
    /// Per-type field selections.
    pub record_fields: Vec<(RecordType, Vec<FieldSelector>)>,
    /// Archive directory.
    pub move_to: Option<PathBuf>,
    /// Rotation cadence.
    pub move_interval: Duration,
    /// Roll-over size in bytes.
    pub max_size: u64,
    /// Deletion age; `None` = never.
    pub delete_after: Option<Duration>,
    /// ISO timestamps instead of time_t.
    pub iso_times: bool,
    /// Value of the userString field.
    pub user_string: Option<String>,
    /// World-readable files.
    pub world_readable: bool,
    /// fsync regularly.
    pub sync: bool,
    /// Where the block starts.
    pub origin: Origin,
}

/// A `<spool DIR>`.
///
/// Exists so the spool crate knows which directories to use and how full they may get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolDir {
    /// Directory (resolved path).
    pub path: PathBuf,
    /// 1–100; higher fills first.
    pub priority: u32,
    /// Stop accepting mail below this many free bytes.
    pub min_free_space: u64,
    /// Deliver existing files only; write none.
    pub deliver_only: bool,
    /// Where it was declared (line 0 for the implicit default).
    pub origin: Origin,
}

/// Web monitor access level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpAccessLevel {
    /// No access.
    None,
    /// Read-only status pages.
    Monitor,
    /// Monitor + view config + run commands.
    Operator,
    /// Operator + change config and queues.
    Admin,
}

/// One `http-access CIDR LEVEL` line.
///
/// Exists so the management server can authorise by client address (first match wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAccess {
    /// Client network.
    pub cidr: Cidr,
    /// Granted level.
    pub level: HttpAccessLevel,
    /// `monitor,deny-logs`: no log viewing.
    pub deny_logs: bool,
}
