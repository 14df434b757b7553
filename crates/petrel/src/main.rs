//! `petrel`: the daemon and its command-line tools. Wiring and argument handling only; the
//! work happens in the library crates.
//!
//! The one `unsafe` is the allocator setting in `allocator.rs` (a single `mallopt` call at
//! start); everything else is safe code.
#![deny(unsafe_code)]

mod allocator;
mod cli;
mod daemon;
mod keys;
mod metrics;
mod mgmt_client;
mod returns;
mod signals;
mod tracking;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    allocator::tune();
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("petrel: {e:#}");
            ExitCode::from(1)
        }
    }
}
