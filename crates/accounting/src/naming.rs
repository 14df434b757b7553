//! Dated file names: `acct.csv` → `acct-2007-09-05-0000.csv`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::AcctError;
use crate::timefmt::Date;

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
        format!("{}-{}-{seq:04}{}", self.stem, date.iso(), self.ext)
    }

    /// The date and sequence number of a file name of this scheme.
    pub fn parse(&self, name: &str) -> Option<(Date, u32)> {
        let rest = name.strip_prefix(&self.stem)?.strip_prefix('-')?;
        let rest = rest.strip_suffix(&self.ext)?;
        let date = Date::parse(rest.get(..10)?)?;
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
    fn names_follow_powermta() {
        let s = NameScheme::new(Path::new("/var/log/pmta/acct.csv")).unwrap();
        let d = Date::parse("2007-09-05").unwrap();
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
