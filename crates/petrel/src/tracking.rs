//! Engagement tracking in the daemon: the keys that sign tracking links and petrel's own
//! tracking host (`tracking-listener`).
//!
//! The keys are loaded once at start. With no `tracking-key` in the configuration they come
//! from `tracking-key-file`, which is created with a random secret on first use, so
//! `engagement-tracking sparkpost` works without the operator inventing a secret and links
//! keep working across restarts.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use petrel_config::{Config, EngagementTracking};
use petrel_events::EventSpool;
use petrel_tracking::TokenKeys;
use petrel_tracking_host::{HostConfig, TrackingHost};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The keys that sign tracking links, when `engagement-tracking sparkpost` is on and links
/// have somewhere to point.
pub fn load_keys(config: &Config) -> Result<Option<Arc<TokenKeys>>> {
    let Some(sig) = &config.signals else {
        return Ok(None);
    };
    if sig.engagement_tracking != EngagementTracking::Sparkpost
        || sig
            .tracking
            .base_url(sig.tracking_domain.as_deref())
            .is_none()
    {
        return Ok(None);
    }
    let pairs = if sig.tracking.keys.is_empty() {
        read_or_create_key_file(&sig.tracking.key_file)?
    } else {
        sig.tracking.keys.clone()
    };
    Ok(Some(Arc::new(keys_from(&pairs)?)))
}

/// The last pair signs; every pair verifies (rotation: add a new key at the end, remove
/// the old one once its links have expired).
fn keys_from(pairs: &[(u8, String)]) -> Result<TokenKeys> {
    let Some((last_id, last_secret)) = pairs.last() else {
        bail!("no tracking key");
    };
    let mut keys = TokenKeys::new(*last_id, last_secret.as_bytes())
        .with_context(|| format!("tracking key {last_id}"))?;
    for (id, secret) in &pairs[..pairs.len() - 1] {
        keys.add_key(*id, secret.as_bytes())
            .with_context(|| format!("tracking key {id}"))?;
    }
    Ok(keys)
}

/// Reads `ID SECRET` lines (the `tracking-key` syntax; `#` comments) from the key file, or
/// creates it, readable by petrel's user only, with one random 256-bit key.
fn read_or_create_key_file(path: &Path) -> Result<Vec<(u8, String)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key_file(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            SystemRandom::new()
                .fill(&mut secret)
                .map_err(|_| anyhow::anyhow!("no random numbers for the tracking key"))?;
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut f = create_private(path)
                .with_context(|| format!("creating tracking key file {}", path.display()))?;
            writeln!(
                f,
                "# petrel tracking keys: ID SECRET per line; the last one signs, all verify.\n1 {hex}"
            )?;
            f.sync_all()?;
            info!("tracking: created key file {}", path.display());
            Ok(vec![(1, hex)])
        }
        Err(e) => Err(e).with_context(|| format!("reading tracking key file {}", path.display())),
    }
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn parse_key_file(text: &str) -> Result<Vec<(u8, String)>> {
    let mut out: Vec<(u8, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
            bail!("line {}: expected `ID SECRET`", n + 1);
        };
        let id: u8 = id
            .parse()
            .with_context(|| format!("line {}: key id `{id}` is not 0-255", n + 1))?;
        if secret.len() < 16 {
            bail!("line {}: the secret must be at least 16 characters", n + 1);
        }
        if out.iter().any(|(k, _)| *k == id) {
            bail!("line {}: key id {id} is given twice", n + 1);
        }
        out.push((id, secret.to_string()));
    }
    if out.is_empty() {
        bail!("no keys");
    }
    Ok(out)
}

/// petrel's running tracking host.
pub struct Host {
    /// Where it listens (one entry per `tracking-listener`).
    pub addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Host {
    /// Stops accepting and waits (bounded) for requests in flight, so their events are
    /// emitted before the event spool closes.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
    }
}

/// Binds the `tracking-listener`s and starts the tracking host when engagement tracking is
/// on. Hits become events in `events`.
pub async fn start_host(
    config: &Config,
    keys: Option<&Arc<TokenKeys>>,
    events: Option<&Arc<EventSpool>>,
) -> Result<Option<Host>> {
    let (Some(sig), Some(keys), Some(events)) = (&config.signals, keys, events) else {
        return Ok(None);
    };
    if sig.tracking.listeners.is_empty() {
        return Ok(None);
    }
    let tls = match &sig.tracking.certificate {
        Some(c) => Some(
            petrel_listener::server_config(&c.path, true, true)
                .context("loading tracking-tls-certificate")?,
        ),
        None => None,
    };
    let host = Arc::new(TrackingHost::new(
        HostConfig {
            keys: (**keys).clone(),
            customer_id: sig.customer_id,
            trusted_proxies: sig.tracking.trusted_proxies.clone(),
        },
        events.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    let mut addrs = Vec::new();
    let mut tasks = Vec::new();
    for addr in &sig.tracking.listeners {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot bind the tracking host on {addr} (tracking-listener)")
        })?;
        addrs.push(listener.local_addr().unwrap_or(*addr));
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let (host, tls) = (host.clone(), tls.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = petrel_tracking_host::serve(listener, tls, host, shutdown).await {
                warn!("tracking host stopped: {e}");
            }
        }));
    }
    Ok(Some(Host { addrs, stop, tasks }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/tracking.key");
        let first = read_or_create_key_file(&path).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_or_create_key_file(&path).unwrap(), first);
    }

    #[test]
    fn last_key_signs_and_all_verify() {
        let pairs = vec![
            (1u8, "old-secret-0123456789".to_string()),
            (2u8, "new-secret-0123456789".to_string()),
        ];
        let keys = keys_from(&pairs).unwrap();
        assert_eq!(keys.current_id(), 2);
        let old = keys_from(&pairs[..1]).unwrap();
        let data = petrel_tracking::TokenData {
            message_id: "0123456789abcdef0000".into(),
            recipient: "a@b.example".into(),
            action: petrel_tracking::Action::Open,
            url: None,
            link_name: None,
            expires_unix: u64::MAX / 2,
        };
        let token = old.sign(&data);
        assert_eq!(keys.verify(&token, 0).unwrap(), data);
    }

    #[test]
    fn bad_key_files_are_refused_with_the_line() {
        assert!(parse_key_file("# nothing\n").is_err());
        let e = parse_key_file("1 short\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_key_file("1 aaaaaaaaaaaaaaaaaaaa\n1 bbbbbbbbbbbbbbbbbbbb\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
    }
}
