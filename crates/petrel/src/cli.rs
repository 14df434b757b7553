//! Command-line surface: PowerMTA's verbs where they exist (`show queues`, `reload`, …).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use petrel_config::Config;
use petrel_mgmt_api::{NewSuppression, SuppressionQuery};

use crate::{admin, daemon};

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
                admin::compare_with_running(&file);
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
        Cmd::Show { what, json, config } => admin::show(&what, json, config.as_deref()),
        Cmd::List {
            job_id,
            maxitems,
            json,
            config,
        } => admin::list(job_id, maxitems, json, config.as_deref()),
        Cmd::Pause { what, name, config } => {
            admin::pause_or_resume(true, &what, &name, config.as_deref())
        }
        Cmd::Resume { what, name, config } => {
            admin::pause_or_resume(false, &what, &name, config.as_deref())
        }
        Cmd::Set {
            what: _,
            mode,
            queue,
            config,
        } => admin::set_queue_mode(mode, queue, config.as_deref()),
        Cmd::Schedule { queue, config } => admin::schedule(queue, config.as_deref()),
        Cmd::Delete {
            queue,
            job_id,
            config,
        } => admin::delete(queue, job_id, config.as_deref()),
        Cmd::Reload { config } => admin::reload(config.as_deref()),
    }
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
            let query = SuppressionQuery {
                subaccount: subaccount.map(|v| v.to_string()),
                address,
                reason,
                limit: limit.map(|v| v.to_string()),
            };
            admin::suppression_list(query, json, config.as_deref())
        }
        SuppressionCmd::Add {
            address,
            subaccount,
            description,
            config,
        } => {
            let entry = NewSuppression {
                address,
                subaccount,
                description,
            };
            admin::suppression_add(entry, config.as_deref())
        }
        SuppressionCmd::Remove {
            address,
            subaccount,
            config,
        } => admin::suppression_remove(address, subaccount, config.as_deref()),
    }
}
