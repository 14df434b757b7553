//! Signals events for what happens to a recipient: which messages produce events at all
//! (`enable-signals`, `<signals-filter>`, subaccounts) and the fields every event shares.
//!
//! The engine builds an event from the same outcome it writes the accounting row from, so
//! the accounting files and the event stream cannot disagree.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use petrel_config::{Config, SourceAddr};
use petrel_events::{mailbox_provider, next_event_id, Event, EventKind};
use petrel_spool::{Envelope, MessageId};
use petrel_verp::recipient_message_id;

/// Who sent a recipient's message, as far as Signals cares.
pub(crate) struct Scope<'a> {
    /// The virtual MTA (at reception: the one selected, which may be a pool name).
    pub vmta: &'a str,
    /// The pool the vmta was picked from, if any.
    pub pool: Option<&'a str>,
}

impl<'a> Scope<'a> {
    /// The scope of a delivery attempt from queue `key`: its vmta, and the pool the message
    /// was sent to when that is not the vmta itself.
    pub fn at_delivery(env: &'a Envelope, key: &'a crate::queue::QueueKey) -> Scope<'a> {
        Scope {
            vmta: &key.vmta,
            pool: (env.vmta != key.vmta).then_some(env.vmta.as_str()),
        }
    }

    /// The scope at reception, before a pool member is chosen.
    pub fn at_reception(config: &Config, env: &'a Envelope) -> Scope<'a> {
        if config.pool(&env.vmta).is_some() {
            Scope {
                vmta: &env.vmta,
                pool: Some(&env.vmta),
            }
        } else {
            Scope {
                vmta: &env.vmta,
                pool: None,
            }
        }
    }
}

/// The event for one recipient with the fields every kind shares, or `None` when Signals is
/// off for this message (no `<signals>`, `enable-signals false`, a filter that does not
/// match, or a DSN petrel generated).
pub(crate) fn recipient_event(
    config: &Config,
    kind: EventKind,
    id: MessageId,
    env: &Envelope,
    rcpt_index: u32,
    scope: &Scope<'_>,
    now: SystemTime,
) -> Option<Event> {
    let signals = config.signals.as_ref()?;
    if env.facts.generated {
        return None;
    }
    let configured =
        config.signals_scope(scope.vmta, scope.pool, env.facts.sending_domain.as_deref())?;
    let subaccount = with_header_subaccount(env, configured);
    let rcpt = env.recipients.get(rcpt_index as usize)?;
    let received = SystemTime::UNIX_EPOCH + Duration::from_millis(env.received_at_unix_ms);
    let rcpt_domain = rcpt.domain();
    let mut e = Event::new(
        kind,
        next_event_id(),
        recipient_message_id(id.0, rcpt_index),
        now,
    );
    e.custom_message_id = env.facts.custom_message_id.clone();
    e.rcpt_to = Some(rcpt.address.to_ascii_lowercase());
    e.raw_rcpt_to = Some(rcpt.address.clone());
    e.msg_from = Some(env.mail_from.clone());
    e.friendly_from = env.facts.from.clone();
    e.subject = env.facts.subject.clone();
    e.ip_pool = scope.pool.map(str::to_string);
    let is_pool = scope.pool == Some(scope.vmta);
    e.binding = (!is_pool).then(|| scope.vmta.to_string());
    e.campaign_id = env.job_id.clone();
    e.subaccount_id = subaccount;
    e.customer_id = signals.customer_id;
    e.sending_domain = env.facts.sending_domain.clone();
    e.routing_domain = (!rcpt_domain.is_empty()).then(|| rcpt_domain.clone());
    e.recipient_domain = e.routing_domain.clone();
    e.mailbox_provider = e
        .recipient_domain
        .as_deref()
        .map(|d| mailbox_provider(d).to_string());
    e.injection_time = Some(received);
    e.queue_time = now.duration_since(received).ok();
    if !is_pool {
        e.sending_ip = configured_source_ip(config, scope.vmta);
    }
    Some(e)
}

/// X-SP-Subaccount-ID (kept only when `process-x-sp-subaccount-id` is on) wins over the
/// subaccount of the configuration.
fn with_header_subaccount(env: &Envelope, configured: u64) -> u64 {
    env.facts.subaccount.unwrap_or(configured)
}

/// The subaccount a message's events carry (0 when Signals is off for it): the scope of
/// suppression entries and VERP return paths, so they agree with the events.
pub(crate) fn subaccount(config: &Config, env: &Envelope, scope: &Scope<'_>) -> u64 {
    let configured = config
        .signals_scope(scope.vmta, scope.pool, env.facts.sending_domain.as_deref())
        .unwrap_or(0);
    with_header_subaccount(env, configured)
}

/// The first `smtp-source-host` address of the vmta (else the global one): what PowerMTA
/// reports as `sending_ip` when no connection was made (reception, expiry).
fn configured_source_ip(config: &Config, vmta: &str) -> Option<IpAddr> {
    config
        .source_hosts_for(vmta)
        .iter()
        .find_map(|h| match h.addr {
            SourceAddr::Ip(ip) => Some(ip),
            SourceAddr::Cidr(_) => None,
        })
}

/// Splits an accounting diagnostic (`smtp;550 5.1.1 no such user`) into the SMTP code and
/// the remote text SparkPost calls `raw_reason`.
pub(crate) fn reason_parts(diag: &str) -> (Option<u16>, String) {
    let text = diag
        .split_once(';')
        .filter(|(kind, _)| {
            kind.eq_ignore_ascii_case("smtp") || kind.eq_ignore_ascii_case("x-petrel")
        })
        .map_or(diag, |(_, rest)| rest)
        .trim();
    let code = text
        .get(..3)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|c| (200..600).contains(c));
    (code, text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_parts_takes_code_and_text() {
        assert_eq!(
            reason_parts("smtp;550 5.1.1 <a@b> no such user"),
            (Some(550), "550 5.1.1 <a@b> no such user".to_string())
        );
        assert_eq!(
            reason_parts("connection refused"),
            (None, "connection refused".to_string())
        );
    }
}
