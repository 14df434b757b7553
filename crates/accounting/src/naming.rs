//! Dated file names: `acct.csv` → `acct-2007-09-05-0000.csv`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AcctError;
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// `YYYY-MM-DD`, the date in file names.
const DAY: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");

/// Seconds since the Unix epoch; times before 1970 count as 0.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// `t` in UTC (times before 1970 or beyond the calendar as 1970-01-01).
pub(crate) fn utc(t: SystemTime) -> OffsetDateTime {
    i64::try_from(unix_secs(t))
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The UTC date of `t`: the day its accounting file is named after.
pub(crate) fn date_of(t: SystemTime) -> Date {
    utc(t).date()
}

/// When `date` ends, in unix seconds.
pub(crate) fn end_of_day(date: Date) -> u64 {
    date.next_day()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(u64::MAX)
}

/// How the files of one `<acct-file PATH>` are named.
#[derive(Debug, Clone)]
pub(crate) struct NameScheme {
    pub dir: PathBuf,
    stem: String,
    /// Extension including the dot (`.csv`), or empty.
    ext: String,
}

impl NameScheme {
    /// Splits `path` into directory, stem and extension.
    pub fn new(path: &Path) -> Result<NameScheme, AcctError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| AcctError::BadPath(path.to_path_buf()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i..]),
            _ => (name, ""),
        };
        Ok(NameScheme {
            dir,
            stem: stem.to_string(),
            ext: ext.to_string(),
        })
    }

    /// `STEM-YYYY-MM-DD-NNNN.EXT`.
    pub fn file_name(&self, date: Date, seq: u32) -> String {
        let day = date.format(DAY).unwrap_or_default();
        format!("{}-{day}-{seq:04}{}", self.stem, self.ext)
    }

    /// The date and sequence number of a file name of this scheme.
    pub fn parse(&self, name: &str) -> Option<(Date, u32)> {
        let rest = name.strip_prefix(&self.stem)?.strip_prefix('-')?;
        let rest = rest.strip_suffix(&self.ext)?;
        let date = Date::parse(rest.get(..10)?, DAY).ok()?;
        let seq = rest.get(10..)?.strip_prefix('-')?;
        if seq.len() < 4 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((date, seq.parse().ok()?))
    }

    /// The files of this scheme in `dir`, with their dates and sequence numbers.
    pub fn list(&self, dir: &Path) -> Vec<(PathBuf, Date, u32)> {
        let Ok(rd) = fs::read_dir(dir) else {
            return Vec::new();
        };
        rd.filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name();
                let (d, s) = self.parse(name.to_str()?)?;
                Some((e.path(), d, s))
            })
            .collect()
    }

    /// The first sequence number for `date` not used in any of `dirs`, so a restart or a
    /// roll-over never reopens (or, once moved, collides with) an earlier file.
    pub fn next_seq(&self, date: Date, dirs: &[&Path]) -> u32 {
        dirs.iter()
            .flat_map(|d| self.list(d))
            .filter(|(_, d, _)| *d == date)
            .map(|(_, _, s)| s + 1)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_end_at_utc_midnight() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400 + 3_600);
        let d = date_of(t);
        assert_eq!(d.format(DAY).unwrap(), "2000-02-29");
        assert_eq!(end_of_day(d), 951_782_400 + 86_400);
        assert_eq!(
            date_of(UNIX_EPOCH - std::time::Duration::from_secs(1)).year(),
            1970
        );
    }

    #[test]
    fn names_follow_powermta() {
        let s = NameScheme::new(Path::new("/var/log/pmta/acct.csv")).unwrap();
        let d = Date::parse("2007-09-05", DAY).unwrap();
        assert_eq!(s.file_name(d, 0), "acct-2007-09-05-0000.csv");
        assert_eq!(s.file_name(d, 12), "acct-2007-09-05-0012.csv");
        assert_eq!(s.parse("acct-2007-09-05-0012.csv"), Some((d, 12)));
        assert_eq!(s.parse("acct-2007-09-05-12.csv"), None);
        assert_eq!(s.parse("acct.csv"), None);
        assert_eq!(s.parse("other-2007-09-05-0000.csv"), None);
        assert_eq!(s.dir, Path::new("/var/log/pmta"));

        let bare = NameScheme::new(Path::new("acct")).unwrap();
        assert_eq!(bare.file_name(d, 1), "acct-2007-09-05-0001");
        assert_eq!(bare.dir, Path::new("."));
        assert!(NameScheme::new(Path::new("/")).is_err());
    }
}
