//! The durable event spool: NDJSON files that the uploader ships and then deletes.
//!
//! Layout: `<dir>/sp1-<16 upper-case hex digits>.json.tmp` while being written, renamed to
//! `sp1-<16 upper-case hex digits>.json` once complete and fsynced (the article's
//! `sp1-0000000000003FBD.json`). The number is the opening time in nanoseconds, so it grows
//! with time and number order is age order. Files an earlier petrel named in lower-case hex
//! are still recovered and uploaded (the uploader orders by the number, not the text). Only
//! closed (`.json`) files are ever uploaded.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::EventsError;
use crate::event::{Event, Privacy};

/// Where and how the spool writes, so tests and operators can tune rotation.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Spool directory (PowerMTA: `/var/lib/pmta/sparkpost`).
    pub dir: PathBuf,
    /// Close a file once it holds this many bytes; keep it ≤ 5 MiB so one file fits a batch.
    pub max_file_bytes: u64,
    /// Close a non-empty file this long after its first event, bounding upload latency.
    pub max_file_age: Duration,
    /// Events buffered between `emit` and the writer; `emit` blocks when it is full.
    pub channel_capacity: usize,
    /// `privacy-policy`.
    pub privacy: Privacy,
}

impl SpoolConfig {
    /// Defaults: 5 MiB files, 10 s age, 64 Ki events in flight, recipients retained.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            max_file_bytes: 5 * 1024 * 1024,
            max_file_age: Duration::from_secs(10),
            channel_capacity: 65536,
            privacy: Privacy::Retain,
        }
    }
}

/// How long the writer lets events gather while a file is open.
const BATCH_PAUSE: Duration = Duration::from_millis(10);

enum Msg {
    Line(String),
    Rotate(SyncSender<()>),
}

/// Accepts events from every stage and persists them for the uploader.
///
/// `emit` only serialises the event and hands the line to one writer thread over a bounded
/// channel: the hot path never touches the disk, and when the writer falls behind `emit`
/// blocks rather than dropping events. The writer groups writes and fsyncs once per file.
pub struct EventSpool {
    tx: Mutex<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    privacy: Privacy,
    /// Producers waiting on a full channel; while there are any, the writer skips its pause.
    blocked: Arc<AtomicUsize>,
    /// Events accepted by `emit` since open.
    emitted: AtomicU64,
    /// Events lost because the disk refused them (see `Writer::abandon`).
    lost: Arc<AtomicU64>,
}

impl EventSpool {
    /// Creates the directory, recovers `.tmp` files left by a crash (cut back to the last
    /// complete line, then closed), and starts the writer thread.
    pub fn open(config: SpoolConfig) -> Result<Self, EventsError> {
        fs::create_dir_all(&config.dir).map_err(|e| io_err(&config.dir, e))?;
        recover_tmp_files(&config.dir)?;
        let (tx, rx) = mpsc::sync_channel(config.channel_capacity.max(1));
        let privacy = config.privacy;
        let blocked = Arc::new(AtomicUsize::new(0));
        let writer_blocked = blocked.clone();
        let lost = Arc::new(AtomicU64::new(0));
        let writer_lost = lost.clone();
        let thread = std::thread::Builder::new()
            .name("petrel-events-spool".into())
            .spawn(move || Writer::new(config, writer_blocked, writer_lost).run(rx))
            .map_err(|e| EventsError::Io {
                path: PathBuf::from("<thread>"),
                source: e,
            })?;
        Ok(EventSpool {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            privacy,
            blocked,
            emitted: AtomicU64::new(0),
            lost,
        })
    }

