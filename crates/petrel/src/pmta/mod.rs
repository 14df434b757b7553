//! `pmta`: PowerMTA's command-line tool, answered by petrel.
//!
//! Cron jobs, monitoring checks and runbooks call `pmta show queues`, `pmta pause queue …`,
//! `pmta reload`. Installed as a symlink named `pmta` to the petrel binary (see
//! docs/operations.md), petrel accepts PowerMTA's verbs, options and spelling and runs its
//! own verb for each, so the output is petrel's own (same columns as `petrel show …`).
//!
//! This module is only a translation: a PowerMTA command line becomes petrel's arguments
//! ([`Plan::Petrel`]), or, for the list filters petrel's verbs do not take (`--sort`,
//! `--maxitems`, `--paused=`, a queue pattern…), the same list fetched from the management
//! API, filtered, and printed by petrel's own table code ([`Plan::View`]). A PowerMTA
//! command or option petrel cannot honour is refused with "not supported by petrel" and
//! exit code 1 — never a silent no-op, and never a wider action than asked (a `delete`
//! with a `--rcpt=` filter is refused rather than run without it).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser as _;
use petrel_mgmt_api::Mode;

use crate::cli;

mod view;

pub use view::{List, Sort, View};

/// The program name that switches the binary to PowerMTA's command line.
pub const PROGRAM: &str = "pmta";

/// PowerMTA's configuration file: `pmta` finds the daemon through it first.
pub const PMTA_CONFIG: &str = "/etc/pmta/config";

/// The environment variable naming petrel's configuration when `/etc/pmta/config` is absent.
pub const CONFIG_ENV: &str = "PETREL_CONFIG";

/// Whether the binary was started as `pmta` (the file name of argv[0], e.g. a symlink
/// `/usr/sbin/pmta` → `petrel`).
pub fn invoked_as_pmta(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name() == Some(OsStr::new(PROGRAM))
}

/// The configuration `pmta` uses, found as PowerMTA's tool finds its own: `/etc/pmta/config`
/// if it exists, else `$PETREL_CONFIG`, else none (petrel's default: `./petrel.conf`, then
/// the built-in configuration).
pub fn find_config(pmta_config: &Path, env: Option<OsString>) -> Option<PathBuf> {
    if pmta_config.is_file() {
        return Some(pmta_config.to_path_buf());
    }
    env.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// A PowerMTA command petrel refuses, with the reason. Printed as
/// `pmta: COMMAND: not supported by petrel (REASON)`; the exit code is 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn not_supported(what: impl std::fmt::Display, why: &str) -> Unsupported {
    Unsupported(format!("{what}: not supported by petrel ({why})"))
}

fn usage_error(what: impl std::fmt::Display, expected: &str) -> Unsupported {
    Unsupported(format!("{what}: expected {expected}"))
}

/// What a PowerMTA command line becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run petrel's own verb with these arguments (the program name not included).
    Petrel(Vec<OsString>),
    /// A `show` list with PowerMTA's filters applied to petrel's data.
    View(View),
    /// Print the list of commands (`pmta help`).
    Help,
}

/// Options that take no value.
const FLAGS: &[&str] = &[
    "errors",
    "no-rcpt-events",
    "mode-events",
    "retry-recipients",
    "dsn",
    "no-accounting",
    "pause",
    "priority",
    "schedule",
    "log-data",
    "log-resolution",
    "to-log",
    "tcp",
    "connect",
    "use-dane",
    "dumppackets",
    "interactive",
];

/// One command's `--options` (lower-cased names, values as given) and other words.
struct Args {
    command: String,
    options: Vec<(String, Option<String>)>,
    words: Vec<String>,
}

