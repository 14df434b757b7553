//! The Signals projection: the SparkPost ingest event of each outcome that has one, spooled
//! for the uploader and petrel's own Signals service.
//!
//! A spooled recipient's events carry the fields every kind shares (campaign, pool, sending
//! IP, subaccount, domains, tracking flags) when Signals is on for its message
//! (`enable-signals`, `<signals-filter>`); returned-mail events are thin (the Signals service
//! completes them from the delivery event with the same `message_id`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_config::{Config, SourceAddr};
use petrel_events::{mailbox_provider, next_event_id, Event, EventKind, EventSpool};
use petrel_spool::Envelope;
use petrel_verp::recipient_message_id;
use tracing::{info, warn};

use crate::outcome::{
    AttemptKind, Attempted, Attribution, Complaint, Outcome, Received, Recipient, RemoteReport,
};
use crate::recorder::Sink;
use crate::scope::{tracking_flags, Scope, TrackingFlags};

/// SparkPost's bounce class for mail refused by the sender platform's own policy (a
/// suppressed or deleted recipient): reported as a policy rejection, not a bounce.
const POLICY_CLASS: u16 = 25;

/// Writes each outcome's event to the Signals event spool.
pub struct SignalsSink {
    events: Arc<EventSpool>,
}

impl SignalsSink {
    /// A sink writing to `events`.
    pub fn new(events: Arc<EventSpool>) -> SignalsSink {
        SignalsSink { events }
    }
}

impl Sink for SignalsSink {
    fn write(&self, config: &Config, outcome: &Outcome<'_>) {
        if let Some(e) = event(config, outcome) {
            if let Err(err) = self.events.emit(&e) {
                warn!("signals: {err}");
            }
        }
    }
}

/// The event of one outcome, or `None` when it has none or Signals is off for it.
pub(crate) fn event(config: &Config, outcome: &Outcome<'_>) -> Option<Event> {
    match outcome {
        Outcome::Received(r) => received(config, r),
        Outcome::Attempted(a) => attempted(config, a),
        Outcome::QueueDeferred(_) => None,
        Outcome::Reported(r) if r.failed => reported(config, r),
        Outcome::Reported(_) => None,
        Outcome::Complained(c) => complained(config, c),
    }
}

/// `reception`.
fn received(config: &Config, r: &Received<'_>) -> Option<Event> {
    let env = r.rcpt.env;
    let scope = Scope::at_reception(config, env);
    let mut e = recipient_event(config, EventKind::Reception, &r.rcpt, &scope, r.at)?;
    e.recv_method = Some("esmtp".into());
    set_tracking_flags(&mut e, tracking_flags(config, env, &scope));
    e.msg_size = r.rcpt.size();
    e.remote_addr = env.client_ip;
    Some(e)
}

/// `delivery`, `inband`, `rejection` or `tempfail`.
fn attempted(config: &Config, a: &Attempted<'_>) -> Option<Event> {
    let kind = match a.kind {
        AttemptKind::Delivered => EventKind::Delivery,
        AttemptKind::Bounced if a.class == POLICY_CLASS => EventKind::PolicyRejection,
        AttemptKind::Bounced => EventKind::Bounce,
        AttemptKind::Deferred => EventKind::Delay,
    };
    let env = a.rcpt.env;
    let scope = Scope::at_delivery(env, a.route.vmta);
    let mut e = recipient_event(config, kind, &a.rcpt, &scope, a.at)?;
    set_tracking_flags(&mut e, tracking_flags(config, env, &scope));
    e.delv_method = Some("esmtp".into());
    e.msg_size = a.rcpt.size();
    e.num_retries = Some(a.attempts);
    if let Some(s) = &a.route.session {
        e.sending_ip = Some(s.source_ip);
        e.outbound_tls = Some(i8::from(s.tls.is_some()));
    }
    if let Some(d) = &a.route.remote {
        e.ip_address = Some(d.ip);
    }
    if kind != EventKind::Delivery {
        let (code, reason) = reason_parts(a.diag);
        e.bounce_class = Some(a.class);
        e.error_code = code;
        e.raw_reason = Some(reason);
    }
    Some(e)
}

