//! petrel-config: PowerMTA-compatible configuration for petrel.
//!
//! Reads a PowerMTA-style configuration file (comments, quoting, `<sections>`, `include`
//! with globs), validates every directive against one table, and produces an immutable,
//! fully typed [`Config`]. Problems are reported as `FILE:LINE: message` diagnostics, all
//! at once. Directives that petrel understands but does not act on yet load with a warning.
//!
//! The listener's entry points are [`Config::source_for_ip`], [`Config::source_with_named`],
//! [`Config::source_after_auth`], [`Config::smtp_user`] and [`Config::is_relay_domain`].
//! Whether a message produces SparkPost Signals events, and with which subaccount, is
//! [`ConfigData::signals_scope`].

mod builder;
mod config;
mod directive_value;
mod directives;
mod error;
mod lexer;
mod live;
mod model;
mod resolve;
mod restart;
mod tree;
mod values;

#[cfg(test)]
mod tests;

pub use config::{Config, ConfigData};
pub use error::{ConfigError, Diagnostic, ValueError};
pub use live::LiveConfig;
pub use model::*;
pub use restart::restart_needed;
pub use values::{
    canonical_ip, parse_bool, parse_data_rate, parse_duration, parse_duration_list,
    parse_duration_or_never, parse_rate, parse_size, parse_size_limit, Cidr, DataRate,
    DomainPattern, Rate, Specificity,
};

use std::path::Path;

/// A successfully loaded configuration plus the warnings found while loading it.
///
/// Exists so callers can start with the config and still show the operator what is not
/// acted on yet or deprecated.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Non-fatal findings (planned directives, deprecations...), in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Loads and validates the configuration file at `path` (following includes).
///
/// Relative paths inside the file (includes, certificates, key files, spool, logs...)
/// resolve against the directory of the file that names them.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => run(&String::from_utf8_lossy(&bytes), path, true),
        Err(e) => Err(ConfigError {
            errors: vec![Diagnostic::new(
                path,
                0,
                format!("cannot read configuration file: {e}"),
            )],
            warnings: Vec::new(),
        }),
    }
}

/// Parses configuration text as if it were the file `origin` (used for messages and to
/// resolve relative paths). Includes and file checks do touch the file system.
pub fn parse_str(text: &str, origin: &Path) -> Result<Loaded, ConfigError> {
    run(text, origin, true)
}

/// Runs the whole loader on arbitrary bytes without touching the file system (includes
/// fail cleanly, file checks are skipped). Exists for fuzzing: it must never panic.
pub fn fuzz_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = run(&text, Path::new("/nonexistent/fuzz.conf"), false);
}

fn run(text: &str, origin: &Path, io: bool) -> Result<Loaded, ConfigError> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let nodes = tree::Reader::new(io, &mut errors, &mut warnings).parse_root(origin, text);
    let data = builder::Builder::new(origin, io, &mut errors, &mut warnings).build(&nodes);
    let restart = restart::fingerprint(&nodes);
    let key = |d: &Diagnostic| (d.file.clone(), d.line);
    errors.sort_by_key(key);
    warnings.sort_by_key(key);
    if errors.is_empty() {
        Ok(Loaded {
            config: Config::new(data, restart),
            warnings,
        })
    } else {
        Err(ConfigError { errors, warnings })
    }
}
