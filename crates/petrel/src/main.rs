//! `petrel`: the daemon and its command-line tools. Wiring and argument handling only; the
//! work happens in the library crates.

mod admin;
mod cli;
mod daemon;
mod keys;
mod metrics;
mod mgmt_client;
mod pmta;
mod render;
mod returns;
mod signals;
mod tracking;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Installed as a symlink named `pmta`, petrel answers PowerMTA's command line.
    if std::env::args_os()
        .next()
        .is_some_and(|argv0| pmta::invoked_as_pmta(&argv0))
    {
        return pmta::main();
    }
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("petrel: {e:#}");
            ExitCode::from(1)
        }
    }
}
