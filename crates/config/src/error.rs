//! Diagnostics and error types.
//!
//! Every problem found in a configuration is reported against the file and line that caused
//! it, so an operator can jump straight to it; that is why there is one `Diagnostic` shape
//! for both errors and warnings.

use std::fmt;
use std::path::PathBuf;

/// One finding about the configuration, located at `file:line`.
///
/// Exists so that errors and warnings share a single, printable, `FILE:LINE: message` form
/// that `petrel check-config` can show verbatim. `line` is 1-based; 0 means "the file as a
/// whole" (for example when the file itself cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the finding is about (as named by the operator or resolved from an include).
    pub file: PathBuf,
    /// 1-based line number, or 0 when the finding concerns the whole file.
    pub line: usize,
    /// Human-readable explanation, without the location prefix.
    pub message: String,
}

impl Diagnostic {
    /// Builds a diagnostic; a small helper so call sites stay short.
    pub fn new(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// A configuration that cannot be used.
///
/// Exists so a caller gets *all* the problems of one load at once (fix them in one pass)
/// instead of a single first error. `warnings` carries the non-fatal findings collected in
/// the same pass, so a checker can still print them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.errors))]
pub struct ConfigError {
    /// The errors, in file order (at least one).
    pub errors: Vec<Diagnostic>,
    /// Warnings found while loading, reported alongside the errors.
    pub warnings: Vec<Diagnostic>,
}

fn join_lines(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a single value could not be parsed.
///
/// Exists so value parsers can be tested and reused (for example by the management API)
/// without any notion of files or lines; the loader adds the location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl ValueError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        ValueError(msg.into())
    }
}