    /// Queues one event. Blocks while the channel is full; fails only after `close`.
    pub fn emit(&self, event: &Event) -> Result<(), EventsError> {
        let line = event.to_ingest_json_with(self.privacy);
        self.send(Msg::Line(line))?;
        self.emitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Events accepted by [`EventSpool::emit`] since open (for `show status`).
    pub fn emitted(&self) -> u64 {
        self.emitted.load(Ordering::Relaxed)
    }

    /// Events lost since open because the disk refused to take them (full, or failing):
    /// those still buffered in memory when a write to the event file failed. Each loss is
    /// logged with its count; this is the metric (`petrel_signals_events_lost_total`).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Closes the current file now (making it visible to the uploader) and waits until it
    /// is durable. For shutdown paths and tests; normal rotation is by size and age.
    pub fn rotate(&self) -> Result<(), EventsError> {
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        self.send(Msg::Rotate(done_tx))?;
        done_rx.recv().map_err(|_| EventsError::WriterGone)
    }

    /// Writes out and closes everything queued, then stops the writer.
    pub fn close(&self) -> Result<(), EventsError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(tx);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.join().map_err(|_| EventsError::WriterGone)?;
        }
        Ok(())
    }

    fn send(&self, msg: Msg) -> Result<(), EventsError> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            return Err(EventsError::WriterGone);
        };
        match tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                self.blocked.fetch_add(1, Ordering::Relaxed);
                let sent = tx.send(msg).map_err(|_| EventsError::WriterGone);
                self.blocked.fetch_sub(1, Ordering::Relaxed);
                sent
            }
            Err(TrySendError::Disconnected(_)) => Err(EventsError::WriterGone),
        }
    }
}

impl Drop for EventSpool {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

struct OpenFile {
    tmp: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    opened: Instant,
}

struct Writer {
    config: SpoolConfig,
    blocked: Arc<AtomicUsize>,
    lost: Arc<AtomicU64>,
    current: Option<OpenFile>,
    last_name: u64,
}

impl Writer {
    fn new(config: SpoolConfig, blocked: Arc<AtomicUsize>, lost: Arc<AtomicU64>) -> Self {
        Writer {
            config,
            blocked,
            lost,
            current: None,
            last_name: 0,
        }
    }

    /// Gives up the current file after a write to it failed. What reached the file is
    /// recovered at the next start (complete lines); the events still in the write buffer
    /// are lost: counted and logged, never silently.
    fn abandon(&mut self, error: &io::Error) {
        let Some(f) = self.current.take() else { return };
        let (_file, buffered) = f.out.into_parts();
        self.count_lost(&f.tmp, buffered.unwrap_or_default(), error);
    }

    fn count_lost(&self, file: &Path, unwritten: Vec<u8>, error: &io::Error) {
        let lost = unwritten.iter().filter(|&&b| b == b'\n').count() as u64;
        let total = self.lost.fetch_add(lost, Ordering::Relaxed) + lost;
        tracing::error!(
            file = %file.display(),
            error = %error,
            lost_events = lost,
            lost_events_total = total,
            "signals event file write failed: {lost} event(s) still in memory are lost; the lines already written are recovered at the next start"
        );
    }

    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            // Idle (no open file): block, so an idle spool costs nothing.
            if self.current.is_none() {
                match rx.recv() {
                    Ok(msg) => self.handle(msg),
                    Err(_) => return,
                }
                continue;
            }
            // Busy: let events gather for a moment, then take everything queued at once.
            // Senders never wake a receiver that is not blocked in `recv`, so at thousands of
            // events per second this costs one wake-up per pause instead of one per event.
            let left = self.current.as_ref().map_or(Duration::ZERO, |f| {
                self.config.max_file_age.saturating_sub(f.opened.elapsed())
            });
            // A producer is waiting on a full channel: drain at once.
            if self.blocked.load(Ordering::Relaxed) == 0 {
                std::thread::sleep(left.min(BATCH_PAUSE));
            }
            loop {
                match rx.try_recv() {
                    Ok(msg) => self.handle(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.close_current();
                        return;
                    }
                }
            }
            if self
                .current
                .as_ref()
                .is_some_and(|f| f.opened.elapsed() >= self.config.max_file_age)
            {
                self.close_current();
            } else if let Some(f) = self.current.as_mut() {
                // Hand the batch to the kernel: a killed process then loses nothing that was
                // drained (recovery keeps every complete line of a `.tmp` file); only a
                // machine crash can still cost the unsynced tail of the open file.
                if let Err(e) = f.out.flush() {
                    self.abandon(&e);
                }
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Line(line) => {
                self.write_line(&line);
                if self
                    .current
                    .as_ref()
                    .is_some_and(|f| f.bytes >= self.config.max_file_bytes)
                {
                    self.close_current();
                }
            }
            Msg::Rotate(done) => {
                self.close_current();
                let _ = done.send(());
            }
        }
    }

