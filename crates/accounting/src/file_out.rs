//! A file target: dated names, roll-over, move-to and delete-after.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use petrel_config::AcctFile;

use crate::error::AcctError;
use crate::naming::NameScheme;
use time::Date;

use crate::naming::{date_of, end_of_day, unix_secs};

/// The open file of a target.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub file: File,
    pub path: PathBuf,
    date: Date,
    /// `move-interval` period index the file was opened in.
    period: u64,
    /// Bytes written or assigned to the file (header, written rows, pending rows).
    pub size: u64,
    /// Rows assigned to the file.
    pub rows: u64,
}

/// Everything about one `<acct-file PATH>` that is not the CSV layout.
#[derive(Debug)]
pub(crate) struct FileOut {
    scheme: NameScheme,
    move_to: Option<PathBuf>,
    move_interval: Duration,
    max_size: u64,
    delete_after: Option<Duration>,
    world_readable: bool,
    pub current: Option<OpenFile>,
}

impl FileOut {
    pub fn new(path: &Path, cfg: &AcctFile) -> Result<FileOut, AcctError> {
        Ok(FileOut {
            scheme: NameScheme::new(path)?,
            move_to: cfg.move_to.clone(),
            move_interval: cfg.move_interval,
            max_size: cfg.max_size.max(1),
            delete_after: cfg.delete_after,
            world_readable: cfg.world_readable,
            current: None,
        })
    }

    fn period(&self, now: SystemTime) -> u64 {
        // move-interval is ignored without move-to (the guide says so).
        match self.move_to {
            Some(_) => unix_secs(now) / self.move_interval.as_secs().max(1),
            None => 0,
        }
    }

    /// Whether the open file must be closed before a row of `row_len` bytes is written at
    /// `now` (`None`: only the time-based reasons).
    pub fn must_rotate(&self, now: SystemTime, row_len: Option<usize>) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        if date_of(now) != cur.date || self.period(now) != cur.period {
            return true;
        }
        match row_len {
            Some(n) => cur.rows > 0 && cur.size + n as u64 > self.max_size,
            None => false,
        }
    }

    /// Opens the next file for `now`, writes `header` to it and assigns `pending` bytes of
    /// buffered rows to it. Also applies `delete-after` to old files.
    pub fn open(
        &mut self,
        now: SystemTime,
        header: &[u8],
        pending: usize,
        pending_rows: usize,
    ) -> Result<(), AcctError> {
        let date = date_of(now);
        fs::create_dir_all(&self.scheme.dir)
            .map_err(|e| AcctError::io("creating directory", &self.scheme.dir, e))?;
        let mut dirs: Vec<&Path> = vec![&self.scheme.dir];
        if let Some(m) = &self.move_to {
            dirs.push(m);
        }
        let mut seq = self.scheme.next_seq(date, &dirs);
        let (file, path) = loop {
            let path = self.scheme.dir.join(self.scheme.file_name(date, seq));
            match self.options().open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => seq += 1,
                Err(e) => return Err(AcctError::io("opening", path, e)),
            }
        };
        let mut file = file;
        file.write_all(header)
            .map_err(|e| AcctError::io("writing to", &path, e))?;
        self.current = Some(OpenFile {
            file,
            path,
            date,
            period: self.period(now),
            size: (header.len() + pending) as u64,
            rows: pending_rows as u64,
        });
        self.delete_old(now)
    }

    fn options(&self) -> OpenOptions {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(if self.world_readable { 0o644 } else { 0o640 });
        }
        o
    }

    /// Closes the open file (the caller has flushed it) and moves it to `move-to`.
    pub fn close(&mut self, sync: bool) -> Result<(), AcctError> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        if sync {
            cur.file
                .sync_data()
                .map_err(|e| AcctError::io("syncing", &cur.path, e))?;
        }
        drop(cur.file);
        match &self.move_to {
            Some(dir) => move_file(&cur.path, dir),
            None => Ok(()),
        }
    }

    /// `delete-after` (only without `move-to`): removes this target's files whose day ended
    /// at least `delete-after` ago.
    fn delete_old(&self, now: SystemTime) -> Result<(), AcctError> {
        let (None, Some(age)) = (&self.move_to, self.delete_after) else {
            return Ok(());
        };
        let now = unix_secs(now);
        let current = self.current.as_ref().map(|c| c.path.as_path());
        for (path, date, _) in self.scheme.list(&self.scheme.dir) {
            let day_end = end_of_day(date);
            if Some(path.as_path()) != current && now >= day_end.saturating_add(age.as_secs()) {
                fs::remove_file(&path).map_err(|e| AcctError::io("deleting", &path, e))?;
            }
        }
        Ok(())
    }
}

/// Moves a closed file into `dir`: a rename (same volume), else copy and delete.
fn move_file(path: &Path, dir: &Path) -> Result<(), AcctError> {
    fs::create_dir_all(dir).map_err(|e| AcctError::io("creating directory", dir, e))?;
    let dest = dir.join(path.file_name().unwrap_or_default());
    if let Err(e) = fs::rename(path, &dest) {
        fs::copy(path, &dest).map_err(|_| AcctError::io("moving", path, e))?;
        fs::remove_file(path).map_err(|e| AcctError::io("removing", path, e))?;
    }
    Ok(())
}
