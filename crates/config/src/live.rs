//! The running configuration of a daemon.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Config;

/// The configuration a daemon runs with: one handle, owned by the daemon and cloned into
/// every part (listener, delivery engine, management API, returned-mail processor), so a
/// reload replaces it for all of them at once. Each part reads the current configuration
/// when it starts a unit of work (a session, a connection, a message) and keeps using that
/// one until the unit ends.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    current: Arc<RwLock<Arc<Config>>>,
    generation: Arc<AtomicU64>,
}

impl LiveConfig {
    /// A handle starting with `config`.
    pub fn new(config: Arc<Config>) -> LiveConfig {
        LiveConfig {
            current: Arc::new(RwLock::new(config)),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The configuration now.
    pub fn get(&self) -> Arc<Config> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the configuration for every part; returns the one it replaced.
    pub fn replace(&self, config: Arc<Config>) -> Arc<Config> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *current, config);
        self.generation.fetch_add(1, Ordering::Release);
        old
    }

    /// How many times the configuration was replaced: a part that caches something derived
    /// from it (TLS settings, DKIM keys) rebuilds the cache when this changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_a_replacement() {
        let a = |name: &str| {
            Arc::new(
                crate::parse_str(
                    &format!("host-name {name}\n"),
                    std::path::Path::new("/x.conf"),
                )
                .unwrap()
                .config,
            )
        };
        let live = LiveConfig::new(a("one.test"));
        let part = live.clone();
        assert_eq!(part.generation(), 0);
        let old = live.replace(a("two.test"));
        assert_eq!(old.primary_host_name(), "one.test");
        assert_eq!(part.get().primary_host_name(), "two.test");
        assert_eq!(part.generation(), 1);
    }
}
