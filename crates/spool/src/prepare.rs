//! Preallocation: getting the next segment file ready before the writer needs it.
//!
//! Why: the listener's `250` waits for the spool's `fdatasync`. When a write makes the
//! file grow, ext4 must also write the inode (new size, new extents) under that
//! `fdatasync`, which roughly doubles its cost. When the write lands on blocks that were
//! already written (zeros, in advance), `fdatasync` only writes data. So segments are
//! created at their full size by *writing zeros* (not `fallocate`: its unwritten extents
//! still need a metadata update on the first real write) and synced once, before any
//! record goes in.
//!
//! That zero-filling happens on a background thread, never while a caller waits: the next
//! segment is prepared as `next-segment.prep.tmp`, synced, and renamed to
//! `next-segment.prep` (so a file with that name is always complete). At rotation the
//! writer renames it to `seg-N.log`. If it is not ready yet, or preparing failed (no room,
//! I/O error), the writer falls back to an ordinary appended segment: preallocation is an
//! optimisation and never a reason to refuse mail.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A complete, zero-filled, synced file waiting to become the next segment.
pub(crate) const PREPARED_NAME: &str = "next-segment.prep";
/// The file being zero-filled; deleted if found at open (a crash interrupted it).
pub(crate) const PREPARING_NAME: &str = "next-segment.prep.tmp";

/// Bytes written (and synced) per step while zero-filling. Syncing each step keeps the
/// zero-filler's dirty pages from piling up into one large flush that the writer's
/// commit `fdatasync`s would queue behind.
const CHUNK: usize = 1 << 20;
/// Longest pause between steps of a paced zero-fill.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Why a preparation did not produce a file.
#[derive(Debug)]
pub(crate) enum PrepError {
    /// Taking `size` bytes would leave less than `min_free_space` free.
    NoRoom {
        available: u64,
    },
    /// The writer is shutting down.
    Cancelled,
    Io(io::Error),
}

impl std::fmt::Display for PrepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepError::NoRoom { available } => write!(
                f,
                "only {available} bytes free; preallocating would go below min-free-space"
            ),
            PrepError::Cancelled => f.write_str("cancelled"),
            PrepError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for PrepError {
    fn from(e: io::Error) -> Self {
        PrepError::Io(e)
    }
}

/// What to prepare: a zero-filled file of `size` bytes in `dir`, unless that would leave
/// less than `min_free` bytes free (0: no check).
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub dir: PathBuf,
    pub size: u64,
    pub min_free: u64,
    /// Pause after each step as long as the step took, so the zero-filler uses at most
    /// about half of the disk's time while commits are running. Off when nobody waits
    /// (the first segment, prepared inside `Spool::open`).
    pub paced: bool,
}

/// Produces `dir/PREPARED_NAME` for a job and returns it open for reading and writing.
/// Production uses [`zero_fill`]; tests inject failures.
pub(crate) type PrepareFn =
    Arc<dyn Fn(&Job, &AtomicBool) -> Result<File, PrepError> + Send + Sync + 'static>;

pub(crate) fn plain_prepare() -> PrepareFn {
    Arc::new(zero_fill)
}

