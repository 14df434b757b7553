//! petrel's durable message spool: an append-only log of segment files with group commit.
//!
//! Why it exists: "nothing acknowledged is ever lost". The SMTP listener calls
//! [`Spool::commit`] and answers `250` only when it resolves, which happens after the
//! message's record is fdatasync'ed. One writer thread batches every request that arrived
//! meanwhile into a single write and a single fsync, so durability costs one disk flush per
//! batch rather than per message. At start-up [`Spool::open`] replays the segments and
//! rebuilds the in-memory index, so every acknowledged message is found again.
//!
//! Because every `250` waits for an `fdatasync`, segments are preallocated by default:
//! created at full size by writing zeros, on a background thread, so commits overwrite
//! existing blocks and the `fdatasync` has no inode to update (about half the latency on
//! ext4). See `prepare.rs`.
//!
//! The on-disk format, recovery rules and reclamation policy are described in
//! `docs/spool-format.md`.

mod envelope;
mod error;
mod index;
mod prepare;
mod record;
mod recovery;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use envelope::{Envelope, MessageFacts, MessageId, ParseMessageIdError, Recipient, Ret};
pub use error::{FullCause, SpoolError};
pub use index::DomainSummary;
pub use recovery::{CorruptRecord, RecoveryReport};

use record::Record;
use writer::{Hooks, Request, Shared, Writer};

/// Tuning knobs, normally taken from the configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Refuse new messages (with [`SpoolError::Full`]) when writing them would leave less
    /// than this many bytes free on the spool's file system, so the disk never fills up
    /// completely and removals, logs and the OS keep working. 0 disables the check.
    /// Zero-filled space the spool already holds (see `preallocate`) is not taken from
    /// the file system again, so records written into it are not refused; a segment is
    /// only preallocated if that leaves at least this much free.
    pub min_free_space: u64,
    /// Start a new segment file once the active one reaches this size. Smaller segments
    /// are reclaimed sooner; larger ones mean fewer files. Preallocated segments are
    /// created at exactly this size.
    pub segment_size: u64,
    /// Capacity of the request queue in front of the writer. When it is full, callers of
    /// `commit` wait (back-pressure) instead of growing memory without bound. Also the
    /// largest number of records in one group commit.
    pub max_pending: usize,
    /// Create segment files at their full `segment_size` by writing zeros, ahead of time
    /// on a background thread, so commits overwrite existing blocks instead of growing the
    /// file: `fdatasync` then has no inode to write and takes roughly half as long. Costs
    /// up to two segments of disk space in advance (the rest of the active segment and the
    /// prepared next one). When preparing fails (say, the disk is nearly full) the spool
    /// appends as if this were off; mail is never refused because of it.
    pub preallocate: bool,
}

impl Default for SpoolOptions {
    /// 100 MiB minimum free space, 64 MiB segments, 4096 queued requests, preallocation on.
    fn default() -> Self {
        SpoolOptions {
            min_free_space: 100 << 20,
            segment_size: 64 << 20,
            max_pending: 4096,
            preallocate: true,
        }
    }
}

/// Counters for monitoring and benchmarks. `records_written / fsyncs` shows how well
/// group commit batches under the current load.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Live messages.
    pub messages: u64,
    /// Pending recipients of live messages.
    pub recipients: u64,
    /// Body bytes of live messages.
    pub bytes: u64,
    /// Segment files on disk.
    pub segments: u64,
    /// Size of all segment files (live and dead records, and zero padding of preallocated
    /// segments).
    pub disk_bytes: u64,
    /// Zero-filled space reserved for future records: the unused rest of the active
    /// segment plus the prepared next segment (which is not in `disk_bytes`). 0 when
    /// preallocation is off.
    pub preallocated_bytes: u64,
    /// fdatasync calls on segment files since open.
    pub fsyncs: u64,
    /// Records written since open (messages, removals, recipient-done, segment headers).
    pub records_written: u64,
}

/// Handle to an open spool. Cheap to clone (an `Arc`), `Send + Sync`; every clone talks to
/// the same writer thread. The writer stops when [`Spool::shutdown`] is called or the last
/// clone is dropped, after finishing every request already queued.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Holds an exclusive `flock` on `<dir>/lock` so two processes never append to the
    /// same spool.
    _lock: File,
}

