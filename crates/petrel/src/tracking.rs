//! Engagement tracking in the daemon: the keys that sign tracking links and petrel's own
//! tracking host (`tracking-listener`).
//!
//! The keys are loaded once at start. With no `tracking-key` in the configuration they come
//! from `tracking-key-file`, which is created with a random secret on first use, so
//! `engagement-tracking sparkpost` works without the operator inventing a secret and links
//! keep working across restarts.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use petrel_config::{Config, EngagementTracking};
use petrel_events::EventSpool;
use petrel_suppression::SuppressionList;
use petrel_tracking::TokenKeys;
use petrel_tracking_host::{HostConfig, TrackingHost};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::keys;

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
    let pairs = keys::configured_or_file(&sig.tracking.keys, &sig.tracking.key_file)?;
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

/// petrel's running tracking host.
pub struct Host {
    /// Where it listens (one entry per `tracking-listener`).
    pub addrs: Vec<SocketAddr>,
    /// The host itself, for its counters.
    pub host: Arc<TrackingHost>,
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
/// on. Hits become events in `events`; a person following an unsubscribe link joins
/// `suppression` (the list the delivery engine checks).
pub async fn start_host(
    config: &Config,
    keys: Option<&Arc<TokenKeys>>,
    events: Option<&Arc<EventSpool>>,
    suppression: Option<&Arc<SuppressionList>>,
    shared_fds: &petrel_http_serve::SharedBudget,
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
            customer_id: sig.customer_id,
            trusted_proxies: sig.tracking.trusted_proxies.clone(),
            header_read_timeout: config.http_header_timeout,
            max_connections: sig.tracking.limits.max_connections as usize,
            max_connections_per_ip: sig.tracking.limits.max_connections_per_ip as usize,
            shared_descriptors: Some(shared_fds.clone()),
            ..HostConfig::new((**keys).clone())
        },
        events.clone(),
        suppression.cloned(),
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
    Ok(Some(Host {
        addrs,
        host,
        stop,
        tasks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            unsubscribe: None,
            expires_unix: u64::MAX / 2,
        };
        let token = old.sign(&data);
        assert_eq!(keys.verify(&token, 0).unwrap(), data);
    }
}
