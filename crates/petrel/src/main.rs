//! `petrel`: the daemon and its command-line tools. Wiring and argument handling only; the
//! work happens in the library crates.

mod admin;
mod cli;
mod daemon;
mod keys;
mod metrics;
mod mgmt_client;
mod render;
mod returns;
mod signals;
mod tracking;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("petrel: {e:#}");
            ExitCode::from(1)
        }
    }
}
