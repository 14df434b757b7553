//! The writer thread: the only code that appends to the spool.
//!
//! One OS thread owns the active segment. Callers queue requests on a bounded channel;
//! the writer takes the first, drains whatever else is already queued (the group),
//! validates it, writes all its records with one vectored write, fdatasyncs once, applies
//! the group to the index and only then answers every caller. At high concurrency one
//! fsync therefore serves many messages (group commit).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::IoSlice;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};

use crate::error::FullCause;
use crate::index::{DoneOutcome, Entry, Index, Location};
use crate::prepare::{self, Job, PrepareFn, Prepared, Preparer};
use crate::record::{self, Record, SEGMENT_HEADER_RECORD_LEN};
use crate::recovery::SegmentExtent;
use crate::segment::{self, ActiveSegment, SegmentIo};
use crate::{Envelope, MessageId, SpoolError, SpoolOptions};

/// Upper bound on the bytes one group writes, so a burst of large messages is split into
/// several fsyncs instead of one unbounded buffer list.
const MAX_GROUP_BYTES: usize = 32 << 20;
/// How long a cached `statvfs` answer is trusted.
const FREE_SPACE_TTL: Duration = Duration::from_millis(100);
/// Bytes one RecipientDone record takes: what the reserve keeps per pending recipient.
const DONE_RECORD_LEN: u64 = record::HEADER_LEN as u64 + 12;
/// Reserve beyond one done-marker per pending recipient (Remove records are shorter than
/// the done-markers they stand for, so they are covered too).
pub(crate) const RESERVE_BASE: u64 = 4 << 10;
/// How much further than the reserve the padding is extended when a group needs more, at
/// most (a quarter of a segment when segments are small), so that the groups after it
/// overwrite zeros instead of growing the file.
pub(crate) const MAX_EXTEND_STEP: u64 = 64 << 10;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

/// A message body as the listener hands it over: an edited header section followed by the
/// received bytes from `rest` on, written one after the other without being joined.
pub(crate) struct Body {
    pub head: Vec<u8>,
    pub received: Vec<u8>,
    pub rest: usize,
}

impl Body {
    fn len(&self) -> usize {
        self.head.len() + self.received.len() - self.rest
    }

    fn push_slices<'a>(&'a self, slices: &mut Vec<IoSlice<'a>>) {
        if !self.head.is_empty() {
            slices.push(IoSlice::new(&self.head));
        }
        slices.push(IoSlice::new(&self.received[self.rest..]));
    }
}

pub(crate) enum Request {
    Commit {
        id: MessageId,
        envelope: Arc<Envelope>,
        /// Encoded record without the body (see `record::encode_message_head`).
        record: Vec<u8>,
        body: Body,
        reply: Reply<MessageId>,
    },
    Remove {
        id: MessageId,
        reply: Reply<()>,
    },
    RecipientDone {
        id: MessageId,
        rcpt: u32,
        reply: Reply<()>,
    },
    /// Wakes the writer so it notices `Shared::closing`.
    Shutdown,
}

impl Request {
    fn size(&self) -> usize {
        match self {
            Request::Commit { record, body, .. } => record.len() + body.len(),
            _ => 32,
        }
    }
}

/// State shared between the handles and the writer thread.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub index: RwLock<Index>,
    pub next_id: AtomicU64,
    pub closing: AtomicBool,
    pub fsyncs: AtomicU64,
    pub records: AtomicU64,
    pub segments: AtomicU64,
    pub disk_bytes: AtomicU64,
    pub preallocated_bytes: AtomicU64,
}

impl Shared {
    pub fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Turns a freshly opened segment file into the I/O object the writer uses. Production
/// uses the file itself; tests wrap it to inject failures.
pub(crate) type IoWrap = Box<dyn Fn(File) -> Box<dyn SegmentIo> + Send>;

/// The writer's access to the file system, replaceable in tests: how segment files are
/// written, and how the next segment is preallocated.
pub(crate) struct Hooks {
    pub wrap: IoWrap,
    pub prepare: PrepareFn,
}

impl Hooks {
    pub fn plain() -> Hooks {
        Hooks {
            wrap: Box::new(|f| Box::new(f) as Box<dyn SegmentIo>),
            prepare: prepare::plain_prepare(),
        }
    }
}

/// Cached free-space probe.
struct FreeSpace {
    dir: PathBuf,
    min_free: u64,
    cached: u64,
    at: Option<Instant>,
}

impl FreeSpace {
    /// Bytes available to us, or `None` when the check is disabled or `statvfs` failed
    /// (then the write itself will tell).
    fn available(&mut self) -> Option<u64> {
        if self.min_free == 0 {
            return None;
        }
        if self.at.is_none_or(|t| t.elapsed() >= FREE_SPACE_TTL) {
            match rustix::fs::statvfs(&self.dir) {
                Ok(s) => {
                    self.cached = s.f_bavail.saturating_mul(s.f_frsize);
                    self.at = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "statvfs on spool directory failed");
                    return None;
                }
            }
        }
        Some(self.cached)
    }

