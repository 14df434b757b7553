//! The `log-verbose` lines, in the wording the article shows PowerMTA writing, so operators
//! who follow it with `grep` find them:
//!
//! ```text
//! Signals: Discovered 0 files
//! Signals: Discovered sp1-0000000000003FBD.json
//! Signals: Transferred sp1-0000000000003FBD.json successfully.
//! Signals: Discovered 1 file, transferred 1 file successfully
//! ```
//!
//! This module only decides the text and when it is due (time is a parameter); the uploader
//! writes the lines, with petrel's own detail as fields after them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What the uploader has already said, so each file is announced once and an idle uploader
/// speaks once per interval rather than once per poll.
#[derive(Debug)]
pub(crate) struct VerboseLog {
    /// Files already announced with `Discovered NAME` and still waiting.
    announced: HashSet<String>,
    /// When the last summary line (idle or not) was written.
    last_summary: Option<Instant>,
    /// PowerMTA: every minute.
    idle_every: Duration,
}

impl VerboseLog {
    pub(crate) fn new(idle_every: Duration) -> Self {
        VerboseLog {
            announced: HashSet::new(),
            last_summary: None,
            idle_every,
        }
    }

    /// `Signals: Discovered NAME` for each file of this scan not announced before. Files no
    /// longer waiting are forgotten, so the set stays as small as the spool.
    pub(crate) fn discovered(&mut self, names: &[String]) -> Vec<String> {
        self.announced.retain(|n| names.contains(n));
        names
            .iter()
            .filter(|n| self.announced.insert((*n).clone()))
            .map(|n| format!("Signals: Discovered {n}"))
            .collect()
    }

    /// `Signals: Transferred NAME successfully.`
    pub(crate) fn transferred(name: &str) -> String {
        format!("Signals: Transferred {name} successfully.")
    }

    /// The cycle's summary, `Signals: Discovered N file(s), transferred M file(s)
    /// successfully`, or `Signals: Discovered 0 files` for an empty spool. An empty spool is
    /// reported only when no summary was written for `idle_every` (at once after a start).
    pub(crate) fn summary(
        &mut self,
        now: Instant,
        discovered: usize,
        transferred: usize,
    ) -> Option<String> {
        if discovered == 0 {
            let due = self
                .last_summary
                .is_none_or(|t| now.saturating_duration_since(t) >= self.idle_every);
            if !due {
                return None;
            }
            self.last_summary = Some(now);
            return Some("Signals: Discovered 0 files".to_string());
        }
        self.last_summary = Some(now);
        Some(format!(
            "Signals: Discovered {}, transferred {} successfully",
            files(discovered),
            files(transferred)
        ))
    }
}

fn files(n: usize) -> String {
    if n == 1 {
        "1 file".to_string()
    } else {
        format!("{n} files")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_articles_lines() {
        let mut log = VerboseLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            log.summary(t0, 0, 0).as_deref(),
            Some("Signals: Discovered 0 files")
        );
        let name = "sp1-0000000000003FBD.json".to_string();
        assert_eq!(
            log.discovered(std::slice::from_ref(&name)),
            vec!["Signals: Discovered sp1-0000000000003FBD.json"]
        );
        assert_eq!(
            VerboseLog::transferred(&name),
            "Signals: Transferred sp1-0000000000003FBD.json successfully."
        );
        assert_eq!(
            log.summary(t0, 1, 1).as_deref(),
            Some("Signals: Discovered 1 file, transferred 1 file successfully")
        );
        assert_eq!(
            log.summary(t0, 3, 0).as_deref(),
            Some("Signals: Discovered 3 files, transferred 0 files successfully")
        );
    }

    #[test]
    fn idle_every_minute_not_every_poll() {
        let mut log = VerboseLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(log.summary(t0, 0, 0).is_some(), "at once after a start");
        for s in [2, 10, 59] {
            assert!(log.summary(t0 + Duration::from_secs(s), 0, 0).is_none());
        }
        assert!(log.summary(t0 + Duration::from_secs(60), 0, 0).is_some());
        // Traffic counts as a summary: the next idle line is a minute after it.
        assert!(log.summary(t0 + Duration::from_secs(90), 2, 2).is_some());
        assert!(log.summary(t0 + Duration::from_secs(120), 0, 0).is_none());
        assert!(log.summary(t0 + Duration::from_secs(150), 0, 0).is_some());
    }

    #[test]
    fn each_file_is_announced_once() {
        let mut log = VerboseLog::new(Duration::from_secs(60));
        let a = "sp1-000000000000000A.json".to_string();
        let b = "sp1-000000000000000B.json".to_string();
        assert_eq!(log.discovered(std::slice::from_ref(&a)).len(), 1);
        // A retry after a failed upload does not announce `a` again; `b` is new.
        assert_eq!(
            log.discovered(&[a.clone(), b.clone()]),
            vec![format!("Signals: Discovered {b}")]
        );
        // Once `a` is gone it is forgotten.
        log.discovered(std::slice::from_ref(&b));
        assert!(!log.announced.contains(&a));
    }
}