impl Args {
    fn parse(command: String, args: &[String]) -> Self {
        let mut options = Vec::new();
        let mut words = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.strip_prefix("--") {
                Some(opt) => {
                    let (name, value) = match opt.split_once('=') {
                        Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_string())),
                        None => {
                            let n = opt.to_ascii_lowercase();
                            let value = if FLAGS.contains(&n.as_str()) {
                                None
                            } else {
                                it.next().cloned()
                            };
                            (n, value)
                        }
                    };
                    options.push((name, value));
                }
                None => words.push(a.clone()),
            }
        }
        Args {
            command,
            options,
            words,
        }
    }

    /// Refuses every option not in `supported`, naming it: a known PowerMTA option petrel
    /// does not honour must not be dropped silently.
    fn only(&self, supported: &[&str], why: &str) -> Result<(), Unsupported> {
        match self
            .options
            .iter()
            .find(|(n, _)| !supported.contains(&n.as_str()))
        {
            Some((n, _)) => Err(not_supported(
                format!("option `--{n}` of `{}`", self.command),
                why,
            )),
            None => Ok(()),
        }
    }

    fn value(&self, name: &str) -> Result<Option<&str>, Unsupported> {
        match self.options.iter().find(|(n, _)| n == name) {
            None => Ok(None),
            Some((_, Some(v))) => Ok(Some(v)),
            Some((_, None)) => Err(usage_error(
                format!("{}: `--{name}`", self.command),
                "a value",
            )),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// Exactly one word (a queue pattern, a job id…).
    fn one_word(&self, what: &str) -> Result<String, Unsupported> {
        match self.words.as_slice() {
            [w] => Ok(w.clone()),
            _ => Err(usage_error(&self.command, what)),
        }
    }
}

fn yes_no(args: &Args, name: &str) -> Result<Option<bool>, Unsupported> {
    match args.value(name)? {
        None => Ok(None),
        Some(v) => match petrel_config::parse_bool(v) {
            Ok(b) => Ok(Some(b)),
            Err(_) => Err(usage_error(
                format!("{}: `--{name}={v}`", args.command),
                "yes or no",
            )),
        },
    }
}

fn mode(args: &Args) -> Result<Option<Mode>, Unsupported> {
    match args.value("mode")? {
        None => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "normal" => Ok(Some(Mode::Normal)),
            "backoff" => Ok(Some(Mode::Backoff)),
            _ => Err(usage_error(
                format!("{}: `--mode={v}`", args.command),
                "normal or backoff",
            )),
        },
    }
}

fn max_items(args: &Args) -> Result<Option<usize>, Unsupported> {
    match args.value("maxitems")? {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| usage_error(format!("{}: `--maxitems={v}`", args.command), "a number")),
    }
}

fn sort(args: &Args, default: Option<Sort>) -> Result<Option<Sort>, Unsupported> {
    match args.value("sort")? {
        None => Ok(default),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "name" => Ok(Some(Sort::Name)),
            "rcpt" => Ok(Some(Sort::Rcpt)),
            "size" => Ok(Some(Sort::Size)),
            _ => Err(usage_error(
                format!("{}: `--sort={v}`", args.command),
                "name, rcpt or size",
            )),
        },
    }
}

/// Translates PowerMTA's command line (`args` without the program name) for the daemon
/// whose configuration is `config` (`None`: petrel's default).
pub fn plan(args: &[String], config: Option<&Path>) -> Result<Plan, Unsupported> {
    let mut json = false;
    let mut rest = args;
    while let Some((first, more)) = rest.split_first() {
        match first.as_str() {
            "--json" => json = true,
            "--xml" | "--dom" => {
                return Err(not_supported(
                    format!("output format `{first}`"),
                    "petrel prints tables, or JSON with --json",
                ))
            }
            "--help" | "-h" => return Ok(Plan::Help),
            _ => break,
        }
        rest = more;
    }
    let Some((verb, rest)) = rest.split_first() else {
        return Err(Unsupported(
            "no command given; `pmta help` lists the commands petrel answers".into(),
        ));
    };
    let verb = verb.to_ascii_lowercase();
    // Two-word commands: `show queues`, `pause job`, `rotate acct`…
    let two_word = [
        "show", "pause", "resume", "set", "test", "rotate", "reset", "clear", "disable", "enable",
        "check",
    ];
    let (command, rest) = match rest.split_first() {
        Some((object, more)) if two_word.contains(&verb.as_str()) => {
            (format!("{verb} {}", object.to_ascii_lowercase()), more)
        }
        _ => (verb.clone(), rest),
    };
    let cmd = Command {
        args: Args::parse(command, rest),
        json,
        config,
    };
    cmd.plan()
}

/// One PowerMTA command being translated.
struct Command<'a> {
    args: Args,
    /// `pmta --json`.
    json: bool,
    config: Option<&'a Path>,
}

/// The reason given for PowerMTA features petrel's management API lacks.
const NO_API: &str = "petrel's management API does not offer it";