    fn consumed(&mut self, bytes: u64) {
        self.cached = self.cached.saturating_sub(bytes);
    }

    fn invalidate(&mut self) {
        self.at = None;
    }
}

/// A validated request that will produce a record.
enum Op {
    Commit {
        id: MessageId,
        envelope: Arc<Envelope>,
        record: Vec<u8>,
        body: Body,
        reply: Reply<MessageId>,
    },
    Remove {
        id: MessageId,
        rec: Vec<u8>,
        reply: Reply<()>,
    },
    Done {
        id: MessageId,
        rcpt: u32,
        rec: Vec<u8>,
        reply: Reply<()>,
    },
}

impl Op {
    fn len(&self) -> u64 {
        (match self {
            Op::Commit { record, body, .. } => record.len() + body.len(),
            Op::Remove { rec, .. } | Op::Done { rec, .. } => rec.len(),
        }) as u64
    }

    fn fail(self, err: SpoolError) {
        // A caller that went away (dropped future) does not care; ignore send errors.
        match self {
            Op::Commit { reply, .. } => drop(reply.send(Err(err))),
            Op::Remove { reply, .. } | Op::Done { reply, .. } => drop(reply.send(Err(err))),
        }
    }
}

/// Successful answers of one group, sent together.
struct Replies {
    commits: Vec<(Reply<MessageId>, MessageId)>,
    others: Vec<Reply<()>>,
}

impl Replies {
    fn send(self) {
        for (reply, id) in self.commits {
            let _ = reply.send(Ok(id));
        }
        for reply in self.others {
            let _ = reply.send(Ok(()));
        }
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    opts: SpoolOptions,
    wrap: IoWrap,
    active: ActiveSegment,
    /// Closed segments, oldest first, with their file sizes (the active one is not here).
    closed: VecDeque<(u64, u64)>,
    /// Zero-fills the next segment in the background.
    preparer: Preparer,
    /// Live messages per segment.
    live: HashMap<u64, u64>,
    /// Segments with corrupt records: renamed to `*.corrupt` instead of deleted.
    damaged: HashSet<u64>,
    free: FreeSpace,
    /// Mail was refused for lack of space since the last commit that was written: the next
    /// commit may first empty a dead active segment (see `recycle_dead_active`).
    pressure: bool,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Writer {
    /// Sets up the writer over recovered state. `segments` are all existing segments; the
    /// last becomes active (a new one is created if there is none: preallocated right
    /// away when enabled, since nobody waits on the spool yet).
    pub fn new(
        shared: Arc<Shared>,
        opts: SpoolOptions,
        hooks: Hooks,
        mut segments: Vec<SegmentExtent>,
        live: HashMap<u64, u64>,
        damaged: HashSet<u64>,
    ) -> Result<Writer, SpoolError> {
        let free = FreeSpace {
            dir: shared.dir.clone(),
            min_free: opts.min_free_space,
            cached: 0,
            at: None,
        };
        let Hooks { wrap, prepare } = hooks;
        let job = Job {
            dir: shared.dir.clone(),
            size: opts.segment_size,
            min_free: opts.min_free_space,
            paced: true,
        };
        let mut preparer = Preparer::new(job, opts.preallocate, prepare);
        let active = match segments.pop() {
            None => first_segment(&shared, &wrap, &mut preparer, reserve_for(0))?,
            Some(seg) => {
                let file = segment::open_rw(&shared.dir, seg.number)
                    .map_err(|e| SpoolError::io("opening active segment", e))?;
                let mut active = ActiveSegment::new(seg.number, wrap(file), seg.len, seg.size);
                // A full-size file with room left was preallocated (by this or an earlier run).
                active.preallocated = seg.size >= opts.segment_size && seg.len < seg.size;
                if seg.len == 0 {
                    write_header(&shared, &mut active, 0)?;
                }
                active
            }
        };
        let mut writer = Writer {
            shared,
            opts,
            wrap,
            active,
            closed: segments.iter().map(|s| (s.number, s.size)).collect(),
            preparer,
            live,
            damaged,
            free,
            pressure: false,
        };
        // Segments left dead by a crash (or by corruption) go now, before `open` returns.
        writer.reclaim();
        // A segment written by an older petrel has no reserve for done-markers yet.
        writer.extend_reserve();
        writer.preparer.start();
        writer.publish_segment_stats();
        Ok(writer)
    }

    fn publish_segment_stats(&self) {
        let closed_bytes: u64 = self.closed.iter().map(|(_, size)| size).sum();
        self.shared
            .segments
            .store(self.closed.len() as u64 + 1, Ordering::Relaxed);
        self.shared
            .disk_bytes
            .store(closed_bytes + self.active.size(), Ordering::Relaxed);
        self.shared.preallocated_bytes.store(
            self.active.padding() + self.preparer.ready_size().unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// The thread body: group, write, sync, answer; until shut down.
    pub fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let group = self.collect_group(first, &mut rx);
            let shutdown = self.process(group);
            if shutdown || self.shared.closing.load(Ordering::Acquire) {
                break;
            }
        }
        // Refuse new requests, then finish everything already queued.
        rx.close();
        while let Ok(first) = rx.try_recv() {
            let group = self.collect_group(first, &mut rx);
            self.process(group);
        }
        tracing::debug!("spool writer stopped");
    }

    fn collect_group(&self, first: Request, rx: &mut mpsc::Receiver<Request>) -> Vec<Request> {
        let max_records = self.opts.max_pending.max(1);
        let mut bytes = first.size();
        let mut group = vec![first];
        while group.len() < max_records && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(req) => {
                    bytes += req.size();
                    group.push(req);
                }
                Err(_) => break,
            }
        }
        group
    }