/// Writes `job.size` zero bytes to `PREPARING_NAME`, syncs it and renames it to
/// `PREPARED_NAME`. Checks `cancel` between chunks. On failure the partial file is
/// removed.
pub(crate) fn zero_fill(job: &Job, cancel: &AtomicBool) -> Result<File, PrepError> {
    use std::os::unix::fs::FileExt;
    if job.min_free > 0 {
        let s = rustix::fs::statvfs(&job.dir).map_err(io::Error::from)?;
        let available = s.f_bavail.saturating_mul(s.f_frsize);
        if available < job.min_free.saturating_add(job.size) {
            return Err(PrepError::NoRoom { available });
        }
    }
    let tmp = job.dir.join(PREPARING_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    let fill = || -> Result<(), PrepError> {
        let zeros = vec![0u8; CHUNK];
        let mut at = 0u64;
        while at < job.size {
            if cancel.load(Ordering::Relaxed) {
                return Err(PrepError::Cancelled);
            }
            let step = Instant::now();
            let n = (job.size - at).min(CHUNK as u64) as usize;
            file.write_all_at(&zeros[..n], at)?;
            file.sync_data()?;
            at += n as u64;
            if job.paced {
                std::thread::sleep(step.elapsed().min(MAX_PAUSE));
            }
        }
        // Data and size (extents) durable before the name says "complete".
        file.sync_all()?;
        fs::rename(&tmp, job.dir.join(PREPARED_NAME))?;
        Ok(())
    };
    match fill() {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file);
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A prepared file handed to the writer.
pub(crate) struct Prepared {
    pub file: File,
    pub size: u64,
}

impl Prepared {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(PREPARED_NAME)
    }
}

enum State {
    Idle,
    Running {
        handle: JoinHandle<Result<File, PrepError>>,
        cancel: Arc<AtomicBool>,
    },
    Ready(Prepared),
}

/// The writer's side of preallocation: at most one prepared (or preparing) file at a time.
/// Owned by the writer thread; the zero-filling runs on a short-lived thread of its own.
pub(crate) struct Preparer {
    job: Job,
    enabled: bool,
    make: PrepareFn,
    state: State,
    /// Set after a failed attempt so it is not retried after every group; cleared when
    /// the situation may have changed (rotation, reclamation).
    blocked: bool,
}

impl Preparer {
    /// Sets up preallocation for `dir` and tidies what an earlier run left: an
    /// interrupted `PREPARING_NAME` is deleted; a complete `PREPARED_NAME` is adopted (or
    /// deleted when preallocation is off, to give the space back).
    pub fn new(job: Job, enabled: bool, make: PrepareFn) -> Preparer {
        let dir = &job.dir;
        remove_if_present(&dir.join(PREPARING_NAME));
        let mut state = State::Idle;
        let prepared = Prepared::path(dir);
        if enabled {
            match OpenOptions::new().read(true).write(true).open(&prepared) {
                Ok(file) => match file.metadata() {
                    Ok(m) if m.len() > 0 => {
                        tracing::debug!("reusing prepared spool segment");
                        state = State::Ready(Prepared {
                            file,
                            size: m.len(),
                        });
                    }
                    _ => remove_if_present(&prepared),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not open prepared spool segment; deleting it");
                    remove_if_present(&prepared);
                }
            }
        } else {
            remove_if_present(&prepared);
        }
        Preparer {
            enabled: enabled && job.size > 0,
            job,
            make,
            state,
            blocked: false,
        }
    }

    /// Starts preparing in the background if nothing is prepared or preparing and the
    /// last attempt did not fail since the last [`Preparer::unblock`].
    pub fn start(&mut self) {
        if !self.enabled || self.blocked || !matches!(self.state, State::Idle) {
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (job, make, flag) = (self.job.clone(), self.make.clone(), cancel.clone());
        match std::thread::Builder::new()
            .name("petrel-spool-prep".into())
            .spawn(move || make(&job, &flag))
        {
            Ok(handle) => self.state = State::Running { handle, cancel },
            Err(e) => {
                tracing::warn!(error = %e, "could not start spool preallocation thread");
                self.blocked = true;
            }
        }
    }

    /// Prepares synchronously (for the first segment of a new spool, before anyone waits).
    /// A file adopted from an earlier run is used as it is.
    pub fn prepare_now(&mut self) -> Option<Prepared> {
        if !self.enabled {
            return None;
        }
        self.cancel();
        if let Some(ready) = self.take() {
            return Some(ready);
        }
        let job = Job {
            paced: false,
            ..self.job.clone()
        };
        let result = (self.make)(&job, &AtomicBool::new(false));
        self.finished(result);
        self.take()
    }

    /// Collects a finished background preparation. Returns true if a file just became
    /// ready (it took disk space: free-space caches are stale).
    pub fn poll(&mut self) -> bool {
        let finished = matches!(&self.state, State::Running { handle, .. } if handle.is_finished());
        if !finished {
            return false;
        }
        let State::Running { handle, .. } = std::mem::replace(&mut self.state, State::Idle) else {
            unreachable!("checked above");
        };
        let result = handle.join().unwrap_or_else(|_| {
            Err(PrepError::Io(io::Error::other(
                "spool preallocation thread panicked",
            )))
        });
        self.finished(result)
    }

    fn finished(&mut self, result: Result<File, PrepError>) -> bool {
        match result {
            Ok(file) => {
                self.state = State::Ready(Prepared {
                    file,
                    size: self.job.size,
                });
                true
            }
            Err(PrepError::Cancelled) => false,
            Err(e) => {
                // Expected on a nearly full or tiny file system; the next segment is then
                // an appended one.
                tracing::info!(error = %e, size = self.job.size, "could not preallocate the next spool segment; it will be appended to instead");
                self.blocked = true;
                false
            }
        }
    }

    /// Size of the prepared file, if one is ready.
    pub fn ready_size(&self) -> Option<u64> {
        match &self.state {
            State::Ready(p) => Some(p.size),
            _ => None,
        }
    }

    /// Hands over the prepared file, if ready. It is still named `PREPARED_NAME`.
    pub fn take(&mut self) -> Option<Prepared> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Ready(p) => Some(p),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Allows another attempt after a failure (space may have been freed).
    pub fn unblock(&mut self) {
        self.blocked = false;
    }

    /// Stops a running preparation and waits for its thread (at most one chunk write).
    fn cancel(&mut self) {
        if !matches!(self.state, State::Running { .. }) {
            return;
        }
        if let State::Running { handle, cancel } = std::mem::replace(&mut self.state, State::Idle) {
            cancel.store(true, Ordering::Relaxed);
            match handle.join() {
                Ok(Ok(file)) => {
                    // Finished before it saw the flag: keep it.
                    self.state = State::Ready(Prepared {
                        file,
                        size: self.job.size,
                    });
                }
                Ok(Err(_)) => {}
                Err(_) => tracing::error!("spool preallocation thread panicked"),
            }
        }
    }
}

impl Drop for Preparer {
    /// A running preparation is cancelled (its partial file removed); a ready one stays on
    /// disk for the next open.
    fn drop(&mut self) {
        self.cancel();
    }
}

fn remove_if_present(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed stale spool file"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove stale spool file")
        }
    }
}