/// `outofband`: a remote report of a failure.
fn reported(config: &Config, r: &RemoteReport<'_>) -> Option<Event> {
    let mut e = returned_event(config, EventKind::OutOfBand, r.copy, r.recipient, r.at)?;
    e.msg_from = Some(r.to.to_string());
    e.campaign_id = r.campaign.map(str::to_string);
    e.bounce_class = Some(r.class);
    e.error_code = r.reply_code;
    e.raw_reason = r.diagnostic.or(r.status).map(str::to_string);
    e.recv_method = Some("esmtp".into());
    Some(e)
}

/// `feedback`: a complaint.
fn complained(config: &Config, c: &Complaint<'_>) -> Option<Event> {
    let mut e = returned_event(config, EventKind::SpamComplaint, c.copy, c.recipient, c.at)?;
    e.fbtype = Some(c.feedback_type.to_string());
    e.report_by = c.reported_by.map(str::to_string);
    e.report_to = Some(c.to.to_string());
    e.user_agent = c.user_agent.map(str::to_string);
    e.campaign_id = c.campaign.map(str::to_string);
    e.sending_ip = c.source_ip.and_then(|s| s.parse().ok());
    Some(e)
}

/// The event for one spooled recipient with the fields every kind shares, or `None` when
/// Signals is off for this message (no `<signals>`, `enable-signals false`, a filter that
/// does not match, or a DSN petrel generated).
fn recipient_event(
    config: &Config,
    kind: EventKind,
    rcpt: &Recipient<'_>,
    scope: &Scope<'_>,
    now: SystemTime,
) -> Option<Event> {
    let signals = config.signals.as_ref()?;
    let env: &Envelope = rcpt.env;
    if env.facts.generated {
        return None;
    }
    let subaccount = scope.signals_subaccount(config, env)?;
    let r = env.recipients.get(rcpt.index as usize)?;
    let received = SystemTime::UNIX_EPOCH + Duration::from_millis(env.received_at_unix_ms);
    let rcpt_domain = r.domain();
    let mut e = Event::new(
        kind,
        next_event_id(),
        recipient_message_id(rcpt.id.0, rcpt.index),
        now,
    );
    e.custom_message_id = env.facts.custom_message_id.clone();
    e.rcpt_to = Some(r.address.to_ascii_lowercase());
    e.raw_rcpt_to = Some(r.address.clone());
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

/// The fields every returned-mail event shares; `None` without `<signals>` or without a
/// message id (SparkPost refuses events without one).
fn returned_event(
    config: &Config,
    kind: EventKind,
    copy: Option<Attribution<'_>>,
    rcpt: &str,
    now: SystemTime,
) -> Option<Event> {
    let signals = config.signals.as_ref()?;
    let Some(copy) = copy else {
        info!(
            rcpt,
            "returned mail names no message: no {} event",
            kind.public_type()
        );
        return None;
    };
    let mut e = Event::new(kind, next_event_id(), copy.message_id, now);
    e.rcpt_to = Some(rcpt.to_ascii_lowercase());
    e.raw_rcpt_to = Some(rcpt.to_string());
    let domain = rcpt.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    e.routing_domain = domain.clone();
    e.recipient_domain = domain;
    e.subaccount_id = copy.subaccount;
    e.delv_method = Some("esmtp".into());
    e.customer_id = signals.customer_id;
    Some(e)
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

/// Marks which tracking a message's events can be followed by (SparkPost's Health Score
/// needs `open_tracking` to count opens).
fn set_tracking_flags(e: &mut Event, flags: Option<TrackingFlags>) {
    let f = flags.unwrap_or_default();
    e.open_tracking = Some(f.open);
    e.click_tracking = Some(f.click);
    e.initial_pixel = Some(f.initial_open);
}

/// Splits an accounting diagnostic (`smtp;550 5.1.1 no such user`) into the SMTP code and
/// the remote text SparkPost calls `raw_reason`.
fn reason_parts(diag: &str) -> (Option<u16>, String) {
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
