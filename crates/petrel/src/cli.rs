//! Command-line surface: PowerMTA's verbs where they exist (`show queues`, `reload`, …).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use petrel_config::Config;
use serde_json::Value;

use crate::{daemon, mgmt_client};

/// The default configuration, used when neither `--config` nor `./petrel.conf` is there.
const DEFAULT_CONFIG: &str = include_str!("../../../petrel.conf");

/// petrel — a high-volume outbound MTA that speaks PowerMTA's configuration language.
#[derive(Parser, Debug)]
#[command(name = "petrel", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the daemon (SMTP listeners, spool, management API).
    Serve {
        /// Configuration file (default: ./petrel.conf, else the built-in loopback config).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file: errors exit 1, warnings are printed and exit 0.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print a campaign name made safe for the X-Job header.
    JobIdSafe {
        /// The name to sanitise.
        name: String,
    },
    /// Show the running daemon's state (`status`, `queues`, `domains`).
    Show {
        /// What to show.
        #[arg(value_parser = ["status", "queues", "domains", "jobs", "vmtas"])]
        what: String,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Configuration of the daemon to ask (its http-mgmt-port).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// List spooled messages and their pending recipients.
    List {
        /// Only messages of this job.
        #[arg(long = "jobId")]
        job_id: Option<String>,
        /// At most this many messages.
        #[arg(long, default_value_t = 100)]
        maxitems: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Pause a queue (`pause queue DOMAIN[/VMTA]`, `*` wildcards) or a job (`pause job ID`):
    /// its mail stays queued and none is sent until resumed.
    Pause {
        /// `queue` or `job`.
        #[arg(value_parser = ["queue", "job"])]
        what: String,
        /// The queue pattern or job id.
        name: String,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Resume a paused queue or job.
    Resume {
        /// `queue` or `job`.
        #[arg(value_parser = ["queue", "job"])]
        what: String,
        /// The queue pattern or job id.
        name: String,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Switch queues to backoff or normal mode (`set queue --mode=backoff DOMAIN[/VMTA]`, `*`
    /// wildcards), as `pmta set queue --mode` does.
    Set {
        /// `queue`.
        #[arg(value_parser = ["queue"])]
        what: String,
        /// `backoff` (the `backoff-*` limits and retry schedule apply) or `normal`.
        #[arg(long, value_parser = ["backoff", "normal"])]
        mode: String,
        /// The queue pattern, `DOMAIN[/VMTA]`.
        queue: String,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Retry a queue now, skipping the rest of its retry-after wait.
    Schedule {
        /// The queue pattern, `DOMAIN[/VMTA]`.
        queue: String,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Delete queued recipients of a queue or a job (bounce records are written).
    Delete {
        /// Queue pattern.
        #[arg(long)]
        queue: Option<String>,
        /// Job id.
        #[arg(long = "jobId")]
        job_id: Option<String>,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Re-read the configuration file of the running daemon; on error the old one stays.
    Reload {
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print what petrel reads from returned mail (bounces, feedback-loop reports,
    /// auto-replies), one JSON line per file.
    Classify {
        /// Message files (RFC 5322, as received).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// petrel's own Signals service (`<signals-service>`).
    Signals {
        #[command(subcommand)]
        command: SignalsCmd,
    },
    /// The running daemon's suppression list: recipients that are not mailed again
    /// (hard bounces, spam complaints, manual entries), per subaccount.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCmd,
    },
    /// A bouncy test destination: answers like real mailbox providers (per-recipient tags
    /// or a seeded --mix), sends bounces and complaints back, fetches opens and clicks, and
    /// counts it all (docs/sink.md).
    Sink(petrel_sink::SinkArgs),
}

#[derive(Subcommand, Debug)]
enum SuppressionCmd {
    /// List suppressed recipients, newest first.
    List {
        /// Only this subaccount.
        #[arg(long)]
        subaccount: Option<u64>,
        /// Only this address.
        #[arg(long)]
        address: Option<String>,
        /// Only this reason.
        #[arg(long, value_parser = ["hard_bounce", "spam_complaint", "manual", "link_unsubscribe"])]
        reason: Option<String>,
        /// At most this many entries (default 100, at most 10000).
        #[arg(long)]
        limit: Option<usize>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Suppress an address by hand (reason `manual`); adding it again refreshes the entry.
    Add {
        /// The recipient address.
        address: String,
        /// The subaccount whose mail to it is suppressed.
        #[arg(long, default_value_t = 0)]
        subaccount: u64,
        /// A note for other operators.
        #[arg(long, default_value = "")]
        description: String,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lift a suppression, so the address is mailed again; exit 1 if it was not suppressed.
    Remove {
        /// The recipient address.
        address: String,
        /// The subaccount to lift it for.
        #[arg(long, default_value_t = 0)]
        subaccount: u64,
        /// Configuration of the daemon to ask.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum SignalsCmd {
    /// Run only the Signals service (ingest API and events search) of the configuration.
    Serve {
        /// Configuration file with a `<signals-service>` block.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Create an API key in the service's database and print it (shown only once).
    CreateKey {
        /// A name to recognise the key by.
        #[arg(long, default_value = "cli")]
        label: String,
        /// `ingest` (upload events), `read` (search) or `ingest,read`.
        #[arg(long, default_value = "ingest")]
        permissions: String,
        /// Configuration file with a `<signals-service>` block.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

/// Where the configuration comes from: a file, or the built-in text.
pub(crate) fn load_config(path: Option<&Path>) -> Result<(Config, Vec<String>, Option<PathBuf>)> {
    let (loaded, file) = match path {
        Some(p) => (petrel_config::load(p), Some(p.to_path_buf())),
        None if Path::new("petrel.conf").exists() => {
            let p = PathBuf::from("petrel.conf");
            (petrel_config::load(&p), Some(p))
        }
        None => {
            let origin = std::env::current_dir()?.join("petrel.conf");
            (petrel_config::parse_str(DEFAULT_CONFIG, &origin), None)
        }
    };
    match loaded {
        Ok(l) => Ok((
            l.config,
            l.warnings.iter().map(|w| w.to_string()).collect(),
            file,
        )),
        Err(e) => bail!("configuration has errors:\n{e}"),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Cmd::Serve { config } => {
            daemon::serve(config.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Classify { files } => {
            let mut failed = false;
            for f in files {
                match std::fs::read(&f) {
                    Ok(raw) => {
                        let verdict = match petrel_bounce::try_parse(&raw) {
                            Ok(r) => serde_json::to_value(&r)?,
                            Err(e) => serde_json::json!({"kind": "error", "error": e.to_string()}),
                        };
                        let mut line = serde_json::json!({"file": f.display().to_string()});
                        if let (Some(obj), Some(v)) = (line.as_object_mut(), verdict.as_object()) {
                            obj.extend(v.clone());
                        }
                        println!("{line}");
                    }
                    Err(e) => {
                        eprintln!("{}: {e}", f.display());
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Signals { command } => match command {
            SignalsCmd::Serve { config } => {
                let (cfg, warnings, _) = load_config(config.as_deref())?;
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                crate::daemon::init_logging(cfg.log_file.as_deref())?;
                crate::signals::serve_alone(&cfg)?;
                Ok(ExitCode::SUCCESS)
            }
            SignalsCmd::CreateKey {
                label,
                permissions,
                config,
            } => {
                let (cfg, _, _) = load_config(config.as_deref())?;
                let key = crate::signals::create_key(&cfg, &label, &permissions)?;
                println!("{key}");
                Ok(ExitCode::SUCCESS)
            }
        },
        Cmd::Suppression { command } => suppression(command),
        Cmd::Sink(args) => Ok(petrel_sink::run(args)),
        Cmd::CheckConfig { file } => match petrel_config::load(&file) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    println!("warning: {w}");
                }
                println!(
                    "{}: configuration OK ({} warning(s))",
                    file.display(),
                    loaded.warnings.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        Cmd::JobIdSafe { name } => {
            println!("{}", petrel_message::job_id_safe(&name));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Show { what, json, config } => {
            let port = mgmt_port(config.as_deref())?;
            let body = mgmt_client::get(port, &format!("/{what}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", render(&what, &body));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::List {
            job_id,
            maxitems,
            json,
            config,
        } => {
            let port = mgmt_port(config.as_deref())?;
            let mut path = format!("/messages?limit={maxitems}");
            if let Some(j) = job_id {
                path.push_str(&format!("&jobId={}", mgmt_client::encode(&j)));
            }
            let body = mgmt_client::get(port, &path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", render("messages", &body));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Pause { what, name, config } => pause_or_resume(true, &what, &name, config.as_deref()),
        Cmd::Resume { what, name, config } => {
            pause_or_resume(false, &what, &name, config.as_deref())
        }
        Cmd::Set {
            what: _,
            mode,
            queue,
            config,
        } => {
            let port = mgmt_port(config.as_deref())?;
            let body = mgmt_client::post(
                port,
                &format!(
                    "/setQueueMode?queue={}&mode={mode}",
                    mgmt_client::encode(&queue)
                ),
            )?;
            println!("{}", body["data"]["result"].as_str().unwrap_or("done."));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Schedule { queue, config } => {
            let port = mgmt_port(config.as_deref())?;
            let body = mgmt_client::post(
                port,
                &format!("/schedule?queue={}", mgmt_client::encode(&queue)),
            )?;
            println!("{}", body["data"]["result"].as_str().unwrap_or("done."));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Delete {
            queue,
            job_id,
            config,
        } => {
            if queue.is_none() && job_id.is_none() {
                bail!("delete needs --queue=PATTERN or --jobId=ID");
            }
            let mut q = Vec::new();
            if let Some(v) = queue {
                q.push(format!("queue={}", mgmt_client::encode(&v)));
            }
            if let Some(v) = job_id {
                q.push(format!("jobId={}", mgmt_client::encode(&v)));
            }
            let port = mgmt_port(config.as_deref())?;
            let body = mgmt_client::post(port, &format!("/delete?{}", q.join("&")))?;
            println!("{}", body["data"]["result"].as_str().unwrap_or("done."));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Reload { config } => {
            let port = mgmt_port(config.as_deref())?;
            let body = mgmt_client::post(port, "/reload")?;
            println!(
                "{}",
                body["data"]["result"]
                    .as_str()
                    .unwrap_or("Configuration reloaded.")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

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

/// `pause queue|job NAME` and `resume queue|job NAME`.
fn pause_or_resume(pause: bool, what: &str, name: &str, config: Option<&Path>) -> Result<ExitCode> {
    let action = if pause { "pause" } else { "resume" };
    let path = match what {
        "queue" => format!("/{action}Queue?queue={}", mgmt_client::encode(name)),
        _ => format!("/{action}Job?jobId={}", mgmt_client::encode(name)),
    };
    let body = mgmt_client::post(mgmt_port(config)?, &path)?;
    println!("{}", body["data"]["result"].as_str().unwrap_or("done."));
    Ok(ExitCode::SUCCESS)
}

/// `suppression list|add|remove` through the management API's `/suppressions`; an API
/// error (unknown entry, bad address) becomes the command's error and exit status 1.
fn suppression(command: SuppressionCmd) -> Result<ExitCode> {
    match command {
        SuppressionCmd::List {
            subaccount,
            address,
            reason,
            limit,
            json,
            config,
        } => {
            let mut q = Vec::new();
            if let Some(v) = subaccount {
                q.push(format!("subaccount={v}"));
            }
            if let Some(v) = address {
                q.push(format!("address={}", mgmt_client::encode(&v)));
            }
            if let Some(v) = reason {
                q.push(format!("reason={}", mgmt_client::encode(&v)));
            }
            if let Some(v) = limit {
                q.push(format!("limit={v}"));
            }
            let path = if q.is_empty() {
                "/suppressions".to_string()
            } else {
                format!("/suppressions?{}", q.join("&"))
            };
            let body = mgmt_client::get(mgmt_port(config.as_deref())?, &path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", render_suppressions(&body));
            }
        }
        SuppressionCmd::Add {
            address,
            subaccount,
            description,
            config,
        } => {
            let body = mgmt_client::post_json(
                mgmt_port(config.as_deref())?,
                "/suppressions",
                &serde_json::json!({
                    "address": address,
                    "subaccount": subaccount,
                    "description": description,
                }),
            )?;
            if body["added"].as_bool() == Some(false) {
                println!("{address} was already suppressed for subaccount {subaccount}; entry refreshed.");
            } else {
                println!("{address} suppressed for subaccount {subaccount}.");
            }
        }
        SuppressionCmd::Remove {
            address,
            subaccount,
            config,
        } => {
            mgmt_client::delete(
                mgmt_port(config.as_deref())?,
                &format!(
                    "/suppressions?address={}&subaccount={subaccount}",
                    mgmt_client::encode(&address)
                ),
            )?;
            println!("{address} is no longer suppressed for subaccount {subaccount}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The `suppression list` table: columns sized to their content, descriptions on one line.
fn render_suppressions(body: &Value) -> String {
    let rows: Vec<[String; 5]> = body["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
            [
                text("address"),
                r["subaccount"].to_string(),
                text("reason"),
                text("created"),
                text("description")
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect(),
            ]
        })
        .collect();
    let header = ["address", "subaccount", "reason", "created", "description"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (wa, ws, wr, wc) = (width(0), width(1), width(2), width(3));
    let mut out = String::new();
    for r in std::iter::once(header.map(String::from)).chain(rows.iter().cloned()) {
        let line = format!(
            "{:<wa$} {:>ws$} {:<wr$} {:<wc$} {}",
            r[0], r[1], r[2], r[3], r[4]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!(
        "{} of {} suppressed address(es).\n",
        rows.len(),
        body["total"].as_u64().unwrap_or(rows.len() as u64)
    ));
    out
}

/// Text tables in the spirit of `pmta show …`.
/// A count from the API, as a number (a JSON value's `Display` ignores column widths).
fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// How many rows matched: `data.total` when the list was cut (`pmta … --maxitems`), else
/// the rows shown.
fn total(data: &Value, rows: &[Value]) -> u64 {
    data["total"].as_u64().unwrap_or(rows.len() as u64)
}

/// `show queues`' `st` column: `P` paused, `B` backoff mode, `R` retry mode (combined).
fn queue_state(q: &Value) -> String {
    let mut st = String::new();
    if q["paused"].as_bool() == Some(true) {
        st.push('P');
    }
    if q["mode"] == "backoff" {
        st.push('B');
    }
    if q["retry"].as_bool() == Some(true) {
        st.push('R');
    }
    st
}

pub(crate) fn render(what: &str, body: &Value) -> String {
    let mut out = String::new();
    let data = &body["data"];
    match what {
        "status" => {
            out.push_str(&format!(
                "{} {} on {}: {}, up {}s\n",
                data["product"]["name"].as_str().unwrap_or("petrel"),
                data["product"]["version"].as_str().unwrap_or(""),
                data["hostName"].as_str().unwrap_or("?"),
                data["status"].as_str().unwrap_or("?"),
                data["uptimeSeconds"]
            ));
            if let Some(sections) = data["counters"].as_object() {
                for (name, values) in sections {
                    let pairs: Vec<String> = values
                        .as_object()
                        .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
                        .unwrap_or_default();
                    out.push_str(&format!("{name:<12} {}\n", pairs.join(" ")));
                }
            }
        }
        "queues" => {
            let rows = data["queues"].as_array().cloned().unwrap_or_default();
            out.push_str(&format!(
                "{:<48} {:>8} {:>8} {:>10} {:>5}\n",
                "queue", "#rcpt", "#msg", "kbytes", "st"
            ));
            for q in &rows {
                out.push_str(&format!(
                    "{:<48} {:>8} {:>8} {:>10} {:>5}\n",
                    q["queue"].as_str().unwrap_or(""),
                    num(&q["rcp"]),
                    num(&q["msg"]),
                    num(&q["kb"]),
                    queue_state(q)
                ));
            }
            out.push_str(&format!(
                "{} of {} queues.\n",
                rows.len(),
                total(data, &rows)
            ));
        }
        "domains" => {
            let rows = data["domains"].as_array().cloned().unwrap_or_default();
            out.push_str(&format!(
                "{:<40} {:>8} {:>8} {:>10}\n",
                "domain", "#rcpt", "#msg", "kbytes"
            ));
            for d in &rows {
                out.push_str(&format!(
                    "{:<40} {:>8} {:>8} {:>10}\n",
                    d["domain"].as_str().unwrap_or(""),
                    num(&d["rcp"]),
                    num(&d["msg"]),
                    num(&d["kb"])
                ));
            }
            out.push_str(&format!("{} domains shown.\n", rows.len()));
        }
        "jobs" => {
            let rows = data["jobs"].as_array().cloned().unwrap_or_default();
            out.push_str(&format!(
                "{:<40} {:>8} {:>7}\n",
                "job-id", "#rcpt", "paused"
            ));
            for j in &rows {
                out.push_str(&format!(
                    "{:<40} {:>8} {:>7}\n",
                    j["job"].as_str().unwrap_or(""),
                    num(&j["recipients"]),
                    if j["paused"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                ));
            }
            out.push_str(&format!("Total of {} job(s).\n", rows.len()));
        }
        "vmtas" => {
            let rows = data["vmtas"].as_array().cloned().unwrap_or_default();
            out.push_str(&format!(
                "{:<24} {:>8} {:>8} {:>6}\n",
                "name", "domains", "#rcpt", "conn"
            ));
            for v in &rows {
                out.push_str(&format!(
                    "{:<24} {:>8} {:>8} {:>6}\n",
                    v["name"].as_str().unwrap_or(""),
                    num(&v["domains"]),
                    num(&v["recipients"]),
                    num(&v["connections"])
                ));
            }
            out.push_str(&format!(
                "{} of {} virtual MTAs.\n",
                rows.len(),
                total(data, &rows)
            ));
        }
        "messages" => {
            let rows = data["messages"].as_array().cloned().unwrap_or_default();
            for m in &rows {
                out.push_str(&format!(
                    "{} from=<{}> vmta={} job={} rcpts={}\n",
                    m["id"].as_str().unwrap_or(""),
                    m["orig"].as_str().unwrap_or(""),
                    m["vmta"].as_str().unwrap_or(""),
                    m["jobId"].as_str().unwrap_or("-"),
                    m["rcpts"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(","))
                        .unwrap_or_default()
                ));
            }
            out.push_str(&format!("{} message(s).\n", rows.len()));
        }
        _ => {
            out.push_str(&serde_json::to_string_pretty(data).unwrap_or_default());
            out.push('\n');
        }
    }
    out
}
