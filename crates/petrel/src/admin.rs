//! The management verbs of the CLI (`show`, `list`, `pause`, `resume`, `set queue`,
//! `schedule`, `delete`, `reload`, `suppression …`): each is one call to the running
//! daemon's management API with the shared request and answer types.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use petrel_mgmt_api::{
    paths, Added, CommandResult, Data, DeleteArgs, Domains, JobArg, Jobs, Messages, MessagesQuery,
    ModeArgs, NewSuppression, QueueArg, Queues, ReloadResult, RemoveSuppression, Removed, Status,
    SuppressionQuery, Suppressions, Vmtas,
};
use serde::Serialize;

use crate::cli::load_config;
use crate::mgmt_client::{Client, NO_QUERY};
use crate::render;

/// How long a command waits for the daemon's answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The client for the daemon that `config` (or the default configuration) describes.
pub(crate) fn client(config: Option<&Path>) -> Result<Client> {
    Client::new(mgmt_port(config)?, TIMEOUT)
}

/// The daemon's `http-mgmt-port`, from its configuration file.
pub(crate) fn mgmt_port(config: Option<&Path>) -> Result<u16> {
    let port = match load_config(config) {
        Ok((config, _, _)) => config.http_mgmt_port,
        // A file being edited may not parse (that is what `reload` is for): find the port
        // the daemon was started with by reading the one line that matters.
        Err(e) => match config.and_then(|p| std::fs::read_to_string(p).ok()) {
            Some(text) => text
                .lines()
                .filter_map(|l| l.split('#').next())
                .find_map(|l| {
                    let mut words = l.split_whitespace();
                    (words.next() == Some("http-mgmt-port"))
                        .then(|| words.next().and_then(|w| w.parse().ok()))
                        .flatten()
                })
                .unwrap_or(8080),
            None => return Err(e).context("reading the configuration to find http-mgmt-port"),
        },
    };
    if port == 0 {
        bail!("http-mgmt-port is 0: the management API is off");
    }
    Ok(port)
}

/// Prints `value` as the API's JSON, or as the table `table` makes of it.
pub(crate) fn print<T: Serialize>(
    value: &T,
    json: bool,
    table: impl Fn(&T) -> String,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", table(value));
    }
    Ok(ExitCode::SUCCESS)
}

/// `show status|queues|domains|jobs|vmtas`.
pub fn show(what: &str, json: bool, config: Option<&Path>) -> Result<ExitCode> {
    let c = client(config)?;
    match what {
        "status" => print(
            &c.get::<Data<Status>>(paths::STATUS, NO_QUERY)?,
            json,
            |d| render::status(&d.data),
        ),
        "queues" => print(
            &c.get::<Data<Queues>>(paths::QUEUES, NO_QUERY)?,
            json,
            |d| render::queues(&d.data),
        ),
        "domains" => print(
            &c.get::<Data<Domains>>(paths::DOMAINS, NO_QUERY)?,
            json,
            |d| render::domains(&d.data),
        ),
        "jobs" => print(&c.get::<Data<Jobs>>(paths::JOBS, NO_QUERY)?, json, |d| {
            render::jobs(&d.data)
        }),
        "vmtas" => print(&c.get::<Data<Vmtas>>(paths::VMTAS, NO_QUERY)?, json, |d| {
            render::vmtas(&d.data)
        }),
        other => bail!("cannot show `{other}`"),
    }
}