impl Command<'_> {
    /// petrel's arguments for `argv`, pointed at the configuration `pmta` found.
    fn petrel(&self, argv: &[&str]) -> Plan {
        let mut v: Vec<OsString> = argv.iter().map(OsString::from).collect();
        if let Some(c) = self.config {
            v.push("--config".into());
            v.push(c.as_os_str().to_owned());
        }
        Plan::Petrel(v)
    }

    /// `show`/`list` with `--json`: the verb's own `--json`.
    fn petrel_json(&self, argv: &[&str]) -> Plan {
        let mut argv = argv.to_vec();
        if self.json {
            argv.push("--json");
        }
        self.petrel(&argv)
    }

    /// Refuses `--json` on verbs that print no list.
    fn no_json(&self) -> Result<(), Unsupported> {
        if self.json {
            Err(not_supported(
                format!("`--json` with `{}`", self.args.command),
                "only show and list print JSON",
            ))
        } else {
            Ok(())
        }
    }

    /// A `show` list: petrel's own verb, or with PowerMTA's filters a [`View`].
    fn view(&self, list: List, default_sort: Option<Sort>) -> Result<Plan, Unsupported> {
        let args = &self.args;
        let pattern = match args.words.as_slice() {
            [] => None,
            [p] => Some(p.clone()),
            _ => {
                return Err(usage_error(
                    &args.command,
                    "at most one name or domain[/vmta] pattern",
                ))
            }
        };
        let view = View {
            list: Some(list),
            pattern,
            paused: yes_no(args, "paused")?,
            mode: mode(args)?,
            connected: yes_no(args, "connected")?,
            errors: args.flag("errors"),
            sort: sort(args, default_sort)?,
            max_items: max_items(args)?,
            json: self.json,
        };
        // Without PowerMTA's filters the list is petrel's own verb, word for word.
        let unfiltered = View {
            list: Some(list),
            json: self.json,
            ..View::default()
        };
        if view == unfiltered {
            return Ok(self.petrel_json(&["show", list.verb()]));
        }
        Ok(Plan::View(view))
    }

    /// The translation, command by command (PowerMTA's table: pmta-spec §6.1).
    fn plan(&self) -> Result<Plan, Unsupported> {
        let args = &self.args;
        let command = args.command.as_str();
        match command {
            "help" => Ok(Plan::Help),
            "show status" => {
                args.only(&[], "petrel's status has no options")?;
                if !args.words.is_empty() {
                    return Err(usage_error("show status", "no arguments"));
                }
                Ok(self.petrel_json(&["show", "status"]))
            }
            "show queues" | "show topqueues" => {
                // petrel never prints recipient events, so --no-rcpt-events asks for what
                // petrel already does.
                args.only(
                    &[
                        "connected",
                        "paused",
                        "mode",
                        "maxitems",
                        "errors",
                        "sort",
                        "no-rcpt-events",
                    ],
                    "petrel keeps no per-queue event history",
                )?;
                let top = command == "show topqueues";
                self.view(List::Queues, top.then_some(Sort::Rcpt))
            }
            "show domains" | "show topdomains" => {
                args.only(
                    &["maxitems", "sort"],
                    "petrel's domain list has no per-vmta, connection or error columns",
                )?;
                let top = command == "show topdomains";
                self.view(List::Domains, top.then_some(Sort::Rcpt))
            }
            "show jobs" | "show vmtas" => {
                args.only(&["maxitems"], "petrel's list takes only --maxitems")?;
                if !args.words.is_empty() {
                    return Err(usage_error(command, "no arguments"));
                }
                let list = if command == "show jobs" {
                    List::Jobs
                } else {
                    List::Vmtas
                };
                self.view(list, None)
            }
            "show version" => Ok(Plan::Petrel(vec!["--version".into()])),
            "show settings" => Err(not_supported("show settings",
                "petrel does not print effective per-queue settings; `petrel check-config` checks the file",
            )),
            "show license" | "show registration" => Err(not_supported(
                command,
                "petrel is open source and needs no license",
            )),
            c if c.starts_with("show ") => Err(not_supported(c, NO_API)),
            "reload" => {
                self.no_json()?;
                args.only(&[], "reload has no options")?;
                Ok(self.petrel(&["reload"]))
            }
            "test config" => {
                self.no_json()?;
                args.only(&[], "test config has no options")?;
                let file = self
                    .config
                    .map(Path::to_path_buf)
                    .or_else(|| Some(PathBuf::from("petrel.conf")).filter(|p| p.is_file()))
                    .ok_or_else(|| {
                        Unsupported(format!(
                            "test config: no configuration file: {PMTA_CONFIG} does not exist and {CONFIG_ENV} is not set"
                        ))
                    })?;
                Ok(Plan::Petrel(vec![
                    "check-config".into(),
                    file.into_os_string(),
                ]))
            }
            "pause queue" | "resume queue" | "pause job" | "resume job" => {
                self.no_json()?;
                args.only(&[], "pause and resume have no options")?;
                let what = if command.ends_with("queue") {
                    "domain[/vmta]"
                } else {
                    "a job id"
                };
                let name = args.one_word(what)?;
                let (action, object) = command.split_once(' ').unwrap_or_default();
                Ok(self.petrel(&[action, object, &name]))
            }
            "schedule" => {
                self.no_json()?;
                // petrel's schedule already retries every deferred recipient of the queue, which
                // is what --retry-recipients asks for.
                args.only(&["retry-recipients"], NO_API)?;
                let queue = args.one_word("domain[/vmta]")?;
                Ok(self.petrel(&["schedule", &queue]))
            }
            "set queue" => {
                self.no_json()?;
                args.only(&["mode"], NO_API)?;
                let mode = args
                    .value("mode")?
                    .map(str::to_ascii_lowercase)
                    .filter(|m| m == "normal" || m == "backoff")
                    .ok_or_else(|| usage_error("set queue", "--mode=normal or --mode=backoff"))?;
                let queue = args.one_word("domain[/vmta]")?;
                Ok(self.petrel(&["set", "queue", "--mode", &mode, &queue]))
            }
            "delete" => {
                self.no_json()?;
                // Only the filters petrel applies: running a delete without a filter the
                // operator asked for would delete more than intended.
                args.only(
                    &["queue", "jobid"],
                    "petrel deletes by --queue and --jobId only, without DSNs",
                )?;
                if !args.words.is_empty() {
                    return Err(usage_error("delete", "only --queue= and --jobId= options"));
                }
                let queue = args.value("queue")?;
                let job = args.value("jobid")?;
                if queue.is_none() && job.is_none() {
                    return Err(usage_error("delete", "--queue=PATTERN or --jobId=ID"));
                }
                let mut argv = vec!["delete"];
                if let Some(q) = queue {
                    argv.extend(["--queue", q]);
                }
                if let Some(j) = job {
                    argv.extend(["--jobId", j]);
                }
                Ok(self.petrel(&argv))
            }
            "list" => {
                args.only(
                    &["jobid", "maxitems"],
                    "petrel lists spooled messages by --jobId only",
                )?;
                if !args.words.is_empty() {
                    return Err(usage_error("list", "only options"));
                }
                let max = max_items(args)?.unwrap_or(100).to_string();
                let mut argv = vec!["list", "--maxitems", &max];
                if let Some(j) = args.value("jobid")? {
                    argv.extend(["--jobId", j]);
                }
                Ok(self.petrel_json(&argv))
            }
            "set priority" => Err(not_supported("set priority", "petrel has no queue priorities")),
            "rotate acct" => Err(not_supported("rotate acct",
                "the management API cannot rotate the accounting files yet; petrel rotates them at midnight UTC and at max-size",
            )),
            "rotate log" => Err(not_supported("rotate log",
                "petrel appends to log-file; rotate it with logrotate's copytruncate",
            )),
            "reset counters" | "reset status" => Err(not_supported(
                command,
                "petrel's counters count since start, as Prometheus expects",
            )),
            "trace" | "resolve" | "clear dnscache" | "disable source" | "enable source"
            | "check spf" | "check mfrom" | "digest" | "register" | "deregister" => {
                Err(not_supported(command, NO_API))
            }
            other => Err(not_supported(
                other,
                "unknown command; `pmta help` lists the commands petrel answers",
            )),
        }
    }
}

