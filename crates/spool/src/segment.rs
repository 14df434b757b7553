//! Segment files: naming, listing, directory fsync, and the active segment's
//! write-then-fdatasync step with roll-back on failure.
//!
//! A segment is either *appended* (the file ends where the last record ends) or
//! *preallocated* (created at its full size by writing zeros, see `prepare.rs`, so records
//! overwrite blocks that already exist and `fdatasync` has no inode to write). Both kinds
//! keep the same invariant: every byte after the last durable record is zero or past the
//! end of the file. The writer keeps the logical end itself; the file size says nothing
//! about where the records end.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};

/// Name of segment `n`: `seg-0000000001.log`. Zero-padded so `ls` sorts them in log order.
pub(crate) fn file_name(n: u64) -> String {
    format!("seg-{n:010}.log")
}

pub(crate) fn path(dir: &Path, n: u64) -> PathBuf {
    dir.join(file_name(n))
}

/// Where a reclaimed segment that had corrupt records is kept for inspection.
pub(crate) fn quarantine_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}.corrupt", file_name(n)))
}

/// Parses a segment file name; anything else in the directory is ignored.
pub(crate) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_name) {
            if entry.file_type()?.is_file() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Makes creations and deletions of entries in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens an existing segment for appending (read access too, for truncation checks).
pub(crate) fn open_rw(dir: &Path, n: u64) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).open(path(dir, n))
}

/// Creates a new, empty segment; fails if it exists.
pub(crate) fn create(dir: &Path, n: u64) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path(dir, n))
}

/// Moves the prepared (zero-filled, synced) file `from` into place as segment `n`, without
/// ever replacing an existing segment. Not durable until the directory is synced.
pub(crate) fn rename_into_place(from: &Path, dir: &Path, n: u64) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let to = path(dir, n);
    match renameat_with(CWD, from, CWD, &to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // File systems without RENAME_NOREPLACE: we hold the directory lock, so nobody
        // else creates segments between the check and the rename.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            if fs::symlink_metadata(&to).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::rename(from, &to)
        }
        Err(e) => Err(e.into()),
    }
}

/// Zeros, for clearing bytes after the durable end and for extending the padding.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Overwrites `from..to` of segment `n` with zeros and fdatasyncs, keeping the file's
/// length: recovery's way of removing a torn record from a preallocated segment.
pub(crate) fn zero_range(dir: &Path, n: u64, from: u64, to: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let file = open_rw(dir, n)?;
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    file.sync_data()
}

