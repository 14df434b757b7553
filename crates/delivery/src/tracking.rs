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

use petrel_config::{Config, EngagementTracking};
use petrel_spool::{Envelope, MessageId};
use petrel_tracking::{rewrite_message, RewriteOptions, TokenKeys};
use tracing::warn;

use petrel_verp::recipient_message_id;

use crate::signals::Scope;

/// The tracking flags a message's events carry (SparkPost's `open_tracking`,
/// `click_tracking`, `initial_pixel`), so reports know which messages could be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags {
    pub open: bool,
    pub click: bool,
    pub initial_open: bool,
}

/// Whether engagement tracking applies to a message sent from `scope`, and with which
/// settings: `engagement-tracking sparkpost`, a tracking base URL, and Signals events on for
/// the message (tracking events of a message that produces no other events could not be
/// attributed). petrel's own DSNs are never tracked.
///
/// With `engagement-tracking true` petrel does not rewrite, but the operator declares that
/// opens and clicks reach Signals from elsewhere, so the flags say tracking is on.
pub(crate) fn flags(config: &Config, env: &Envelope, scope: &Scope<'_>) -> Option<Flags> {
    let declared = config
        .signals
        .as_ref()
        .is_some_and(|s| s.engagement_tracking == EngagementTracking::Declared);
    if declared {
        return Some(Flags {
            open: true,
            click: true,
            initial_open: true,
        });
    }
    settings(config, env, scope).map(|(_, flags)| flags)
}

fn settings(config: &Config, env: &Envelope, scope: &Scope<'_>) -> Option<(String, Flags)> {
    let signals = config.signals.as_ref()?;
    if signals.engagement_tracking != EngagementTracking::Sparkpost || env.facts.generated {
        return None;
    }
    let t = &signals.tracking;
    if !(t.open || t.click) {
        return None;
    }
    let base = t.base_url(signals.tracking_domain.as_deref())?;
    config.signals_scope(scope.vmta, scope.pool, env.facts.sending_domain.as_deref())?;
    Some((
        base,
        Flags {
            open: t.open,
            click: t.click,
            initial_open: t.open && t.initial_open,
        },
    ))
}

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
        let (base_url, flags) = settings(config, env, scope)?;
        let expiry = config.signals.as_ref()?.tracking.link_expiry;
        let now_unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some(Plan {
            keys,
            options: RewriteOptions {
                base_url,
                open_tracking: flags.open,
                click_tracking: flags.click,
                initial_open: flags.initial_open,
                expires_unix: now_unix + expiry.as_secs(),
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
