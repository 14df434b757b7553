//! [`AcctWriter`]: one `<acct-file>` (file or pipe), buffered.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use petrel_config::{AcctFile, AcctTarget, RecordType};

use crate::error::AcctError;
use crate::file_out::FileOut;
use crate::layout::{Layout, RowOptions};
use crate::pipe_out::PipeOut;
use crate::record::AcctRecord;

/// Default pipe restart interval (`retry-interval`, 5m).
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(300);
/// Buffered bytes that trigger a write before the periodic flush.
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
/// Bytes of rows kept while a target cannot be written before rows are discarded.
pub const DEFAULT_MAX_BACKLOG: usize = 64 * 1024 * 1024;

#[derive(Debug)]
enum Output {
    File(FileOut),
    Pipe(PipeOut),
}

/// The writer of one `<acct-file>`: encodes records, buffers rows and writes them to a
/// dated file (rolling over and moving it as configured) or to a long-running command.
///
/// Exists as a single-threaded, clock-driven object so rotation is testable without
/// sleeping (every time-dependent call takes `now`); [`crate::Accounting`] drives one per
/// `<acct-file>` from its background thread. Rows are kept in memory until written: a
/// failing target keeps them (up to [`AcctWriter::max_backlog`] bytes) and they are
/// written once it recovers, so nothing is lost without an error being returned.
#[derive(Debug)]
pub struct AcctWriter {
    target: String,
    layout: Layout,
    opts: RowOptions,
    sync: bool,
    out: Output,
    pending: Vec<u8>,
    /// Byte length of each row in `pending`, in order.
    pending_rows: VecDeque<usize>,
    /// Latest clock value seen (the writer's notion of "now" for [`AcctWriter::flush`]).
    clock: SystemTime,
    /// `retry-interval`: how long a failed pipe command waits before it is restarted.
    pub retry_interval: Duration,
    /// Buffered bytes that trigger a write before the next [`AcctWriter::flush`].
    pub buffer_size: usize,
    /// Bytes of unwritten rows kept while the target fails; past this, rows are discarded
    /// and [`AcctError::Dropped`] is returned.
    pub max_backlog: usize,
}

impl AcctWriter {
    /// Builds the writer for `cfg` without touching the file system or starting anything.
    ///
    /// Fails on an unknown `record-fields` name or a file path without a file name.
    pub fn new(cfg: &AcctFile) -> Result<AcctWriter, AcctError> {
        let (target, out) = match &cfg.target {
            AcctTarget::File(p) => (p.display().to_string(), Output::File(FileOut::new(p, cfg)?)),
            AcctTarget::Pipe(c) => (format!("|{c}"), Output::Pipe(PipeOut::new(c))),
        };
        Ok(AcctWriter {
            layout: Layout::new(&cfg.records, &cfg.record_fields, &target)?,
            target,
            opts: RowOptions {
                iso_times: cfg.iso_times,
                user_string: cfg.user_string.clone(),
            },
            sync: cfg.sync,
            out,
            pending: Vec::new(),
            pending_rows: VecDeque::new(),
            clock: UNIX_EPOCH,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            buffer_size: DEFAULT_BUFFER_SIZE,
            max_backlog: DEFAULT_MAX_BACKLOG,
        })
    }

    /// The `<acct-file>` argument: the path, or `|command`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The column layout (header line, accepted record types).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether records of type `t` go to this file (its `records` list).
    pub fn accepts(&self, t: RecordType) -> bool {
        self.layout.accepts(t)
    }

    /// `sync yes`: the owner should [`flush`](AcctWriter::flush) after every batch, which
    /// then fdatasyncs.
    pub fn syncs(&self) -> bool {
        self.sync
    }

    /// The file currently written to (`None` for pipes, or before the first row).
    pub fn current_path(&self) -> Option<&Path> {
        match &self.out {
            Output::File(f) => f.current.as_ref().map(|c| c.path.as_path()),
            Output::Pipe(_) => None,
        }
    }

    /// Opens the first file (writing its header line) or starts the pipe command, so
    /// configuration problems show at start-up rather than at the first record.
    pub fn start(&mut self, now: SystemTime) -> Result<(), AcctError> {
        self.note(now);
        match &mut self.out {
            Output::File(f) if f.current.is_none() => f.open(
                now,
                self.layout.header_line().as_bytes(),
                self.pending.len(),
                self.pending_rows.len(),
            ),
            Output::Pipe(p) if !p.is_running() => {
                p.start(self.layout.header_line().as_bytes(), now)
            }
            _ => Ok(()),
        }
    }

    /// Writes `rec` with the current time. See [`AcctWriter::write_at`].
    pub fn write(&mut self, rec: &AcctRecord) -> Result<(), AcctError> {
        self.write_at(rec, SystemTime::now())
    }