    /// Writes one line, retrying once a second on I/O errors: events are never dropped.
    fn write_line(&mut self, line: &str) {
        loop {
            match self.try_write_line(line) {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(dir = %self.config.dir.display(), error = %e, "signals event spool write failed; retrying");
                    // Abandon the half-written file; this line is tried again in a new one.
                    self.abandon(&e);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    fn try_write_line(&mut self, line: &str) -> io::Result<()> {
        // Close first rather than overshoot: a file must fit one upload batch, and the
        // ingest side refuses batches over the limit.
        let len = line.len() as u64 + 1;
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.bytes > 0 && f.bytes + len > self.config.max_file_bytes)
        {
            self.close_current();
        }
        if self.current.is_none() {
            self.current = Some(self.open_file()?);
        }
        let Some(f) = self.current.as_mut() else {
            return Ok(());
        };
        f.out.write_all(line.as_bytes())?;
        f.out.write_all(b"\n")?;
        f.bytes += line.len() as u64 + 1;
        Ok(())
    }

    fn open_file(&mut self) -> io::Result<OpenFile> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let name = now.max(self.last_name + 1);
        self.last_name = name;
        let tmp = self.config.dir.join(format!("sp1-{name:016X}.json.tmp"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        Ok(OpenFile {
            tmp,
            out: BufWriter::with_capacity(256 * 1024, file),
            bytes: 0,
            opened: Instant::now(),
        })
    }

    fn close_current(&mut self) {
        let Some(f) = self.current.take() else { return };
        let tmp = f.tmp.clone();
        let file = match f.out.into_inner() {
            Ok(file) => file,
            Err(e) => {
                let (error, out) = e.into_parts();
                let (_file, buffered) = out.into_parts();
                self.count_lost(&tmp, buffered.unwrap_or_default(), &error);
                return;
            }
        };
        if let Err(e) = file.sync_all().and_then(|()| {
            drop(file);
            publish(&tmp)
        }) {
            tracing::error!(file = %tmp.display(), error = %e, "signals event file could not be closed; it is recovered at the next start");
        }
    }
}

/// Renames `x.json.tmp` to `x.json` and makes the rename durable.
fn publish(tmp: &Path) -> io::Result<()> {
    let done = tmp.with_extension("");
    fs::rename(tmp, &done)?;
    if let Some(dir) = done.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A crash can leave `.tmp` files whose last line is torn. Keep every complete line, drop
/// the torn tail, and publish the file so its events are still uploaded.
fn recover_tmp_files(dir: &Path) -> Result<(), EventsError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("sp1-") && name.ends_with(".json.tmp")) {
            continue;
        }
        recover_one(&path).map_err(|e| io_err(&path, e))?;
    }
    Ok(())
}

fn recover_one(path: &Path) -> io::Result<()> {
    let mut file = fs::OpenOptions::new().read(true).write(true).open(path)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let keep = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if keep == 0 {
        drop(file);
        return fs::remove_file(path);
    }
    if keep < data.len() {
        tracing::warn!(file = %path.display(), bytes = data.len() - keep, "dropping torn last line of a signals event file");
        file.set_len(keep as u64)?;
        file.seek(SeekFrom::End(0))?;
    }
    file.sync_all()?;
    drop(file);
    publish(path)
}

fn io_err(path: &Path, source: io::Error) -> EventsError {
    EventsError::Io {
        path: path.to_path_buf(),
        source,
    }
}