    /// Handles one group; returns true if it contained a shutdown request.
    fn process(&mut self, group: Vec<Request>) -> bool {
        if self.preparer.poll() {
            // The prepared file took disk space.
            self.free.invalidate();
            self.publish_segment_stats();
        }
        let commit_bytes: u64 = group
            .iter()
            .filter(|r| matches!(r, Request::Commit { .. }))
            .map(|r| r.size() as u64)
            .sum();
        if commit_bytes > 0
            && self.active_is_dead()
            && (self.pressure || self.space_short(commit_bytes))
        {
            self.recycle_dead_active();
        }
        let (ops, shutdown) = self.validate(group);
        if !ops.is_empty() {
            self.write_group(ops, true);
        }
        shutdown
    }

    /// Writes `ops` as one group (rotating or extending the padding as needed), applies it
    /// and answers every caller. A group that ran out of space is tried once more after
    /// emptying a dead active segment, or else without its new messages, so removals and
    /// done-markers (which go into the reserve) are never lost to a full disk.
    fn write_group(&mut self, ops: Vec<Op>, may_retry: bool) {
        let new_rcpts: u64 = ops
            .iter()
            .map(|op| match op {
                Op::Commit { envelope, .. } => envelope.pending_recipients() as u64,
                _ => 0,
            })
            .sum();
        let group_len: u64 = ops.iter().map(Op::len).sum();
        // Commits must leave room for a done-marker per pending recipient; removals and
        // done-markers may use it.
        let pending = self.shared.read_index().recipients() + new_rcpts;
        let reserve = reserve_for(pending);
        if self.should_rotate(group_len + if new_rcpts > 0 { reserve } else { 0 }) {
            self.rotate(reserve);
        }
        // Extend the padding (only the part past the file's end is written) when the group
        // would leave less than the reserve.
        let start = self.active.len();
        let extend_to = if new_rcpts > 0 && self.active.padding() < group_len + reserve {
            start + group_len + reserve + self.extend_step()
        } else {
            0
        };

        let size_before = self.active.size();
        let result = {
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(ops.len() * 3);
            for op in &ops {
                match op {
                    Op::Commit { record, body, .. } => {
                        slices.push(IoSlice::new(record));
                        body.push_slices(&mut slices);
                    }
                    Op::Remove { rec, .. } | Op::Done { rec, .. } => slices.push(IoSlice::new(rec)),
                }
            }
            self.active.append(&mut slices, extend_to)
        };

        match result {
            Ok(at) => {
                debug_assert_eq!(at, start);
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .records
                    .fetch_add(ops.len() as u64, Ordering::Relaxed);
                // Writing over preallocated zeros takes no new space; only growth does.
                self.free.consumed(self.active.size() - size_before);
                if new_rcpts > 0 {
                    self.pressure = false;
                }
                let (replies, removed_any) = self.apply(ops, start);
                if removed_any {
                    self.reclaim();
                }
                self.publish_segment_stats();
                replies.send();
                // Only now, with every caller answered: possibly spawn the zero-filler.
                self.preparer.start();
            }
            Err(e) => {
                let err = SpoolError::io(e.context, e.error);
                tracing::error!(error = %err, records = ops.len(), "spool group commit failed; rolled back");
                self.free.invalidate();
                // A rotation may have created a segment (its header is on disk) before
                // the write failed: keep the published sizes true to the files.
                self.publish_segment_stats();
                if matches!(err, SpoolError::Full(_)) {
                    self.pressure = true;
                    if may_retry && self.recycle_dead_active() {
                        return self.write_group(ops, false);
                    }
                    if may_retry && new_rcpts > 0 {
                        let (commits, others): (Vec<Op>, Vec<Op>) = ops
                            .into_iter()
                            .partition(|op| matches!(op, Op::Commit { .. }));
                        for op in commits {
                            op.fail(err.clone());
                        }
                        if !others.is_empty() {
                            self.write_group(others, false);
                        }
                        return;
                    }
                }
                for op in ops {
                    op.fail(err.clone());
                }
            }
        }
    }