    /// Buffers `rec` as a row if this file records its type; `now` decides roll-over
    /// (midnight UTC, `move-interval` with `move-to`, `max-size`) and pipe restarts.
    ///
    /// On error the row is still kept for a later attempt unless the error is
    /// [`AcctError::Dropped`].
    pub fn write_at(&mut self, rec: &AcctRecord, now: SystemTime) -> Result<(), AcctError> {
        let Some(row) = self.layout.encode(rec, &self.opts) else {
            return Ok(());
        };
        self.note(now);
        let mut first_err = self.prepare(now, Some(row.len())).err();
        if self.pending.len() + row.len() > self.max_backlog {
            return Err(AcctError::Dropped {
                target: self.target.clone(),
                dropped: 1,
            });
        }
        self.pending.extend_from_slice(row.as_bytes());
        self.pending_rows.push_back(row.len());
        if let Output::File(f) = &mut self.out {
            if let Some(cur) = &mut f.current {
                cur.size += row.len() as u64;
                cur.rows += 1;
            }
        }
        if self.pending.len() >= self.buffer_size {
            if let Err(e) = self.write_pending() {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Time-based upkeep without a record: closes (and moves) a file whose day or
    /// `move-interval` period is over, notices an exited pipe command and restarts it when
    /// its retry interval has passed. Called by the owner periodically.
    pub fn tick(&mut self, now: SystemTime) -> Result<(), AcctError> {
        self.note(now);
        match &mut self.out {
            Output::File(f) => {
                if f.must_rotate(now, None) {
                    self.close_file()?;
                }
                Ok(())
            }
            Output::Pipe(p) => {
                p.reap(now)?;
                self.prepare(now, None)
            }
        }
    }

    /// Closes the current file now (`pmta rotate acct`); the next row opens a new one.
    /// Pipes are left running.
    pub fn rotate(&mut self, now: SystemTime) -> Result<(), AcctError> {
        self.note(now);
        match self.out {
            Output::File(_) => self.close_file(),
            Output::Pipe(_) => Ok(()),
        }
    }

    /// Writes every buffered row and, with `sync yes`, fdatasyncs the file.
    pub fn flush(&mut self) -> Result<(), AcctError> {
        let now = self.clock;
        if !self.pending.is_empty() {
            self.prepare(now, None)?;
        }
        self.write_pending()?;
        if let (true, Output::File(f)) = (self.sync, &mut self.out) {
            if let Some(cur) = &f.current {
                cur.file
                    .sync_data()
                    .map_err(|e| AcctError::io("syncing", &cur.path, e))?;
            }
        }
        Ok(())
    }

    /// Writes what is buffered and closes the target: the file is closed (and moved to
    /// `move-to`); the pipe command gets end-of-input and is waited for. A pipe that is
    /// down is restarted once, ignoring the retry interval, so buffered rows get out.
    pub fn close(&mut self) -> Result<(), AcctError> {
        match &mut self.out {
            Output::File(_) => self.close_file(),
            Output::Pipe(p) => {
                if !self.pending.is_empty() && !p.is_running() {
                    p.start(self.layout.header_line().as_bytes(), self.clock)?;
                }
                self.write_pending()?;
                match &mut self.out {
                    Output::Pipe(p) => p.close(),
                    Output::File(_) => Ok(()),
                }
            }
        }
    }

    fn note(&mut self, now: SystemTime) {
        if now > self.clock {
            self.clock = now;
        }
    }

    /// Makes the target ready for a row of `row_len` bytes at `now`: rolls the file over
    /// if due and opens one; (re)starts a pipe if due.
    fn prepare(&mut self, now: SystemTime, row_len: Option<usize>) -> Result<(), AcctError> {
        match &mut self.out {
            Output::File(f) => {
                if f.must_rotate(now, row_len) {
                    self.close_file()?;
                }
                self.start(now)
            }
            Output::Pipe(p) => {
                if p.start_due(now, self.retry_interval) {
                    p.start(self.layout.header_line().as_bytes(), now)?;
                }
                Ok(())
            }
        }
    }

    fn close_file(&mut self) -> Result<(), AcctError> {
        let has_file = matches!(&self.out, Output::File(f) if f.current.is_some());
        if !has_file {
            return Ok(());
        }
        self.write_pending()?;
        match &mut self.out {
            Output::File(f) => f.close(self.sync),
            Output::Pipe(_) => Ok(()),
        }
    }

    /// Writes buffered rows to the open file or running command.
    fn write_pending(&mut self) -> Result<(), AcctError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let now = self.clock;
        match &mut self.out {
            Output::File(f) => {
                let Some(cur) = &mut f.current else {
                    return Ok(());
                };
                write_rows(
                    &mut cur.file,
                    &mut self.pending,
                    &mut self.pending_rows,
                    false,
                )
                .map_err(|e| AcctError::io("writing to", &cur.path, e))
            }
            Output::Pipe(p) => {
                let Some(stdin) = p.stdin() else {
                    return Ok(());
                };
                let res = write_rows(stdin, &mut self.pending, &mut self.pending_rows, true);
                res.map_err(|e| {
                    p.fail(now);
                    AcctError::pipe("writing to", &p.command, e)
                })
            }
        }
    }
}

impl Drop for AcctWriter {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!("accounting: {e}");
        }
    }
}

/// Writes `pending` to `w`, removing what was written. On error, rows written in full are
/// removed; a row written in part is either trimmed to its unwritten rest (`whole_rows`
/// false: a file, which continues where it stopped) or kept whole (a pipe, whose next
/// command must get complete rows).
fn write_rows(
    w: &mut impl Write,
    pending: &mut Vec<u8>,
    rows: &mut VecDeque<usize>,
    whole_rows: bool,
) -> io::Result<()> {
    let mut done = 0;
    let res = loop {
        if done == pending.len() {
            break w.flush();
        }
        match w.write(&pending[done..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let mut consumed = 0;
    while let Some(&len) = rows.front() {
        if consumed + len > done {
            break;
        }
        consumed += len;
        rows.pop_front();
    }
    if !whole_rows && done > consumed {
        if let Some(first) = rows.front_mut() {
            *first -= done - consumed;
        }
        consumed = done;
    }
    pending.drain(..consumed);
    res
}