/// `list [--jobId=ID] [--maxitems=N]`.
pub fn list(
    job_id: Option<String>,
    maxitems: usize,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode> {
    let query = MessagesQuery {
        limit: Some(maxitems),
        job_id,
    };
    let body: Data<Messages> = client(config)?.get(paths::MESSAGES, &query)?;
    print(&body, json, |d| render::messages(&d.data))
}

/// Sends a command and prints what it did.
fn command(
    config: Option<&Path>,
    path: &str,
    query: &(impl Serialize + ?Sized),
) -> Result<ExitCode> {
    let body: Data<CommandResult> = client(config)?.post(path, query)?;
    println!("{}", body.data.result);
    Ok(ExitCode::SUCCESS)
}

/// `pause|resume queue|job NAME`.
pub fn pause_or_resume(
    pause: bool,
    what: &str,
    name: &str,
    config: Option<&Path>,
) -> Result<ExitCode> {
    let queue = QueueArg {
        queue: Some(name.to_string()),
    };
    let job = JobArg {
        job_id: Some(name.to_string()),
    };
    match (what, pause) {
        ("queue", true) => command(config, paths::PAUSE_QUEUE, &queue),
        ("queue", false) => command(config, paths::RESUME_QUEUE, &queue),
        (_, true) => command(config, paths::PAUSE_JOB, &job),
        (_, false) => command(config, paths::RESUME_JOB, &job),
    }
}

/// `set queue --mode=backoff|normal PATTERN`.
pub fn set_queue_mode(mode: String, queue: String, config: Option<&Path>) -> Result<ExitCode> {
    let args = ModeArgs {
        queue: Some(queue),
        mode: Some(mode),
    };
    command(config, paths::SET_QUEUE_MODE, &args)
}

/// `schedule PATTERN`.
pub fn schedule(queue: String, config: Option<&Path>) -> Result<ExitCode> {
    command(config, paths::SCHEDULE, &QueueArg { queue: Some(queue) })
}

/// `delete --queue=PATTERN | --jobId=ID`.
pub fn delete(
    queue: Option<String>,
    job_id: Option<String>,
    config: Option<&Path>,
) -> Result<ExitCode> {
    if queue.is_none() && job_id.is_none() {
        bail!("delete needs --queue=PATTERN or --jobId=ID");
    }
    command(config, paths::DELETE, &DeleteArgs { queue, job_id })
}

/// `reload`: the daemon re-reads its file; the changes it can apply only at a restart are
/// named.
pub fn reload(config: Option<&Path>) -> Result<ExitCode> {
    let body: Data<ReloadResult> = client(config)?.post(paths::RELOAD, NO_QUERY)?;
    println!("{}", body.data.result);
    if !body.data.restart_needed.is_empty() {
        println!(
            "These changes take effect only after a restart: {}",
            body.data.restart_needed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// After `check-config FILE`: when a daemon runs with FILE, what reloading it would leave
/// for a restart. Silent when no daemon answers or it reads another file.
pub fn compare_with_running(file: &Path) {
    let Ok(port) = mgmt_port(Some(file)) else {
        return;
    };
    let Ok(c) = Client::new(port, Duration::from_secs(5)) else {
        return;
    };
    let Ok(body) = c.get::<Data<ReloadResult>>(paths::CHECK_CONFIG, NO_QUERY) else {
        return;
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let running = body.data.file.as_deref().map(Path::new);
    if !running.is_some_and(|r| same(r, file)) {
        return;
    }
    if body.data.restart_needed.is_empty() {
        println!("the running daemon applies every change in this file on `petrel reload`");
    } else {
        println!(
            "the running daemon applies these changes only after a restart: {}",
            body.data.restart_needed.join(", ")
        );
    }
}

/// `suppression list`.
pub fn suppression_list(
    query: SuppressionQuery,
    json: bool,
    config: Option<&Path>,
) -> Result<ExitCode> {
    let body: Suppressions = client(config)?.get(paths::SUPPRESSIONS, &query)?;
    print(&body, json, render::suppressions)
}

/// `suppression add`.
pub fn suppression_add(entry: NewSuppression, config: Option<&Path>) -> Result<ExitCode> {
    let body: Added = client(config)?.post_json(paths::SUPPRESSIONS, &entry)?;
    let (address, subaccount) = (entry.address, entry.subaccount);
    if body.added {
        println!("{address} suppressed for subaccount {subaccount}.");
    } else {
        println!("{address} was already suppressed for subaccount {subaccount}; entry refreshed.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `suppression remove`.
pub fn suppression_remove(
    address: String,
    subaccount: u64,
    config: Option<&Path>,
) -> Result<ExitCode> {
    let query = RemoveSuppression {
        address: Some(address.clone()),
        subaccount: Some(subaccount.to_string()),
    };
    let _: Removed = client(config)?.delete(paths::SUPPRESSIONS, &query)?;
    println!("{address} is no longer suppressed for subaccount {subaccount}.");
    Ok(ExitCode::SUCCESS)
}