/// `pmta help`.
const HELP: &str = "\
pmta (petrel): PowerMTA's command line, answered by petrel. Configuration: /etc/pmta/config,
else $PETREL_CONFIG, else petrel's default.

  pmta [--json] show status
  pmta [--json] show queues|topqueues [--paused=yes|no] [--mode=normal|backoff]
                 [--connected=yes|no] [--errors] [--sort=name|rcpt|size] [--maxitems=N] [domain[/vmta]]
  pmta [--json] show domains|topdomains [--sort=name|rcpt|size] [--maxitems=N] [domain]
  pmta [--json] show jobs|vmtas [--maxitems=N]
  pmta show version
  pmta pause|resume queue domain[/vmta]      (* wildcards)
  pmta pause|resume job ID
  pmta schedule [--retry-recipients] domain[/vmta]
  pmta set queue --mode=normal|backoff domain[/vmta]
  pmta delete --queue=domain[/vmta] | --jobId=ID
  pmta [--json] list [--jobId=ID] [--maxitems=N]
  pmta reload
  pmta test config

Anything else prints \"not supported by petrel\" and exits 1.
";

/// Entry point when the binary runs as `pmta`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = find_config(Path::new(PMTA_CONFIG), std::env::var_os(CONFIG_ENV));
    match plan(&args, config.as_deref()) {
        Ok(Plan::Help) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Plan::Petrel(argv)) => {
            let parsed =
                cli::Args::try_parse_from(std::iter::once(OsString::from("petrel")).chain(argv));
            match parsed {
                Ok(a) => report(cli::run(a)),
                Err(e) => {
                    // `show version` prints clap's version line and succeeds.
                    let ok = e.exit_code() == 0;
                    let _ = e.print();
                    if ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
            }
        }
        Ok(Plan::View(view)) => report(view::show(&view, config.as_deref())),
        Err(e) => {
            eprintln!("pmta: {e}");
            ExitCode::from(1)
        }
    }
}