impl Inner {
    fn stop(&self) {
        self.shared.closing.store(true, Ordering::Release);
        // Wakes an idle writer. If the queue is full the writer is busy and will see the
        // flag after its current group.
        let _ = self.tx.try_send(Request::Shutdown);
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("spool writer thread panicked");
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`: takes the directory lock, replays
    /// every segment, discards a torn tail, rebuilds the index and starts the writer
    /// thread. Blocking; call it once at start-up and log the [`RecoveryReport`]. A new
    /// spool's first segment is preallocated here (when enabled), before `open` returns.
    pub fn open(dir: &Path, opts: SpoolOptions) -> Result<(Spool, RecoveryReport), SpoolError> {
        Spool::open_with(dir, opts, Hooks::plain())
    }

    pub(crate) fn open_with(
        dir: &Path,
        opts: SpoolOptions,
        hooks: Hooks,
    ) -> Result<(Spool, RecoveryReport), SpoolError> {
        fs::create_dir_all(dir).map_err(|e| SpoolError::io("creating spool directory", e))?;
        let lock = lock_dir(dir)?;
        let recovered = recovery::recover(dir)?;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let next_id = recovered.id_floor.max(now_ms << 16).max(1);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            index: RwLock::new(recovered.index),
            next_id: AtomicU64::new(next_id),
            closing: AtomicBool::new(false),
            fsyncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            disk_bytes: AtomicU64::new(0),
            preallocated_bytes: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel(opts.max_pending.max(1));
        let writer = Writer::new(
            shared.clone(),
            opts,
            hooks,
            recovered.segments,
            recovered.live,
            recovered.damaged,
        )?;
        let thread = std::thread::Builder::new()
            .name("petrel-spool-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| SpoolError::io("starting spool writer thread", e))?;
        let report = recovered.report;
        tracing::info!(dir = %dir.display(), "{report}");
        let spool = Spool {
            inner: Arc::new(Inner {
                shared,
                tx,
                thread: Mutex::new(Some(thread)),
                _lock: lock,
            }),
        };
        Ok((spool, report))
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SpoolError>>) -> Request,
    ) -> Result<T, SpoolError> {
        if self.inner.shared.closing.load(Ordering::Acquire) {
            return Err(SpoolError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(make(reply))
            .await
            .map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// Stores a message durably and returns its id. Resolves only after the record is
    /// fdatasync'ed, so the caller may then answer `250`. On `Err` nothing was stored and
    /// the caller must answer 4xx. The recipients' `done` flags are ignored (stored as
    /// pending). Waits when the writer's queue is full (back-pressure).
    ///
    /// Dropping the future after the request was queued does not cancel the write: the
    /// message may still be stored, as with any MTA whose client disconnects before 250.
    pub async fn commit(
        &self,
        mut envelope: Envelope,
        body: Vec<u8>,
    ) -> Result<MessageId, SpoolError> {
        if envelope.recipients.is_empty() {
            return Err(SpoolError::NoRecipients);
        }
        for r in &mut envelope.recipients {
            r.done = false;
        }
        let json = serde_json::to_vec(&envelope).expect("an Envelope always serializes to JSON");
        let id = MessageId(self.inner.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let head =
            record::encode_message_head(id.0, &json, &body).map_err(|_| SpoolError::TooLarge)?;
        let envelope = Arc::new(envelope);
        self.request(|reply| Request::Commit {
            id,
            envelope,
            head,
            body,
            reply,
        })
        .await
    }

    /// Removes a message for good (delivered, bounced, expired or deleted by an operator)
    /// by writing a durable tombstone. Its segment space is reclaimed later. Errors with
    /// [`SpoolError::NotFound`] if the message is not live.
    pub async fn remove(&self, id: MessageId) -> Result<(), SpoolError> {
        self.request(|reply| Request::Remove { id, reply }).await
    }

    /// Durably marks recipient `rcpt_index` (position in `Envelope::recipients`) as
    /// finished, so a restart does not deliver to it again. When the last pending
    /// recipient is done the message counts as removed. Marking a recipient twice is a
    /// no-op.
    pub async fn recipient_done(&self, id: MessageId, rcpt_index: u32) -> Result<(), SpoolError> {
        self.request(|reply| Request::RecipientDone {
            id,
            rcpt: rcpt_index,
            reply,
        })
        .await
    }

    /// Reads a message body back from its segment (one `pread`), verifying the record's
    /// CRC so a damaged disk never produces a half or altered message. Blocking I/O: from
    /// async code call it via `spawn_blocking` for large bodies.
    pub fn read_body(&self, id: MessageId) -> Result<Vec<u8>, SpoolError> {
        let location = {
            let index = self.inner.shared.read_index();
            index
                .get(id)
                .map(|e| e.location)
                .ok_or(SpoolError::NotFound(id))?
        };
        let corrupt = |reason: String| SpoolError::Corrupt {
            segment: location.segment,
            offset: location.offset,
            reason,
        };
        let len = usize::try_from(location.len).map_err(|_| SpoolError::TooLarge)?;
        let mut buf = segment::read_at(
            &self.inner.shared.dir,
            location.segment,
            location.offset,
            len,
        )
        .map_err(|e| match e.kind() {
            // Removed and reclaimed between the lookup and the read.
            std::io::ErrorKind::NotFound => SpoolError::NotFound(id),
            _ => SpoolError::io("reading message", e),
        })?;
        let body_start = match record::decode(&buf) {
            Ok((Record::Message { id: rid, body, .. }, _)) if rid == id.0 => buf.len() - body.len(),
            Ok(_) => {
                return Err(corrupt(format!(
                    "record at the indexed location is not message {id}"
                )))
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        buf.drain(..body_start);
        Ok(buf)
    }

    /// The message's envelope, with recipients' `done` flags current. `None` if the
    /// message is not live.
    pub fn envelope(&self, id: MessageId) -> Option<Arc<Envelope>> {
        let index = self.inner.shared.read_index();
        index.get(id).map(|e| e.envelope.clone())
    }

    /// The stored body's size in bytes (Signals' `msg_size`). `None` if the message is not
    /// live.
    pub fn body_len(&self, id: MessageId) -> Option<u64> {
        let index = self.inner.shared.read_index();
        index.get(id).map(|e| e.body_len)
    }

    /// Pending work grouped by recipient domain, largest first: the data behind `show
    /// domains`. Maintained incrementally, so cheap to call often.
    pub fn domain_summary(&self) -> Vec<DomainSummary> {
        self.inner.shared.read_index().domain_summary()
    }

    /// Ids of live messages, oldest first: what the queue manager loads at start-up.
    pub fn ids(&self) -> Vec<MessageId> {
        self.inner.shared.read_index().ids()
    }

    /// Current counters (see [`SpoolStats`]).
    pub fn stats(&self) -> SpoolStats {
        let shared = &self.inner.shared;
        let (messages, recipients, bytes) = {
            let index = shared.read_index();
            (index.len() as u64, index.recipients(), index.bytes())
        };
        SpoolStats {
            messages,
            recipients,
            bytes,
            segments: shared.segments.load(Ordering::Relaxed),
            disk_bytes: shared.disk_bytes.load(Ordering::Relaxed),
            preallocated_bytes: shared.preallocated_bytes.load(Ordering::Relaxed),
            fsyncs: shared.fsyncs.load(Ordering::Relaxed),
            records_written: shared.records.load(Ordering::Relaxed),
        }
    }

    /// Stops the writer after it has finished every request already queued, and waits for
    /// it. Affects all clones: later requests fail with [`SpoolError::Closed`]. Dropping the
    /// last clone does the same implicitly. Blocks for at most a few fsyncs.
    pub fn shutdown(self) {
        self.inner.stop();
    }
}

/// Takes an exclusive `flock` on `<dir>/lock`. Retries for up to half a second: a process
/// that just forked (to exec a helper) briefly shares the previous holder's lock.
fn lock_dir(dir: &Path) -> Result<File, SpoolError> {
    use rustix::fs::{flock, FlockOperation};
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| SpoolError::io("opening spool lock file", e))?;
    let mut attempts = 0;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => {
                return Err(SpoolError::io(
                    "locking spool directory (is another petrel using it?)",
                    e.into(),
                ))
            }
        }
    }
}
