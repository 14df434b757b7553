//! `petrel serve`: opens the spool, binds the listeners and the management API, and runs
//! until SIGTERM or SIGINT. SIGHUP (or `petrel reload`) re-reads the configuration.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use petrel_accounting::Accounting;
use petrel_config::{Config, LiveConfig};
use petrel_delivery::{Engine, Parts};
use petrel_listener::{Context, Hooks};
use petrel_mgmt::{AccessLevel, AccessRule, Inbound, InboundSource, Mgmt, Reloader};
use petrel_mgmt_api::ReloadResult;
use petrel_record::{AccountingSink, Recorder, SignalsSink, Sink};
use petrel_spool::{Spool, SpoolOptions};
use tracing::{info, warn};

use crate::cli::load_config;
use crate::metrics;
use crate::returns;
use crate::signals;
use crate::tracking;

pub fn serve(config_path: Option<&Path>) -> Result<()> {
    let (config, warnings, file) = load_config(config_path)?;
    init_logging(config.log_file.as_deref())?;
    for w in &warnings {
        warn!("config: {w}");
    }
    let spool_dir = config.spool_dir();
    let min_free = config.spool_min_free_space();
    let (spool, report) = Spool::open(
        spool_dir,
        SpoolOptions {
            min_free_space: min_free,
            ..SpoolOptions::default()
        },
    )
    .with_context(|| format!("opening spool {}", spool_dir.display()))?;
    info!("spool {}: {report}", spool_dir.display());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(Arc::new(config), spool, file))
}

async fn run(
    config: Arc<petrel_config::Config>,
    spool: Spool,
    file: Option<PathBuf>,
) -> Result<()> {
    petrel_listener::check_tls(&config).context("loading the TLS certificate")?;
    // The one configuration handle every part reads; `reload` replaces it.
    let live = LiveConfig::new(config.clone());
    let accounting = if config.acct_files.is_empty() {
        None
    } else {
        Some(Arc::new(
            Accounting::from_config(&config.acct_files).context("opening the accounting files")?,
        ))
    };
    let events = signals::open_event_spool(&config)?;
    // Always opened (cheap): the management API serves it, and the engine and the
    // bounce/FBL processors check and fill it.
    let suppression: Option<Arc<petrel_suppression::SuppressionList>> = {
        let path = suppression_path(&config);
        let list = petrel_suppression::SuppressionList::open(&path)
            .with_context(|| format!("opening the suppression list {}", path.display()))?;
        info!(
            "suppression list {}: {} entries",
            path.display(),
            list.len()
        );
        Some(Arc::new(list))
    };
    let recorder = recorder(accounting.as_ref(), events.as_ref());
    let return_path_keys = returns::load_keys(&config)?;
    let tracking_keys = tracking::load_keys(&config)?;
    // Built with every part before it queues the mail recovered from the spool, so that mail
    // is suppressed, VERP-signed and tracked like any other.
    let engine = Engine::start(Parts {
        recorder: recorder.clone(),
        suppression: suppression.clone(),
        return_path_keys: return_path_keys.clone(),
        tracking_keys: tracking_keys.clone(),
        ..Parts::new(spool.clone(), live.clone())
    })
    .context("starting the delivery engine")?;
    let returns = returns::processor(&config, return_path_keys, recorder, suppression.clone());
    let ctx = Context::new(
        live.clone(),
        spool.clone(),
        Hooks {
            // Every durable commit is recorded (r rows, reception events) and queued.
            on_commit: Some({
                let engine = engine.clone();
                Arc::new(move |id| engine.received(id))
            }),
            on_returned: returns
                .as_ref()
                .map(|p| returns::hook(p.clone(), live.clone())),
        },
    )
    .context("loading the TLS certificate")?;
    // A person following an unsubscribe link joins the list the engine checks.
    let tracking_host = tracking::start_host(
        &config,
        tracking_keys.as_ref(),
        events.as_ref(),
        suppression.as_ref(),
    )
    .await?;
    let service = signals::start_service(&config).await?;
    let (stop_uploads, uploads_stopped) = tokio::sync::watch::channel(false);
    let uploader = signals::start_uploader(&config, uploads_stopped)?;
    let listeners = petrel_listener::bind_all(&config).await?;
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.listener.local_addr().ok())
        .map(|a| a.to_string())
        .collect();

    let reloader: Option<Reloader> = file.clone().map(|path| {
        let (live, started) = (live.clone(), config.clone());
        let f: Reloader = Arc::new(move |apply| reload(&live, &started, &path, apply));
        f
    });
    let mut mgmt_addr = None;
    if config.http_mgmt_port != 0 {
        let rules = access_rules(&config);
        let open_beyond_loopback = rules
            .iter()
            .any(|r| !r.network.is_loopback() && r.level > AccessLevel::None);
        let ip = if open_beyond_loopback {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        let addr: SocketAddr = format!("{ip}:{}", config.http_mgmt_port).parse()?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot bind the management API on {addr} (http-mgmt-port)")
        })?;
        mgmt_addr = Some(addr);
        let inbound: InboundSource = {
            let ctx = ctx.clone();
            Arc::new(move || {
                use std::sync::atomic::Ordering::Relaxed;
                let s = &ctx.stats;
                Inbound {
                    connections: s.connections.load(Relaxed),
                    messages: s.messages.load(Relaxed),
                    recipients: s.recipients.load(Relaxed),
                    rejections: s.rejections.load(Relaxed),
                }
            })
        };
        let mut mgmt = Mgmt::new(
            live.clone(),
            spool.clone(),
            Some(engine.clone()),
            rules,
            reloader.clone(),
        )
        .with_inbound(inbound);
        if let Some(list) = &suppression {
            mgmt = mgmt.with_suppression(list.clone());
        }
        mgmt = metrics::register(
            mgmt,
            metrics::Parts {
                accounting: accounting.as_ref(),
                events: events.as_ref(),
                uploader: uploader.as_ref().map(|u| &u.counters),
                tracking: tracking_host.as_ref().map(|h| &h.host),
                returns: returns.as_ref(),
            },
        );
        tokio::spawn(async move {
            if let Err(e) = mgmt.serve(listener).await {
                warn!("management API stopped: {e}");
            }
        });
    }
    let tracking_line = match &tracking_host {
        Some(h) => {
            let a: Vec<String> = h.addrs.iter().map(|a| a.to_string()).collect();
            format!("; tracking host on {}", a.join(", "))
        }
        None => String::new(),
    };
    let line = format!(
        "petrel ready: smtp on {}; management API on {}; {}{tracking_line}",
        addrs.join(", "),
        mgmt_addr.map_or("(off)".to_string(), |a| a.to_string()),
        signals::describe(&config, service.as_ref())
    );
    info!("{line}");
    eprintln!("{line}");

    let serve = tokio::spawn(petrel_listener::serve(ctx.clone(), listeners));
    wait_for_shutdown(&live, &config, file.as_deref()).await;
    serve.abort();
    info!("petrel stopping");
    // Close the spool before the recorders: an outcome that arrives later can no longer be
    // marked done, so it is attempted again at the next start and recorded then. Closing the
    // recorders first would let a delivery be marked done with its event or row lost.
    spool.shutdown();
    let _ = stop_uploads.send(true);
    let uploader = match uploader {
        Some(up) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), up.task).await;
            Some(up.last_attempt)
        }
        None => None,
    };
    // Hits in flight still emit their events before the event spool closes.
    if let Some(h) = tracking_host {
        h.stop().await;
    }
    signals::drain(events.as_ref(), uploader.as_ref()).await;
    if let Some(s) = service {
        s.task.abort();
        s.retention.abort();
    }
    if let Some(acct) = &accounting {
        if let Err(e) = acct.shutdown() {
            warn!("accounting: {e}");
        }
    }
    Ok(())
}

