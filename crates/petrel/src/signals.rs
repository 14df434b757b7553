//! The Signals side of the daemon: the event spool every stage writes to, the uploader that
//! ships it to `upload-url`, and petrel's own Signals service (`<signals-service>`), either
//! inside `petrel serve` or alone as `petrel signals serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use petrel_config::SignalsStoreKind;
use petrel_config::{Config, SignalsPrivacy};
use petrel_events::{EventSpool, Privacy, SpoolConfig, UploadCounters, Uploader, UploaderConfig};
use petrel_signals::{
    AnalyticsStore, ClickHouseSettings, ClickHouseStore, Permission, Retention, ServiceOptions,
    SignalsStore,
};
use petrel_signals_model::traps::TrapList;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Opens the event spool when `<signals>` is configured.
pub fn open_event_spool(config: &Config) -> Result<Option<Arc<EventSpool>>> {
    let Some(sig) = &config.signals else {
        return Ok(None);
    };
    let mut sc = SpoolConfig::new(&sig.event_dir);
    sc.max_file_age = sig.upload_interval;
    sc.privacy = match sig.privacy_policy {
        SignalsPrivacy::Retain => Privacy::Retain,
        SignalsPrivacy::Sha1 => Privacy::Sha1,
    };
    let spool = EventSpool::open(sc).with_context(|| {
        format!(
            "opening the Signals event directory {}",
            sig.event_dir.display()
        )
    })?;
    Ok(Some(Arc::new(spool)))
}

/// The running uploader task, a second uploader over the same directory for the last
/// attempt at shutdown, and the running one's counters.
pub struct UploaderTask {
    /// Used by [`drain`] once the task has stopped.
    pub last_attempt: Uploader,
    /// The upload loop.
    pub task: JoinHandle<()>,
    /// What the loop has done, for `/status` and `/metrics`.
    pub counters: Arc<UploadCounters>,
}

/// Starts the uploader when `<signals>` is configured with `upload true`. It stops when
/// `shutdown` turns true.
pub fn start_uploader(
    config: &Config,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<UploaderTask>> {
    let Some(sig) = &config.signals else {
        return Ok(None);
    };
    if !sig.upload {
        info!(
            "signals: upload off; events stay in {}",
            sig.event_dir.display()
        );
        return Ok(None);
    }
    let uc = uploader_config(config).expect("signals is configured");
    let uploader =
        Uploader::new(uc.clone()).with_context(|| format!("upload-url {}", sig.upload_url))?;
    info!(
        "signals: uploading events from {} to {}",
        sig.event_dir.display(),
        sig.upload_url
    );
    let running = Uploader::new(uc)?;
    let counters = running.counters();
    Ok(Some(UploaderTask {
        last_attempt: uploader,
        task: tokio::spawn(running.run(shutdown)),
        counters,
    }))
}

fn uploader_config(config: &Config) -> Option<UploaderConfig> {
    let sig = config.signals.as_ref()?;
    let mut uc = UploaderConfig::new(&sig.event_dir, &sig.upload_url, &sig.api_key);
    uc.log_verbose = sig.log_verbose;
    uc.min_free_space = sig.min_free_space;
    uc.poll_interval = sig.upload_interval;
    // Keep the first retries close together when the interval is short (tests, local
    // services); the ceiling still protects a remote service that is down.
    uc.backoff_initial = sig.upload_interval.min(Duration::from_secs(1));
    Some(uc)
}

/// A running Signals service.
pub struct Service {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server task.
    pub task: JoinHandle<()>,
    /// The retention task (`event-retention`, `metrics-retention`).
    pub retention: JoinHandle<()>,
}

/// Reads `spam-trap-file`, reporting bad lines as `file:line: why`.
fn load_traps(path: Option<&std::path::Path>) -> Result<TrapList> {
    let Some(path) = path else {
        return Ok(TrapList::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading spam-trap-file {}", path.display()))?;
    TrapList::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
            .collect();
        anyhow::anyhow!("spam-trap-file has errors:\n{}", lines.join("\n"))
    })
}

/// Opens the `<signals-service>` store (the SQLite file, or the ClickHouse server: its
/// database and tables are created when missing), registering the `<signals>` api-key
/// (when this configuration has both) so the daemon's own uploader and its operator can
/// use it.
pub fn open_store(config: &Config) -> Result<Option<Arc<dyn AnalyticsStore>>> {
    let Some(svc) = &config.signals_service else {
        return Ok(None);
    };
    let store: Arc<dyn AnalyticsStore> = match &svc.store {
        SignalsStoreKind::Sqlite => {
            if let Some(dir) = svc.database.parent() {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("creating the Signals database directory {}", dir.display())
                })?;
            }
            Arc::new(SignalsStore::open(&svc.database).with_context(|| {
                format!("opening the Signals database {}", svc.database.display())
            })?)
        }
        SignalsStoreKind::ClickHouse(ch) => {
            let settings = ClickHouseSettings {
                url: ch.url.clone(),
                database: ch.database.clone(),
                user: ch.user.clone(),
                password: ch.password.clone(),
                statement_log: None,
            };
            let store = ClickHouseStore::connect(&settings).with_context(|| {
                format!(
                    "opening the Signals store in ClickHouse ({}, database {}, user {}; \
                     <signals-service> at {}:{})",
                    ch.url,
                    ch.database,
                    ch.user,
                    svc.origin.file.display(),
                    svc.origin.line
                )
            })?;
            info!(
                "signals: store is ClickHouse {} at {}, database {}",
                store.server_version(),
                ch.url,
                ch.database
            );
            Arc::new(store)
        }
    };
    if let Some(sig) = &config.signals {
        store
            .ensure_api_key(
                &sig.api_key,
                "<signals> api-key",
                &[Permission::Ingest, Permission::Read],
            )
            .context("registering the <signals> api-key in the Signals store")?;
    }
    Ok(Some(store))
}