    /// How far past the reserve a group extends the padding.
    fn extend_step(&self) -> u64 {
        MAX_EXTEND_STEP.min(self.opts.segment_size / 4)
    }

    /// Makes sure the active segment's padding holds the reserve for the recipients now
    /// pending (best effort: at open, for segments written by an older version).
    fn extend_reserve(&mut self) {
        let reserve = reserve_for(self.shared.read_index().recipients());
        if self.active.poisoned || self.active.padding() >= reserve {
            return;
        }
        let extend_to = self.active.len() + reserve + self.extend_step();
        match self.active.append(&mut [], extend_to) {
            Ok(_) => self.shared.fsyncs.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(error = %e.error, "could not reserve spool space for done-markers");
                0
            }
        };
        self.free.invalidate();
        self.publish_segment_stats();
    }

    /// Whether `bytes` of new messages would be refused for `min_free_space`.
    fn space_short(&mut self, bytes: u64) -> bool {
        let headroom = self.headroom();
        self.free.available().is_some_and(|a| {
            a.saturating_add(headroom) < self.opts.min_free_space.saturating_add(bytes)
        })
    }

    /// The active segment is the only one, holds records, and none of them is live (and it
    /// is not kept as evidence of corruption).
    fn active_is_dead(&self) -> bool {
        let number = self.active.number;
        self.closed.is_empty()
            && !self.live.contains_key(&number)
            && !self.damaged.contains(&number)
            && !self.active.poisoned
            && self.active.len() > SEGMENT_HEADER_RECORD_LEN
    }

    /// The way out of a full disk when every message has left the spool but the active
    /// segment, which is never reclaimed, still holds their dead records: it is emptied in
    /// place (`ActiveSegment::reset`), which needs no free space. Only when nothing at all
    /// is live and no older segment is left, so no record that still matters is lost (a
    /// tombstone in it can only refer to messages in it or in older segments). Segments
    /// with corrupt records are kept as evidence. Returns true when space was freed.
    fn recycle_dead_active(&mut self) -> bool {
        if !self.active_is_dead() || self.shared.read_index().len() > 0 {
            return false;
        }
        let number = self.active.number;
        let header = record::encode(&Record::SegmentHeader {
            next_id: self.shared.next_id.load(Ordering::Relaxed),
            created_unix_ms: now_unix_ms(),
        })
        .expect("small record");
        let freed = self.active.size();
        match self.active.reset(&header) {
            Ok(()) => {
                self.shared.fsyncs.fetch_add(2, Ordering::Relaxed);
                tracing::warn!(
                    segment = number,
                    freed_bytes = freed - self.active.size(),
                    "spool short of space and nothing in it is live: emptied the active segment"
                );
                self.free.invalidate();
                self.preparer.unblock();
                self.publish_segment_stats();
                true
            }
            Err(e) => {
                tracing::error!(segment = number, error = %e.error, "could not empty the dead active spool segment ({})", e.context);
                self.free.invalidate();
                false
            }
        }
    }

    /// Answers requests that must not be written (full, unknown id, no-op) and returns
    /// the rest as ops, plus whether a shutdown request was seen.
    fn validate(&mut self, group: Vec<Request>) -> (Vec<Op>, bool) {
        let mut ops = Vec::with_capacity(group.len());
        let mut shutdown = false;
        // Zeros the spool already owns are free for its records: writing into them does
        // not take space from the file system.
        let headroom = self.headroom();
        let available = self.free.available().map(|a| a.saturating_add(headroom));
        let min_free = self.opts.min_free_space;
        let mut need = 0u64;
        // Effects of earlier requests of this same group on later ones.
        let mut gone: HashSet<MessageId> = HashSet::new();
        let mut done: HashSet<(MessageId, u32)> = HashSet::new();
        let mut done_count: HashMap<MessageId, u32> = HashMap::new();

        let index = self.shared.read_index();
        for req in group {
            match req {
                Request::Shutdown => shutdown = true,
                Request::Commit {
                    id,
                    envelope,
                    record,
                    body,
                    reply,
                } => {
                    let len = (record.len() + body.len()) as u64;
                    if let Some(available) = available {
                        if available < min_free.saturating_add(need).saturating_add(len) {
                            self.pressure = true;
                            let _ = reply.send(Err(SpoolError::Full(FullCause::BelowMinFree {
                                available,
                                min_free_space: min_free,
                            })));
                            continue;
                        }
                    }
                    need += len;
                    ops.push(Op::Commit {
                        id,
                        envelope,
                        record,
                        body,
                        reply,
                    });
                }
                // Removes and recipient-done records are never refused for space: they
                // are tiny and they are what frees space again.
                Request::Remove { id, reply } => {
                    if index.get(id).is_none() || !gone.insert(id) {
                        let _ = reply.send(Err(SpoolError::NotFound(id)));
                        continue;
                    }
                    let rec = record::encode(&Record::Remove { id: id.0 }).expect("small record");
                    ops.push(Op::Remove { id, rec, reply });
                }
                Request::RecipientDone { id, rcpt, reply } => {
                    let entry = match index.get(id) {
                        Some(e) if !gone.contains(&id) => e,
                        _ => {
                            let _ = reply.send(Err(SpoolError::NotFound(id)));
                            continue;
                        }
                    };
                    let Some(r) = entry.envelope.recipients.get(rcpt as usize) else {
                        let _ = reply.send(Err(SpoolError::NoSuchRecipient { id, index: rcpt }));
                        continue;
                    };
                    if r.done || !done.insert((id, rcpt)) {
                        // Already durable (or already in this group): idempotent success.
                        let _ = reply.send(Ok(()));
                        continue;
                    }
                    let count = done_count.entry(id).or_default();
                    *count += 1;
                    if *count >= entry.pending {
                        gone.insert(id);
                    }
                    let rec = record::encode(&Record::RecipientDone { id: id.0, rcpt })
                        .expect("small record");
                    ops.push(Op::Done {
                        id,
                        rcpt,
                        rec,
                        reply,
                    });
                }
            }
        }
        (ops, shutdown)
    }

    /// Applies a durable group to the index. Returns the answers to send (after
    /// housekeeping, so a caller sees stats and files that include its request) and
    /// whether any message left the spool.
    fn apply(&mut self, ops: Vec<Op>, start: u64) -> (Replies, bool) {
        let segment = self.active.number;
        let mut offset = start;
        let mut removed_any = false;
        let mut commits = Vec::new();
        let mut others = Vec::new();
        {
            let mut index = self.shared.write_index();
            for op in ops {
                let len = op.len();
                match op {
                    Op::Commit {
                        id,
                        envelope,
                        body,
                        reply,
                        ..
                    } => {
                        let location = Location {
                            segment,
                            offset,
                            len,
                        };
                        index.insert(id, Entry::new(envelope, location, body.len() as u64));
                        *self.live.entry(segment).or_default() += 1;
                        commits.push((reply, id));
                    }
                    Op::Remove { id, reply, .. } => {
                        if let Some(entry) = index.remove(id) {
                            dead(&mut self.live, entry.location.segment);
                            removed_any = true;
                        }
                        others.push(reply);
                    }
                    Op::Done {
                        id, rcpt, reply, ..
                    } => {
                        if let DoneOutcome::Completed(entry) = index.mark_done(id, rcpt) {
                            dead(&mut self.live, entry.location.segment);
                            removed_any = true;
                        }
                        others.push(reply);
                    }
                }
                offset += len;
            }
        }
        (Replies { commits, others }, removed_any)
    }

    /// Preallocated bytes the next group can be written into without growing a file:
    /// the active segment's padding, or the prepared segment if the group may go there.
    /// The reserve for done-markers is not counted: it is kept for them.
    fn headroom(&self) -> u64 {
        let prepared = self
            .preparer
            .ready_size()
            .map_or(0, |s| s.saturating_sub(SEGMENT_HEADER_RECORD_LEN));
        let room = if self.active.poisoned || self.active.len() >= self.opts.segment_size {
            prepared
        } else {
            prepared.max(self.active.padding())
        };
        room.saturating_sub(reserve_for(self.shared.read_index().recipients()))
    }

    /// Whether a group of `group_len` bytes (with the reserve it must leave) should go
    /// into a new segment.
    fn should_rotate(&self, group_len: u64) -> bool {
        if self.active.poisoned || self.active.len() >= self.opts.segment_size {
            return true;
        }
        // A preallocated segment is not grown past its size: when its padding cannot take
        // the group, the next segment starts now, as it would have once full (the
        // prepared one, or an appended one with its reserve). A group larger than any
        // segment has to grow one anyway; it stays.
        if self.active.preallocated
            && group_len > self.active.padding()
            && SEGMENT_HEADER_RECORD_LEN.saturating_add(group_len) <= self.opts.segment_size
        {
            return true;
        }
        // A group that does not fit in the active segment's padding would grow the file
        // (an appending write, whose fdatasync also writes the inode). If the prepared
        // segment can take it whole, move on now; the old segment keeps its unused
        // padding until it is reclaimed. This is also how an appended segment (from a
        // fallback, or an older petrel) hands over to preallocated ones.
        self.preparer.ready_size().is_some_and(|size| {
            group_len > self.active.padding()
                && SEGMENT_HEADER_RECORD_LEN.saturating_add(group_len) <= size
        })
    }

    /// Starts a new active segment: the prepared one if it is ready, else a new appended
    /// one. On failure the writer keeps writing to the current one (rotation is
    /// housekeeping, not a reason to refuse mail). A new appended segment gets `reserve`
    /// bytes of padding with its header, so done-markers always have room; if that cannot
    /// be written the writer stays where it is.
    fn rotate(&mut self, reserve: u64) {
        let number = self.active.number + 1;
        let mut next = None;
        if let Some(prepared) = self.preparer.take() {
            match activate_prepared(&self.shared, &self.wrap, prepared, number) {
                Ok(active) => next = Some(active),
                Err(e) => {
                    tracing::warn!(error = %e, segment = number, "could not use the prepared spool segment; appending instead");
                }
            }
        }
        let next = match next {
            Some(active) => Ok(active),
            None => create_segment(&self.shared, &self.wrap, number, reserve),
        };
        match next {
            Ok(next) => {
                let old = std::mem::replace(&mut self.active, next);
                self.closed.push_back((old.number, old.size()));
                tracing::debug!(
                    segment = number,
                    preallocated = self.active.padding() > 0,
                    "spool rotated to a new segment"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, segment = number, "could not start a new spool segment");
            }
        }
        // A new segment is a good moment to try preallocating again.
        self.preparer.unblock();
    }

    /// Deletes closed segments from the oldest on, while they hold no live message.
    /// Stopping at the first segment with a live message keeps every tombstone that
    /// could still matter: a tombstone only refers to messages in its own or older
    /// segments, and those are all gone before it is.
    fn reclaim(&mut self) {
        let mut changed = false;
        while let Some(&(number, _)) = self.closed.front() {
            if self.live.contains_key(&number) {
                break;
            }
            let path = segment::path(&self.shared.dir, number);
            let result = if self.damaged.remove(&number) {
                // Keep the evidence, out of the way of the log.
                let to = segment::quarantine_path(&self.shared.dir, number);
                tracing::warn!(path = %to.display(), "spool segment with corrupt records kept for inspection");
                fs::rename(&path, &to)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = result {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, path = %path.display(), "could not delete spool segment");
                    break;
                }
            }
            // Make each deletion durable before the next, so a crash can never leave an
            // older segment behind whose tombstones lived in a deleted newer one.
            if let Err(e) = segment::sync_dir(&self.shared.dir) {
                tracing::warn!(error = %e, "could not sync spool directory after deleting a segment");
            }
            self.closed.pop_front();
            changed = true;
            tracing::debug!(segment = number, "spool segment reclaimed");
        }
        if changed {
            self.free.invalidate();
            // Space came back: preallocation may work again.
            self.preparer.unblock();
            self.publish_segment_stats();
        }
    }
}

