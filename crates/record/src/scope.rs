//! Which messages produce Signals events at all (`enable-signals`, `<signals-filter>`,
//! subaccounts) and whether engagement tracking applies to them: decided from the
//! configuration, the envelope and who sends the message, in one place for the event sink,
//! VERP return paths, suppression lookups and the tracking rewrite.

use petrel_config::{Config, EngagementTracking};
use petrel_spool::Envelope;

/// Who sent a recipient's message, as far as Signals cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The virtual MTA (at reception: the one selected, which may be a pool name).
    pub vmta: &'a str,
    /// The pool the vmta was picked from, if any.
    pub pool: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a delivery attempt by `vmta`: the vmta, and the pool the message was sent
    /// to when that is not the vmta itself.
    pub fn at_delivery(env: &'a Envelope, vmta: &'a str) -> Scope<'a> {
        Scope {
            vmta,
            pool: (env.vmta != vmta).then_some(env.vmta.as_str()),
        }
    }

    /// The scope at reception, before a pool member is chosen.
    pub fn at_reception(config: &Config, env: &'a Envelope) -> Scope<'a> {
        Scope {
            vmta: &env.vmta,
            pool: config
                .pool(&env.vmta)
                .is_some()
                .then_some(env.vmta.as_str()),
        }
    }

    /// The subaccount Signals gives this message's events, or `None` when it produces none.
    pub(crate) fn signals_subaccount(&self, config: &Config, env: &Envelope) -> Option<u64> {
        let configured =
            config.signals_scope(self.vmta, self.pool, env.facts.sending_domain.as_deref())?;
        Some(with_header_subaccount(env, configured))
    }
}

/// X-SP-Subaccount-ID (kept only when `process-x-sp-subaccount-id` is on) wins over the
/// subaccount of the configuration.
fn with_header_subaccount(env: &Envelope, configured: u64) -> u64 {
    env.facts.subaccount.unwrap_or(configured)
}

/// The subaccount a message's events carry (0 when Signals is off for it): the scope of
/// suppression entries and VERP return paths, so they agree with the events.
pub fn subaccount(config: &Config, env: &Envelope, scope: &Scope<'_>) -> u64 {
    let configured = config
        .signals_scope(scope.vmta, scope.pool, env.facts.sending_domain.as_deref())
        .unwrap_or(0);
    with_header_subaccount(env, configured)
}

/// The tracking flags a message's events carry (SparkPost's `open_tracking`,
/// `click_tracking`, `initial_pixel`), so reports know which messages could be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackingFlags {
    /// Opens are tracked (the bottom pixel).
    pub open: bool,
    /// Clicks are tracked (wrapped links).
    pub click: bool,
    /// Initial opens are tracked (the top pixel).
    pub initial_open: bool,
}

/// How petrel rewrites a message for engagement tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// The tracking host's base URL.
    pub base_url: String,
    /// What is tracked.
    pub flags: TrackingFlags,
}

/// Whether petrel rewrites a message sent from `scope` for engagement tracking, and how:
/// `engagement-tracking sparkpost`, open or click tracking on, a tracking base URL, and
/// Signals events on for the message (tracking events of a message that produces no other
/// events could not be attributed). petrel's own DSNs are never tracked.
pub fn tracking(config: &Config, env: &Envelope, scope: &Scope<'_>) -> Option<Tracking> {
    let signals = config.signals.as_ref()?;
    if signals.engagement_tracking != EngagementTracking::Sparkpost || env.facts.generated {
        return None;
    }
    let t = &signals.tracking;
    if !(t.open || t.click) {
        return None;
    }
    let base_url = t.base_url(signals.tracking_domain.as_deref())?;
    config.signals_scope(scope.vmta, scope.pool, env.facts.sending_domain.as_deref())?;
    Some(Tracking {
        base_url,
        flags: TrackingFlags {
            open: t.open,
            click: t.click,
            initial_open: t.open && t.initial_open,
        },
    })
}

/// The tracking flags of a message sent from `scope`: what petrel rewrites, or, with
/// `engagement-tracking true`, everything (petrel does not rewrite, but the operator declares
/// that opens and clicks reach Signals from elsewhere).
pub fn tracking_flags(config: &Config, env: &Envelope, scope: &Scope<'_>) -> Option<TrackingFlags> {
    let declared = config
        .signals
        .as_ref()
        .is_some_and(|s| s.engagement_tracking == EngagementTracking::Declared);
    if declared {
        return Some(TrackingFlags {
            open: true,
            click: true,
            initial_open: true,
        });
    }
    tracking(config, env, scope).map(|t| t.flags)
}
