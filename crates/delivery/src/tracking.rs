//! Engagement tracking at delivery: which messages get their HTML rewritten, and the
//! rewrite itself.
//!
//! Tracking links name the recipient, so a tracked message is rewritten once per recipient
//! and sent in a transaction of its own, right before DKIM signing (the signature must cover
//! the body the recipient gets). Rewriting happens at delivery rather than at reception so
//! the spool keeps one copy of each message however many recipients it has, and so a
//! message for which tracking is switched off while it waits is sent untouched.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use petrel_config::Config;
use petrel_record::{subaccount, tracking, Scope};
use petrel_spool::{Envelope, MessageId};
use petrel_tracking::{rewrite_message, RewriteOptions, TokenKeys};
use petrel_verp::recipient_message_id;
use tracing::warn;

/// How to rewrite one message for its recipients.
pub(crate) struct Plan {
    keys: Arc<TokenKeys>,
    options: RewriteOptions,
    id: MessageId,
}

impl Plan {
    /// The plan for message `id`, or `None` when tracking does not apply to it or no keys
    /// are loaded.
    pub fn new(
        config: &Config,
        keys: Option<Arc<TokenKeys>>,
        id: MessageId,
        env: &Envelope,
        scope: &Scope<'_>,
        now: SystemTime,
    ) -> Option<Plan> {
        let keys = keys?;
        let t = tracking(config, env, scope)?;
        let expiry = config.signals.as_ref()?.tracking.link_expiry;
        let now_unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some(Plan {
            keys,
            options: RewriteOptions {
                base_url: t.base_url,
                open_tracking: t.flags.open,
                click_tracking: t.flags.click,
                initial_open: t.flags.initial_open,
                expires_unix: now_unix + expiry.as_secs(),
                subaccount: subaccount(config, env, scope),
            },
            id,
        })
    }

    /// The message as recipient `rcpt_index` gets it, or `None` when there is nothing to
    /// track (no HTML part, or a part petrel cannot rewrite). A rewriting error is logged
    /// and the message goes out untracked: tracking must never stop delivery.
    pub fn rewrite(&self, raw: &[u8], rcpt_index: u32, recipient: &str) -> Option<Vec<u8>> {
        let message_id = recipient_message_id(self.id.0, rcpt_index);
        match rewrite_message(raw, &message_id, recipient, &self.keys, &self.options) {
            Ok(r) if r.html_parts_rewritten > 0 => Some(r.message),
            Ok(_) => None,
            Err(e) => {
                warn!(message = %self.id, "tracking: sending without tracking: {e}");
                None
            }
        }
    }
}
