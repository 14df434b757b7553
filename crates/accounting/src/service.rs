//! [`Accounting`]: every `<acct-file>` of a configuration behind one background thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use petrel_config::AcctFile;

use crate::error::AcctError;
use crate::record::AcctRecord;
use crate::writer::AcctWriter;

/// Records that may wait in the channel before [`Accounting::record`] blocks.
pub const CHANNEL_CAPACITY: usize = 4096;
/// The writer thread flushes every file at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Records written per batch before the thread looks at the clock again.
const MAX_BATCH: usize = 1024;
/// A repeated identical error of one target is logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

enum Msg {
    Record(Box<AcctRecord>),
    Flush(mpsc::Sender<Result<(), AcctError>>),
    Rotate(mpsc::Sender<Result<(), AcctError>>),
}

/// Counters of an [`Accounting`].
///
/// Exists so the management interface can show whether accounting keeps up and whether
/// any target is failing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AcctStats {
    /// Records accepted by [`Accounting::record`].
    pub recorded: u64,
    /// Errors reported by targets (each is also logged, rate-limited).
    pub errors: u64,
    /// Rows discarded because a failing target's backlog was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    recorded: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
}

/// All accounting files of a configuration, written by one background thread.
///
/// Exists so recording an event on the hot path (delivery, reception) costs one bounded
/// channel send and no I/O. The thread batches records, writes each to every file whose
/// `records` list includes its type, flushes at least every 200 ms (after every batch for
/// `sync yes` files) and drains everything on [`Accounting::shutdown`]. When the channel
/// is full, [`Accounting::record`] blocks: back-pressure, never a silent drop.
pub struct Accounting {
    tx: RwLock<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<JoinHandle<Result<(), AcctError>>>>,
    counters: Arc<Counters>,
}

impl Accounting {
    /// Builds a writer per `<acct-file>`, opens the files and starts the pipe commands,
    /// then starts the writer thread.
    ///
    /// Fails on the first unknown `record-fields` name or a file that cannot be created,
    /// so the daemon can refuse to start the way PowerMTA does.
    pub fn from_config(files: &[AcctFile]) -> Result<Accounting, AcctError> {
        let now = SystemTime::now();
        let mut writers = Vec::with_capacity(files.len());
        for f in files {
            writers.push(AcctWriter::new(f)?);
        }
        for w in &mut writers {
            w.start(now)?;
        }
        Accounting::with_writers(writers)
    }

    /// Starts the writer thread over ready-made writers.
    ///
    /// Exists for callers that tune writers first (e.g. a pipe's `retry_interval`).
    pub fn with_writers(writers: Vec<AcctWriter>) -> Result<Accounting, AcctError> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let thread = thread::Builder::new()
            .name("petrel-acct".into())
            .spawn(move || run(writers, rx, &c))
            .map_err(|e| AcctError::Thread(Arc::new(e)))?;
        Ok(Accounting {
            tx: RwLock::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// Hands `rec` to the writer thread. Cheap; blocks only while the channel is full.
    ///
    /// Fails only after [`Accounting::shutdown`] (the record is not taken).
    pub fn record(&self, rec: AcctRecord) -> Result<(), AcctError> {
        self.send(Msg::Record(Box::new(rec)))?;
        self.counters.recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until every record handed over so far is written (and synced for
    /// `sync yes`). Returns the first error of any target.
    pub fn flush(&self) -> Result<(), AcctError> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Flush(tx))?;
        rx.recv().map_err(|_| AcctError::ThreadGone)?
    }

    /// Closes every file now (`pmta rotate acct`); the next record opens new ones.
    pub fn rotate(&self) -> Result<(), AcctError> {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Rotate(tx))?;
        rx.recv().map_err(|_| AcctError::ThreadGone)?
    }

    /// Counters since start.
    pub fn stats(&self) -> AcctStats {
        AcctStats {
            recorded: self.counters.recorded.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops taking records, writes everything already handed over, closes every file
    /// (moving it to `move-to`) and pipe, and joins the thread. Idempotent.
    ///
    /// Returns the first error met while draining or closing.
    pub fn shutdown(&self) -> Result<(), AcctError> {
        // Taking the write lock waits for senders in flight; dropping the only sender lets
        // the thread see "disconnected" once it has received every message.
        self.tx
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle {
            Some(h) => h.join().map_err(|_| AcctError::ThreadGone)?,
            None => Ok(()),
        }
    }

    fn send(&self, msg: Msg) -> Result<(), AcctError> {
        let guard = self.tx.read().unwrap_or_else(PoisonError::into_inner);
        let tx = guard.as_ref().ok_or(AcctError::Closed)?;
        tx.send(msg).map_err(|_| AcctError::ThreadGone)
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("accounting: {e}");
        }
    }
}

/// Reports target errors: counts them and logs them, an identical repeat at most every
/// [`LOG_EVERY`].
struct Reporter<'a> {
    counters: &'a Counters,
    last: Vec<Option<(String, Instant)>>,
}

impl Reporter<'_> {
    fn report(&mut self, idx: usize, res: Result<(), AcctError>) -> Result<(), AcctError> {
        let Err(e) = res else {
            return Ok(());
        };
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        if let AcctError::Dropped { dropped, .. } = &e {
            self.counters.dropped.fetch_add(*dropped, Ordering::Relaxed);
        }
        let text = e.to_string();
        let now = Instant::now();
        let slot = &mut self.last[idx];
        let repeat =
            matches!(slot, Some((t, at)) if *t == text && now.duration_since(*at) < LOG_EVERY);
        if !repeat {
            tracing::error!("accounting: {text}");
            *slot = Some((text, now));
        }
        Err(e)
    }
}