fn report(result: Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("pmta: {e:#}");
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    /// The petrel arguments for a PowerMTA line, as one string.
    fn petrel(line: &str) -> String {
        match plan(&words(line), Some(Path::new("/etc/pmta/config"))) {
            Ok(Plan::Petrel(v)) => v
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            other => panic!("{line}: {other:?}"),
        }
    }

    fn refused(line: &str) -> String {
        match plan(&words(line), None) {
            Err(e) => e.0,
            other => panic!("{line} should be refused: {other:?}"),
        }
    }

    fn view(line: &str) -> View {
        match plan(&words(line), None) {
            Ok(Plan::View(v)) => v,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn powermta_commands_become_petrel_verbs() {
        let c = " --config /etc/pmta/config";
        assert_eq!(petrel("show status"), format!("show status{c}"));
        assert_eq!(
            petrel("--json show status"),
            format!("show status --json{c}")
        );
        assert_eq!(petrel("reload"), format!("reload{c}"));
        assert_eq!(
            petrel("pause queue gmail.com/*"),
            format!("pause queue gmail.com/*{c}")
        );
        assert_eq!(
            petrel("resume queue */vmta1"),
            format!("resume queue */vmta1{c}")
        );
        assert_eq!(
            petrel("pause job Spring-Sale"),
            format!("pause job Spring-Sale{c}")
        );
        assert_eq!(petrel("resume job 42"), format!("resume job 42{c}"));
        assert_eq!(
            petrel("schedule --retry-recipients yahoo.com/*"),
            format!("schedule yahoo.com/*{c}")
        );
        assert_eq!(
            petrel("set queue --mode=backoff hotmail.com/vmta2"),
            format!("set queue --mode backoff hotmail.com/vmta2{c}")
        );
        assert_eq!(
            petrel("set queue --mode NORMAL hotmail.com"),
            format!("set queue --mode normal hotmail.com{c}")
        );
        assert_eq!(
            petrel("delete --queue=aol.com/*"),
            format!("delete --queue aol.com/*{c}")
        );
        assert_eq!(
            petrel("delete --jobId=Spring --queue=aol.com/*"),
            format!("delete --queue aol.com/* --jobId Spring{c}")
        );
        assert_eq!(
            petrel("list --jobId=J1 --maxitems=5"),
            format!("list --maxitems 5 --jobId J1{c}")
        );
        assert_eq!(petrel("list"), format!("list --maxitems 100{c}"));
        assert_eq!(petrel("test config"), "check-config /etc/pmta/config");
        assert_eq!(petrel("show version"), "--version");
        // Verbs are matched case-insensitively, as operators type them.
        assert_eq!(petrel("SHOW Status"), format!("show status{c}"));
    }

    #[test]
    fn without_a_config_petrel_uses_its_default() {
        match plan(&words("reload"), None) {
            Ok(Plan::Petrel(v)) => assert_eq!(v, vec![OsString::from("reload")]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn show_lists_carry_powermta_filters() {
        let v = view("show topqueues --maxitems=5 --paused=no --mode=backoff yahoo.com/*");
        assert_eq!(v.list, Some(List::Queues));
        assert_eq!(v.sort, Some(Sort::Rcpt));
        assert_eq!(v.max_items, Some(5));
        assert_eq!(v.paused, Some(false));
        assert_eq!(v.mode, Some(Mode::Backoff));
        assert_eq!(v.pattern.as_deref(), Some("yahoo.com/*"));
        let v = view("--json show queues --sort=name --errors --connected=yes --no-rcpt-events");
        assert!(v.json && v.errors);
        assert_eq!(v.sort, Some(Sort::Name));
        assert_eq!(v.connected, Some(true));
        assert_eq!(view("show topdomains").sort, Some(Sort::Rcpt));
        assert_eq!(view("show jobs --maxitems=3").list, Some(List::Jobs));
        assert_eq!(view("show vmtas --maxitems=3").list, Some(List::Vmtas));
        // Without filters, petrel's own verb runs.
        let c = " --config /etc/pmta/config";
        assert_eq!(petrel("show queues"), format!("show queues{c}"));
        assert_eq!(
            petrel("--json show queues"),
            format!("show queues --json{c}")
        );
        assert_eq!(petrel("show jobs"), format!("show jobs{c}"));
        assert_eq!(petrel("show vmtas"), format!("show vmtas{c}"));
        assert_eq!(petrel("show domains"), format!("show domains{c}"));
    }

    #[test]
    fn what_petrel_cannot_do_is_refused_by_name() {
        for line in [
            "show settings gmail.com",
            "show license",
            "show disabled sources",
            "rotate acct",
            "rotate log",
            "reset counters",
            "trace gmail.com",
            "set priority --queue=a.com 10",
            "digest --hmac-sha256 x",
            "frobnicate",
            "--xml show status",
        ] {
            let msg = refused(line);
            assert!(msg.contains("not supported by petrel"), "{line}: {msg}");
        }
        // An option petrel does not honour is named, not dropped.
        let msg = refused("show queues --mode-events");
        assert!(msg.contains("`--mode-events`"), "{msg}");
        let msg = refused("show domains --vmta=v1");
        assert!(msg.contains("`--vmta`"), "{msg}");
        // A delete never runs without a filter the operator gave.
        for line in [
            "delete --queue=a.com/* --rcpt=x@a.com",
            "delete --jobId=J --older-than=1d",
            "delete --queue=a.com/* --dsn",
        ] {
            assert!(refused(line).contains("not supported by petrel"), "{line}");
        }
        assert!(refused("delete").contains("--queue=PATTERN"));
        assert!(refused("pause queue").contains("domain[/vmta]"));
        assert!(refused("set queue --mode=fast a.com").contains("--mode=normal"));
        assert!(refused("--json reload").contains("not supported by petrel"));
        assert!(refused("").contains("no command"));
    }

    #[test]
    fn config_is_found_like_powermta_then_env_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let pmta = dir.path().join("config");
        let env = Some(OsString::from("/srv/petrel.conf"));
        assert_eq!(
            find_config(&pmta, env.clone()),
            Some(PathBuf::from("/srv/petrel.conf"))
        );
        assert_eq!(find_config(&pmta, None), None);
        assert_eq!(find_config(&pmta, Some(OsString::new())), None);
        std::fs::write(&pmta, "").unwrap();
        assert_eq!(find_config(&pmta, env), Some(pmta.clone()));
    }

    #[test]
    fn program_name_is_the_file_name_of_argv0() {
        assert!(invoked_as_pmta(OsStr::new("pmta")));
        assert!(invoked_as_pmta(OsStr::new("/usr/sbin/pmta")));
        assert!(!invoked_as_pmta(OsStr::new("/usr/bin/petrel")));
        assert!(!invoked_as_pmta(OsStr::new("/opt/pmta/bin/pmtad")));
    }
}