/// One message of `segment` left the spool.
fn dead(live: &mut HashMap<u64, u64>, segment: u64) {
    if let Some(n) = live.get_mut(&segment) {
        *n -= 1;
        if *n == 0 {
            live.remove(&segment);
        }
    }
}

/// Room kept in the active segment for a done-marker per pending recipient.
pub(crate) fn reserve_for(pending: u64) -> u64 {
    RESERVE_BASE.saturating_add(pending.saturating_mul(DONE_RECORD_LEN))
}

/// Writes the segment's header record, followed by `padding` zero bytes (0: none).
fn write_header(
    shared: &Shared,
    active: &mut ActiveSegment,
    padding: u64,
) -> Result<(), SpoolError> {
    let header = record::encode(&Record::SegmentHeader {
        next_id: shared.next_id.load(Ordering::Relaxed),
        created_unix_ms: now_unix_ms(),
    })
    .expect("small record");
    let extend_to = if padding > 0 {
        active.len() + header.len() as u64 + padding
    } else {
        0
    };
    active
        .append(&mut [IoSlice::new(&header)], extend_to)
        .map_err(|e| SpoolError::io(e.context, e.error))?;
    shared.fsyncs.fetch_add(1, Ordering::Relaxed);
    shared.records.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Creates segment `number` with its header record and `reserve` bytes of padding,
/// durable (file data and directory entry) before it is used.
fn create_segment(
    shared: &Shared,
    wrap: &IoWrap,
    number: u64,
    reserve: u64,
) -> Result<ActiveSegment, SpoolError> {
    let dir = &shared.dir;
    let file = segment::create(dir, number).map_err(|e| SpoolError::io("creating segment", e))?;
    let mut active = ActiveSegment::new(number, wrap(file), 0, 0);
    let made = write_header(shared, &mut active, reserve).and_then(|()| {
        segment::sync_dir(dir).map_err(|e| SpoolError::io("syncing spool directory", e))
    });
    if let Err(e) = made {
        let _ = fs::remove_file(segment::path(dir, number));
        return Err(e);
    }
    Ok(active)
}

/// Turns the prepared file into segment `number` with its header record (written over
/// the zeros), durable (file data and directory entry) before it is used. On failure the
/// prepared file is gone; the caller falls back to [`create_segment`].
fn activate_prepared(
    shared: &Shared,
    wrap: &IoWrap,
    prepared: Prepared,
    number: u64,
) -> Result<ActiveSegment, SpoolError> {
    let dir = &shared.dir;
    let from = Prepared::path(dir);
    if let Err(e) = segment::rename_into_place(&from, dir, number) {
        let _ = fs::remove_file(&from);
        return Err(SpoolError::io("moving prepared segment into place", e));
    }
    let mut active = ActiveSegment::new(number, wrap(prepared.file), 0, prepared.size);
    active.preallocated = true;
    let made = write_header(shared, &mut active, 0).and_then(|()| {
        segment::sync_dir(dir).map_err(|e| SpoolError::io("syncing spool directory", e))
    });
    if let Err(e) = made {
        let _ = fs::remove_file(segment::path(dir, number));
        let _ = segment::sync_dir(dir);
        return Err(e);
    }
    Ok(active)
}

/// Segment 1 of a new spool: preallocated if that works, appended otherwise.
fn first_segment(
    shared: &Shared,
    wrap: &IoWrap,
    preparer: &mut Preparer,
    reserve: u64,
) -> Result<ActiveSegment, SpoolError> {
    if let Some(prepared) = preparer.prepare_now() {
        match activate_prepared(shared, wrap, prepared, 1) {
            Ok(active) => return Ok(active),
            Err(e) => {
                tracing::warn!(error = %e, "could not use the prepared spool segment; appending instead");
            }
        }
    }
    create_segment(shared, wrap, 1, reserve)
}