/// Pause after a small batch; bounded so `flush` callers wait at most this much longer.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

fn run(
    mut writers: Vec<AcctWriter>,
    rx: Receiver<Msg>,
    counters: &Counters,
) -> Result<(), AcctError> {
    let mut rep = Reporter {
        counters,
        last: vec![None; writers.len()],
    };
    let mut next_flush = Instant::now() + FLUSH_INTERVAL;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(msg) => {
                handle(&mut writers, &mut rep, msg);
                let mut n = 1;
                for msg in rx.try_iter().take(MAX_BATCH) {
                    handle(&mut writers, &mut rep, msg);
                    n += 1;
                }
                for (i, w) in writers.iter_mut().enumerate() {
                    if w.syncs() {
                        let _ = rep.report(i, w.flush());
                    }
                }
                // A small batch means records trickle in one by one: let them gather for a
                // moment instead of waking this thread (and the sender) per record. At
                // thousands of deliveries a second this saves most context switches.
                if n < MAX_BATCH {
                    std::thread::sleep(BATCH_PAUSE);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_flush {
            let now = SystemTime::now();
            for (i, w) in writers.iter_mut().enumerate() {
                let _ = rep.report(i, w.tick(now));
                let _ = rep.report(i, w.flush());
            }
            next_flush = Instant::now() + FLUSH_INTERVAL;
        }
    }
    let mut first = Ok(());
    for (i, w) in writers.iter_mut().enumerate() {
        if let Err(e) = rep.report(i, w.close()) {
            first = first.and(Err(e));
        }
    }
    first
}

fn handle(writers: &mut [AcctWriter], rep: &mut Reporter<'_>, msg: Msg) {
    match msg {
        Msg::Record(rec) => {
            let now = SystemTime::now();
            for (i, w) in writers.iter_mut().enumerate() {
                if w.accepts(rec.record_type) {
                    let _ = rep.report(i, w.write_at(&rec, now));
                }
            }
        }
        Msg::Flush(reply) => {
            let mut first = Ok(());
            for (i, w) in writers.iter_mut().enumerate() {
                if let Err(e) = rep.report(i, w.flush()) {
                    first = first.and(Err(e));
                }
            }
            let _ = reply.send(first);
        }
        Msg::Rotate(reply) => {
            let now = SystemTime::now();
            let mut first = Ok(());
            for (i, w) in writers.iter_mut().enumerate() {
                if let Err(e) = rep.report(i, w.rotate(now)) {
                    first = first.and(Err(e));
                }
            }
            let _ = reply.send(first);
        }
    }
}