/// Reads `len` bytes at `offset` of segment `n` (a message record, for `read_body`).
pub(crate) fn read_at(dir: &Path, n: u64, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path(dir, n))?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// The three operations the writer performs on the active segment. A trait so tests can
/// inject short writes, EIO from fdatasync and failing truncation.
pub(crate) trait SegmentIo: Send {
    /// One positioned vectored write (`pwritev`); may write less than asked.
    fn write_at(&mut self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize>;
    /// `fdatasync`: data and the size are durable when this returns Ok.
    fn sync_data(&mut self) -> io::Result<()>;
    /// `ftruncate`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

impl SegmentIo for File {
    fn write_at(&mut self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize> {
        Ok(rustix::io::pwritev(&*self, bufs, offset)?)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(rustix::fs::fdatasync(&*self)?)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

/// Linux rejects more than IOV_MAX (1024) slices per call.
const MAX_IOV: usize = 1024;

/// The segment the writer writes to. `len` is the durable logical end: everything before
/// it was fdatasync'ed; everything from it to `size` is zero (preallocated padding), and a
/// failed write never leaves anything else behind.
pub(crate) struct ActiveSegment {
    pub number: u64,
    io: Box<dyn SegmentIo>,
    len: u64,
    /// The file's size. Equal to `len` for an appended segment; larger while a
    /// preallocated one still has zero padding. Grows when a group runs past it.
    size: u64,
    /// Set when a roll-back could neither zero nor truncate what a failed write left: the
    /// bytes after `len` are unknown, so the writer should move to a fresh segment.
    pub poisoned: bool,
    /// Created at its full size ahead of time (`prepare.rs`): it is not grown past it.
    pub preallocated: bool,
}

/// Which step of an append failed (for the error message).
#[derive(Debug)]
pub(crate) struct AppendError {
    pub context: &'static str,
    pub error: io::Error,
}

impl ActiveSegment {
    /// `len` is where the records end, `size` the file's size (at least `len`; the bytes
    /// in between must be zero).
    pub fn new(number: u64, io: Box<dyn SegmentIo>, len: u64, size: u64) -> ActiveSegment {
        ActiveSegment {
            number,
            io,
            len,
            size: size.max(len),
            poisoned: false,
            preallocated: false,
        }
    }

    /// Durable logical length in bytes; the next write starts here.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The file's size in bytes (records plus zero padding).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Zero-filled bytes after the last record: how much can still be written without
    /// growing the file.
    pub fn padding(&self) -> u64 {
        self.size - self.len
    }

    /// Writes all of `bufs` at the durable end (over zero padding, or growing the file)
    /// and fdatasyncs once. With `extend_to` past the end of the file, the file is also
    /// extended with zeros up to there (padding: room reserved for later records; only
    /// the new part is written), in the same sync. On success the bytes are durable and
    /// the start offset is returned. On failure what was written is zeroed or cut off
    /// again (so no half record remains) and the error returned.
    pub fn append(&mut self, bufs: &mut [IoSlice<'_>], extend_to: u64) -> Result<u64, AppendError> {
        let start = self.len;
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let records_end = start + total;
        let zeros_from = records_end.max(self.size);
        let zeros_to = extend_to.max(zeros_from);
        let result = self
            .write_all(bufs, start)
            .and_then(|()| {
                self.write_zeros(zeros_from, zeros_to)
                    .map_err(|error| AppendError {
                        context: "extending segment",
                        error,
                    })
            })
            .and_then(|()| {
                self.io.sync_data().map_err(|error| AppendError {
                    context: "syncing segment",
                    error,
                })
            });
        match result {
            Ok(()) => {
                self.len = records_end;
                self.size = self.size.max(zeros_to);
                Ok(start)
            }
            Err(e) => {
                self.roll_back(records_end, zeros_to);
                Err(e)
            }
        }
    }

    /// Empties a segment that holds nothing live any more, in place: `header` (a new
    /// SegmentHeader record, the same length as the one at offset 0) replaces the old
    /// one, then the file is cut after it. Each step is synced, so a crash leaves either
    /// the old records (all dead) behind the new header, or the header alone. Frees the
    /// segment's space without needing any: the way out of a full disk when the active
    /// segment is the only one left.
    pub fn reset(&mut self, header: &[u8]) -> Result<(), AppendError> {
        let fail = |context| move |error| AppendError { context, error };
        self.write_all(&mut [IoSlice::new(header)], 0)?;
        self.io.sync_data().map_err(fail("syncing segment"))?;
        let len = header.len() as u64;
        self.io.set_len(len).map_err(fail("truncating segment"))?;
        self.io.sync_data().map_err(fail("syncing segment"))?;
        self.len = len;
        self.size = len;
        Ok(())
    }

    fn write_all(
        &mut self,
        mut bufs: &mut [IoSlice<'_>],
        mut offset: u64,
    ) -> Result<(), AppendError> {
        let fail = |error| AppendError {
            context: "writing segment",
            error,
        };
        // Skip leading empty slices so the loop below only ends on real progress.
        IoSlice::advance_slices(&mut bufs, 0);
        while !bufs.is_empty() {
            let chunk = &bufs[..bufs.len().min(MAX_IOV)];
            match self.io.write_at(chunk, offset) {
                Ok(0) => return Err(fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    offset += n as u64;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(e)),
            }
        }
        Ok(())
    }

    /// Restores the invariant after a failed write that may have touched `len..end`: the
    /// part inside the old file size is overwritten with zeros (keeping the blocks
    /// allocated, so later writes stay cheap overwrites) and anything past the old size is
    /// cut off, so no half record stays behind and a later, shorter write cannot leave
    /// stale bytes after itself. If zeroing fails, truncating to `len` and extending back
    /// to the old size gives zeros too (as a hole). The result is synced; if that sync
    /// fails, the next successful group's fdatasync makes it durable instead (until then a
    /// crash could bring back records whose callers were told "failed": duplicates, never
    /// losses). If nothing works, the bytes after `len` are unknown and the segment is
    /// marked poisoned so the writer moves on.
    /// `records_end`: where the failed records ended; `end`: how far the write may have
    /// reached (zeros included). Padding between them inside the old size was not touched.
    fn roll_back(&mut self, records_end: u64, end: u64) {
        let end = end.max(records_end);
        let zero_end = records_end.min(self.size);
        let mut restored = Ok(());
        if zero_end > self.len {
            restored = self.write_zeros(self.len, zero_end);
            if let Err(e) = &restored {
                tracing::warn!(segment = self.number, error = %e, "could not zero a failed write; truncating instead");
                restored = self
                    .io
                    .set_len(self.len)
                    .and_then(|()| self.io.set_len(self.size));
            }
        }
        if restored.is_ok() && end > self.size {
            restored = self.io.set_len(self.size);
        }
        if let Err(e) = restored {
            tracing::error!(
                segment = self.number,
                durable_len = self.len,
                error = %e,
                "could not clear a failed write from a spool segment; moving to a new segment"
            );
            self.poisoned = true;
            // The file may have grown; it is at least this big.
            self.size = self.size.max(end);
        } else if let Err(e) = self.io.sync_data() {
            tracing::warn!(segment = self.number, error = %e, "could not sync spool segment roll-back");
        }
    }

    fn write_zeros(&mut self, mut from: u64, to: u64) -> io::Result<()> {
        while from < to {
            let n = (to - from).min(ZEROS.len() as u64) as usize;
            match self.io.write_at(&[IoSlice::new(&ZEROS[..n])], from) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => from += written as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fault {
    //! A `SegmentIo` wrapper whose failures a test switches on and off.

    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Default, Debug)]
    pub struct Plan {
        /// Fail every write after letting this many bytes through (0 = fail at once).
        pub fail_writes_after: Option<usize>,
        /// Error returned by failing writes (raw errno); EIO if unset.
        pub write_errno: Option<i32>,
        /// Fail every fdatasync with EIO.
        pub fail_sync: bool,
        /// Fail every truncation with EIO.
        pub fail_truncate: bool,
        /// Count of syncs that succeeded.
        pub syncs: usize,
    }

    pub struct Faulty {
        pub inner: Box<dyn SegmentIo>,
        pub plan: Arc<Mutex<Plan>>,
    }

    fn eio() -> io::Error {
        io::Error::from_raw_os_error(5)
    }

    impl SegmentIo for Faulty {
        fn write_at(&mut self, bufs: &[IoSlice<'_>], offset: u64) -> io::Result<usize> {
            let plan = self.plan.lock().unwrap();
            let Some(allow) = plan.fail_writes_after else {
                drop(plan);
                return self.inner.write_at(bufs, offset);
            };
            let errno = plan.write_errno.unwrap_or(5);
            drop(plan);
            if allow == 0 {
                return Err(io::Error::from_raw_os_error(errno));
            }
            // A short write of at most `allow` bytes, then the next call fails.
            let mut joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            joined.truncate(allow);
            let n = self.inner.write_at(&[IoSlice::new(&joined)], offset)?;
            self.plan.lock().unwrap().fail_writes_after = Some(0);
            Ok(n)
        }

        fn sync_data(&mut self) -> io::Result<()> {
            let mut plan = self.plan.lock().unwrap();
            if plan.fail_sync {
                return Err(eio());
            }
            plan.syncs += 1;
            drop(plan);
            self.inner.sync_data()
        }

        fn set_len(&mut self, len: u64) -> io::Result<()> {
            if self.plan.lock().unwrap().fail_truncate {
                return Err(eio());
            }
            self.inner.set_len(len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fault::{Faulty, Plan};
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn names_roundtrip_and_foreign_files_are_ignored() {
        assert_eq!(file_name(1), "seg-0000000001.log");
        assert_eq!(parse_name("seg-0000000001.log"), Some(1));
        assert_eq!(parse_name("seg-12345678901.log"), Some(12_345_678_901));
        assert_eq!(parse_name("seg-1.log"), None);
        assert_eq!(parse_name("seg-0000000001.log.tmp"), None);
        assert_eq!(parse_name("notes.txt"), None);
    }

    fn faulty(dir: &Path) -> (ActiveSegment, Arc<Mutex<Plan>>, PathBuf) {
        let file = create(dir, 1).unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let io = Faulty {
            inner: Box::new(file),
            plan: plan.clone(),
        };
        (
            ActiveSegment::new(1, Box::new(io), 0, 0),
            plan,
            path(dir, 1),
        )
    }

    #[test]
    fn append_writes_many_slices_and_returns_start_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, _plan, p) = faulty(dir.path());
        // More slices than IOV_MAX, with empty ones mixed in.
        let parts: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 3) as usize])
            .collect();
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        assert_eq!(seg.append(&mut slices, 0).unwrap(), 0);
        let expected: Vec<u8> = parts.concat();
        assert_eq!(seg.len(), expected.len() as u64);
        let mut slices = [IoSlice::new(b"tail")];
        assert_eq!(seg.append(&mut slices, 0).unwrap(), expected.len() as u64);
        let on_disk = fs::read(&p).unwrap();
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert_eq!(&on_disk[expected.len()..], b"tail");
    }

    #[test]
    fn failed_write_or_sync_is_truncated_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, plan, p) = faulty(dir.path());
        seg.append(&mut [IoSlice::new(b"durable")], 0).unwrap();

        plan.lock().unwrap().fail_writes_after = Some(3);
        let err = seg
            .append(&mut [IoSlice::new(b"lost-record")], 0)
            .unwrap_err();
        assert_eq!(err.context, "writing segment");
        assert_eq!(fs::read(&p).unwrap(), b"durable");
        assert_eq!(seg.len(), 7);

        *plan.lock().unwrap() = Plan {
            fail_sync: true,
            ..Plan::default()
        };
        let err = seg.append(&mut [IoSlice::new(b"unsynced")], 0).unwrap_err();
        assert_eq!(err.context, "syncing segment");
        assert_eq!(fs::read(&p).unwrap(), b"durable");
        assert!(!seg.poisoned);

        *plan.lock().unwrap() = Plan::default();
        seg.append(&mut [IoSlice::new(b"+more")], 0).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"durable+more");
    }

    /// A segment file preallocated with `size` zero bytes.
    fn preallocated(dir: &Path, size: u64) -> (ActiveSegment, Arc<Mutex<Plan>>, PathBuf) {
        let file = create(dir, 1).unwrap();
        file.set_len(size).unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let io = Faulty {
            inner: Box::new(file),
            plan: plan.clone(),
        };
        (
            ActiveSegment::new(1, Box::new(io), 0, size),
            plan,
            path(dir, 1),
        )
    }

    #[test]
    fn preallocated_writes_overwrite_and_failures_are_zeroed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, plan, p) = preallocated(dir.path(), 100);
        assert_eq!(seg.append(&mut [IoSlice::new(b"durable")], 0).unwrap(), 0);
        assert_eq!((seg.len(), seg.size(), seg.padding()), (7, 100, 93));
        let mut expected = b"durable".to_vec();
        expected.resize(100, 0);
        assert_eq!(fs::read(&p).unwrap(), expected);

        // Written, then the sync fails: zeroed again, length kept.
        plan.lock().unwrap().fail_sync = true;
        assert!(seg.append(&mut [IoSlice::new(b"unsynced")], 0).is_err());
        assert_eq!(fs::read(&p).unwrap(), expected);
        assert!(!seg.poisoned);

        // A failed group that ran past the end: zeroed up to the old size, cut after it.
        *plan.lock().unwrap() = Plan {
            fail_sync: true,
            ..Plan::default()
        };
        assert!(seg.append(&mut [IoSlice::new(&[7u8; 150])], 0).is_err());
        assert_eq!(fs::read(&p).unwrap(), expected);
        assert_eq!(seg.size(), 100);

        // Short write, and zeroing fails too: truncate and re-extend (a hole reads zeros).
        *plan.lock().unwrap() = Plan {
            fail_writes_after: Some(3),
            ..Plan::default()
        };
        assert!(seg.append(&mut [IoSlice::new(b"lost-record")], 0).is_err());
        assert_eq!(fs::read(&p).unwrap(), expected);
        assert!(!seg.poisoned);

        // Growing past the preallocated size works and is kept.
        *plan.lock().unwrap() = Plan::default();
        seg.append(&mut [IoSlice::new(&[1u8; 120])], 0).unwrap();
        assert_eq!((seg.len(), seg.size(), seg.padding()), (127, 127, 0));
        assert_eq!(fs::read(&p).unwrap().len(), 127);
    }

    #[test]
    fn append_can_extend_the_padding_and_undo_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, plan, p) = faulty(dir.path());
        assert_eq!(seg.append(&mut [IoSlice::new(b"rec1")], 100).unwrap(), 0);
        assert_eq!((seg.len(), seg.size(), seg.padding()), (4, 100, 96));
        let mut want = b"rec1".to_vec();
        want.resize(100, 0);
        assert_eq!(fs::read(&p).unwrap(), want);
        // Within the padding: nothing more is written past the records.
        seg.append(&mut [IoSlice::new(b"rec2")], 50).unwrap();
        assert_eq!((seg.len(), seg.size()), (8, 100));
        // Extending when the sync fails: the records are zeroed, the extension cut off.
        plan.lock().unwrap().fail_sync = true;
        assert!(seg.append(&mut [IoSlice::new(b"lost")], 300).is_err());
        want[4..8].copy_from_slice(b"rec2");
        assert_eq!(fs::read(&p).unwrap(), want);
        assert_eq!((seg.len(), seg.size()), (8, 100));
    }

    #[test]
    fn failed_truncate_poisons_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut seg, plan, _p) = faulty(dir.path());
        *plan.lock().unwrap() = Plan {
            fail_writes_after: Some(2),
            fail_truncate: true,
            ..Plan::default()
        };
        assert!(seg.append(&mut [IoSlice::new(b"abcdef")], 0).is_err());
        assert!(seg.poisoned);
        assert_eq!(seg.len(), 0);
    }
}