/// The one recorder every outcome goes through: accounting rows when `<acct-file>`s are
/// configured, Signals events when `<signals>` is, counters always.
fn recorder(
    accounting: Option<&Arc<Accounting>>,
    events: Option<&Arc<petrel_events::EventSpool>>,
) -> Recorder {
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    if let Some(a) = accounting {
        sinks.push(Arc::new(AccountingSink::new(a.clone())));
    }
    if let Some(e) = events {
        sinks.push(Arc::new(SignalsSink::new(e.clone())));
    }
    Recorder::new(sinks)
}

/// Re-reads the configuration file and (with `apply`) gives it to every part; on any error
/// the old configuration stays. Settings that differ from those the daemon `started` with
/// and that only a restart can apply are named (again at every reload until a restart).
fn reload(
    live: &LiveConfig,
    started: &Config,
    path: &Path,
    apply: bool,
) -> Result<ReloadResult, String> {
    let failed = |e: String| {
        if apply {
            format!("reload failed, old configuration kept:\n{e}")
        } else {
            format!("the configuration cannot be reloaded:\n{e}")
        }
    };
    let loaded = petrel_config::load(path).map_err(|e| failed(e.to_string()))?;
    let config = Arc::new(loaded.config);
    petrel_listener::check_tls(&config).map_err(|e| failed(e.to_string()))?;
    let restart_needed = petrel_config::restart_needed(started, &config);
    let file = Some(path.display().to_string());
    if !apply {
        return Ok(ReloadResult {
            result: "The configuration can be reloaded.".into(),
            file,
            restart_needed,
        });
    }
    for w in &loaded.warnings {
        warn!("config: {w}");
    }
    live.replace(config);
    info!("configuration reloaded from {}", path.display());
    if !restart_needed.is_empty() {
        warn!(
            "config: these changes take effect only after a restart: {}",
            restart_needed.join(", ")
        );
    }
    Ok(ReloadResult {
        result: "Configuration reloaded.".into(),
        file,
        restart_needed,
    })
}

async fn wait_for_shutdown(live: &LiveConfig, started: &Config, file: Option<&Path>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                if let Some(path) = file {
                    match reload(live, started, path, true) {
                        Ok(r) => info!("{}", r.result),
                        Err(e) => warn!("{e}"),
                    }
                }
            }
        }
    }
}

/// Where the suppression list lives: beside the spool (`var/suppression.db` by default)
/// until the configuration has a `suppression-database` directive.
/// `suppression-database`, else `suppression.db` beside the spool directory.
fn suppression_path(config: &petrel_config::Config) -> PathBuf {
    if let Some(p) = &config.suppression_database {
        return p.clone();
    }
    config
        .spool_dir()
        .parent()
        .unwrap_or(Path::new("."))
        .join("suppression.db")
}

fn access_rules(config: &petrel_config::Config) -> Vec<AccessRule> {
    config
        .http_access
        .iter()
        .map(|a| AccessRule {
            network: a.cidr.network(),
            prefix: a.cidr.prefix_len(),
            level: match a.level {
                petrel_config::HttpAccessLevel::None => AccessLevel::None,
                petrel_config::HttpAccessLevel::Monitor => AccessLevel::Monitor,
                petrel_config::HttpAccessLevel::Operator => AccessLevel::Operator,
                petrel_config::HttpAccessLevel::Admin => AccessLevel::Admin,
            },
        })
        .collect()
}

pub(crate) fn init_logging(log_file: Option<&Path>) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PETREL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match log_file {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating log directory {}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log-file {}", path.display()))?;
            builder.with_writer(Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
