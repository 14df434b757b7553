//! DKIM signing at delivery: the key for a message's signing domain (per vmta, then
//! global `domain-key`s), loaded once and cached until the configuration is reloaded.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use petrel_config::{Config, KeyDomain};
use petrel_dkim::{DkimKey, SignOptions};
use tracing::warn;

use crate::engine::Inner;

/// Parsed DKIM keys by (key file, signing domain); `None` remembers a key that failed to
/// load so the error is logged once, not per message.
pub(crate) type KeyCache = HashMap<(PathBuf, String), Option<Arc<DkimKey>>>;

impl Inner {
    fn dkim_key_for(
        &self,
        config: &Config,
        vmta: &str,
        identity_domain: &str,
    ) -> Option<Arc<DkimKey>> {
        let vmta_keys = config
            .virtual_mta(vmta)
            .map(|v| v.domain_keys.clone())
            .unwrap_or_default();
        for k in vmta_keys.iter().chain(config.domain_keys.iter()) {
            // A key's domain must equal, or be a parent of, the identity's domain; `*` signs
            // for whatever domain the identity has (pmta-spec §2.1 `domain-key`).
            let signing_domain = match &k.domain {
                KeyDomain::Any => identity_domain.to_string(),
                KeyDomain::Name(d)
                    if identity_domain == d || identity_domain.ends_with(&format!(".{d}")) =>
                {
                    d.clone()
                }
                KeyDomain::Name(_) => continue,
            };
            let mut cached = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            // After a reload key files are read again: they may have been rotated.
            let generation = self.config.generation();
            if cached.0 != generation {
                *cached = (generation, KeyCache::new());
            }
            let entry = cached
                .1
                .entry((k.key_file.clone(), signing_domain.clone()))
                .or_insert_with(|| {
                    match DkimKey::load(&k.selector, &signing_domain, &k.key_file) {
                        Ok(key) => Some(Arc::new(key)),
                        Err(e) => {
                            warn!("dkim: {e}");
                            None
                        }
                    }
                });
            if let Some(key) = entry.clone() {
                return Some(key);
            }
        }
        None
    }
}

pub(crate) fn sign(inner: &Inner, vmta: &str, body: Vec<u8>, now: SystemTime) -> Vec<u8> {
    let config = inner.config();
    let Some(domain) = petrel_dkim::signing_identity_domain(&body) else {
        return body;
    };
    let Some(key) = inner.dkim_key_for(&config, vmta, &domain) else {
        return body;
    };
    match petrel_dkim::sign(&body, &key, &SignOptions::default(), now) {
        Ok(header) => {
            let mut out = Vec::with_capacity(header.len() + 2 + body.len());
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        }
        Err(e) => {
            warn!("dkim signing failed, sending unsigned: {e}");
            body
        }
    }
}