/// Binds and starts petrel's Signals service when `<signals-service>` is configured.
pub async fn start_service(
    config: &Config,
    shared_fds: &petrel_http_serve::SharedBudget,
) -> Result<Option<Service>> {
    let Some(svc) = &config.signals_service else {
        return Ok(None);
    };
    let traps = load_traps(svc.spam_trap_file.as_deref())?;
    let Some(store) = open_store(config)? else {
        return Ok(None);
    };
    let addr = svc.listener;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot bind the Signals service on {addr} (<signals-service> listener)")
    })?;
    let addr = listener.local_addr().unwrap_or(addr);
    let retention = petrel_signals::retention::spawn(
        store.clone(),
        Retention {
            events_secs: svc.event_retention.as_secs() as i64,
            metrics_secs: svc.metrics_retention.as_secs() as i64,
        },
        Duration::from_secs(3600),
    );
    // The pages (`/signals/…`) call the API router in-process; its own paths answer as before.
    let app = petrel_pages::with_pages(petrel_signals::router(store, ServiceOptions { traps }));
    let gate = petrel_http_serve::Gate::new(
        petrel_http_serve::Limits {
            max_connections: svc.limits.max_connections as usize,
            max_connections_per_ip: svc.limits.max_connections_per_ip as usize,
            header_read_timeout: config.http_header_timeout,
        },
        Some(shared_fds.clone()),
    );
    let task = tokio::spawn(async move {
        let serving = petrel_http_serve::serve(
            "Signals service",
            listener,
            None,
            gate,
            app,
            std::future::pending(),
        );
        if let Err(e) = serving.await {
            warn!("signals service stopped: {e}");
        }
    });
    Ok(Some(Service {
        addr,
        task,
        retention,
    }))
}

/// `petrel signals serve`: only the Signals service of the configuration.
pub fn serve_alone(config: &Config) -> Result<()> {
    if config.signals_service.is_none() {
        bail!(
            "the configuration has no <signals-service> block (it needs `listener ADDRESS:PORT`)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let limit = crate::descriptors::raise_limit();
        let shared = crate::descriptors::shared_budget(config, limit);
        let svc = start_service(config, &shared)
            .await?
            .expect("checked above");
        let line = format!("petrel signals service ready on {}", svc.addr);
        info!("{line}");
        eprintln!("{line}");
        wait_for_stop().await;
        svc.task.abort();
        svc.retention.abort();
        Ok(())
    })
}

async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `petrel signals create-key`: a new API key in the `<signals-service>` database, printed
/// once (only its hash is stored).
pub fn create_key(config: &Config, label: &str, permissions: &str) -> Result<String> {
    let perms = parse_permissions(permissions)?;
    let Some(store) = open_store(config)? else {
        bail!("the configuration has no <signals-service> block");
    };
    petrel_signals::create_api_key(&store, label, &perms).context("creating the API key")
}

fn parse_permissions(list: &str) -> Result<Vec<Permission>> {
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match Permission::parse(p) {
            Some(p) => out.push(p),
            None => bail!("unknown permission `{p}` (use ingest, read or ingest,read)"),
        }
    }
    if out.is_empty() {
        bail!("give at least one permission: ingest, read or ingest,read");
    }
    Ok(out)
}

/// Flushes what is left at shutdown: closes the event file and, when uploading, makes one
/// last bounded attempt to send it. Whatever is not sent stays on disk for the next start.
pub async fn drain(events: Option<&Arc<EventSpool>>, uploader: Option<&Uploader>) {
    let Some(events) = events else { return };
    if let Err(e) = events.close() {
        warn!("signals: closing the event spool: {e}");
    }
    if let Some(up) = uploader {
        match tokio::time::timeout(Duration::from_secs(5), up.run_once()).await {
            Ok(outcome) => info!("signals: final upload: {outcome:?}"),
            Err(_) => warn!("signals: final upload timed out; events kept on disk"),
        }
    }
}

/// Where events go, for the ready line.
pub fn describe(config: &Config, service: Option<&Service>) -> String {
    let mut parts = Vec::new();
    if let Some(sig) = &config.signals {
        if sig.upload {
            parts.push(format!("events to {}", sig.upload_url));
        } else {
            parts.push(format!("events kept in {}", sig.event_dir.display()));
        }
    }
    if let Some(s) = service {
        parts.push(format!("signals service on {}", s.addr));
    }
    if parts.is_empty() {
        "signals off".to_string()
    } else {
        parts.join("; ")
    }
}
