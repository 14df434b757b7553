//! What each outcome writes: the accounting row and the Signals event of one recipient,
//! both built from the same input so they cannot disagree, and the `tq` row of a queue that
//! could not be reached.

use std::time::{Duration, SystemTime};

use petrel_accounting::{AcctRecord, DlvType, DsnAction, SrcType};
use petrel_config::RecordType;
use petrel_events::EventKind;
use petrel_smtp_client::Connection;
use petrel_spool::{Envelope, MessageId, Recipient};
use tracing::warn;

use crate::engine::Inner;
use crate::outcome::SUPPRESSED_CLASS;
use crate::queue::QueueKey;
use crate::route::Destination;
use crate::signals::{reason_parts, recipient_event, Scope};
use crate::tracking;

impl Inner {
    /// Writes one recipient's outcome to the accounting files and the Signals stream, both
    /// derived from the same input.
    pub(crate) fn record(&self, i: AcctRecordInput<'_>) {
        self.emit_outcome(&i);
        self.account(i);
    }

    pub(crate) fn emit_outcome(&self, i: &AcctRecordInput<'_>) {
        let Some(events) = &self.events else { return };
        let kind = match i.kind {
            RecordType::Delivery => EventKind::Delivery,
            // Class 25 ("admin failure") is petrel's own policy, e.g. a suppressed
            // recipient: SparkPost reports that as a policy rejection, not a bounce.
            RecordType::Bounce if i.class == SUPPRESSED_CLASS => EventKind::PolicyRejection,
            RecordType::Bounce => EventKind::Bounce,
            RecordType::Transient => EventKind::Delay,
            _ => return,
        };
        let config = self.config();
        let scope = Scope::at_delivery(i.env, i.key);
        let Some(mut e) = recipient_event(&config, kind, i.id, i.env, i.rcpt_index, &scope, i.now)
        else {
            return;
        };
        set_tracking_flags(&mut e, tracking::flags(&config, i.env, &scope));
        e.delv_method = Some("esmtp".into());
        e.msg_size = self.spool.body_len(i.id);
        e.num_retries = Some(i.attempts);
        if let Some(c) = i.conn {
            e.sending_ip = Some(c.local_addr().ip());
            e.outbound_tls = Some(i8::from(c.tls_info().is_some()));
        }
        if let Some(d) = i.dest {
            e.ip_address = Some(d.addr.ip());
        }
        if kind != EventKind::Delivery {
            let (code, reason) = reason_parts(i.diag);
            e.bounce_class = Some(i.class);
            e.error_code = code;
            e.raw_reason = Some(reason);
        }
        if let Err(err) = events.emit(&e) {
            warn!("signals: {err}");
        }
    }

    /// `r` rows and `reception` events, one per recipient.
    pub(crate) fn record_reception(&self, id: MessageId, env: &Envelope) {
        let now = self.clock.now();
        let config = self.config();
        let scope = Scope::at_reception(&config, env);
        let size = self.spool.body_len(id);
        for (i, r) in env.recipients.iter().enumerate() {
            if let Some(acct) = &self.accounting {
                let mut rec = AcctRecord::new(RecordType::Receipt, now);
                rec.orig = env.mail_from.clone();
                rec.rcpt = r.address.clone();
                rec.orcpt = r.orcpt.clone().unwrap_or_default();
                rec.src_type = Some(SrcType::Smtp);
                rec.rcv_source_ip = env.client_ip;
                rec.vmta = env.vmta.clone();
                rec.job_id = env.job_id.clone().unwrap_or_default();
                rec.env_id = env.env_id.clone().unwrap_or_default();
                rec.rcv_smtp_user = env.auth_user.clone().unwrap_or_default();
                if let Err(e) = acct.record(rec) {
                    warn!("accounting: {e}");
                }
            }
            let Some(events) = &self.events else { continue };
            let Some(mut e) = recipient_event(
                &config,
                EventKind::Reception,
                id,
                env,
                i as u32,
                &scope,
                now,
            ) else {
                continue;
            };
            e.recv_method = Some("esmtp".into());
            set_tracking_flags(&mut e, tracking::flags(&config, env, &scope));
            e.msg_size = size;
            e.remote_addr = env.client_ip;
            if let Err(err) = events.emit(&e) {
                warn!("signals: {err}");
            }
        }
    }

    pub(crate) fn account(&self, i: AcctRecordInput<'_>) {
        let Some(acct) = &self.accounting else { return };
        let r: &Recipient = &i.env.recipients[i.rcpt_index as usize];
        let queued = SystemTime::UNIX_EPOCH + Duration::from_millis(i.env.received_at_unix_ms);
        let pool = if i.env.vmta != i.key.vmta {
            Some(i.env.vmta.clone())
        } else {
            None
        };
        let mut rec = AcctRecord::new(i.kind, i.now);
        rec.time_queued = Some(queued);
        rec.orig = i.env.mail_from.clone();
        rec.rcpt = r.address.clone();
        rec.orcpt = r.orcpt.clone().unwrap_or_default();
        rec.dsn_action = Some(i.action);
        rec.dsn_status = i.status.parse().ok();
        rec.dsn_diag = i.diag.to_string();
        rec.bounce_cat = if i.kind == RecordType::Delivery {
            String::new()
        } else {
            i.category.to_string()
        };
        rec.src_type = Some(SrcType::Smtp);
        rec.src_mta = match (&i.env.client_helo, &i.env.client_ip) {
            (Some(h), Some(a)) => format!("{h} ({a})"),
            (None, Some(a)) => format!("({a})"),
            (Some(h), None) => h.clone(),
            (None, None) => String::new(),
        };
        rec.dlv_type = Some(DlvType::Smtp);
        if let Some(d) = i.dest {
            rec.dsn_mta = format!("{} ({})", d.name, d.addr.ip());
            rec.dlv_destination_ip = Some(d.addr.ip());
        }
        if let Some(c) = i.conn {
            rec.dlv_source_ip = Some(c.local_addr().ip());
            rec.dlv_esmtp_available = c.extensions().keywords.clone();
            if let Some(t) = c.tls_info() {
                rec.dlv_tls_protocol = t.protocol.clone();
                rec.dlv_tls_cipher = t.cipher.clone();
            }
        }
        rec.vmta = i.key.vmta.clone();
        rec.vmta_pool = pool.unwrap_or_default();
        rec.job_id = i.env.job_id.clone().unwrap_or_default();
        rec.env_id = i.env.env_id.clone().unwrap_or_default();
        rec.queue = i.key.to_string();
        rec.rcv_smtp_user = i.env.auth_user.clone().unwrap_or_default();
        rec.total_seconds_queued = i.now.duration_since(queued).map(|d| d.as_secs()).ok();
        if let Err(e) = acct.record(rec) {
            warn!("accounting: {e}");
        }
    }
}

pub(crate) struct AcctRecordInput<'a> {
    pub(crate) kind: RecordType,
    pub(crate) id: MessageId,
    pub(crate) env: &'a Envelope,
    pub(crate) rcpt_index: u32,
    pub(crate) key: &'a QueueKey,
    pub(crate) dest: Option<&'a Destination>,
    pub(crate) conn: Option<&'a Connection>,
    pub(crate) status: &'a str,
    pub(crate) diag: &'a str,
    pub(crate) category: &'a str,
    /// SparkPost `bounce_class` (events only).
    pub(crate) class: u16,
    /// Failed attempts before this one.
    pub(crate) attempts: u32,
    pub(crate) action: DsnAction,
    pub(crate) now: SystemTime,
}

pub(crate) fn queue_failure_record(
    inner: &Inner,
    key: &QueueKey,
    dest: Option<&Destination>,
    error: &str,
    status: &str,
    now: SystemTime,
) {
    let Some(acct) = &inner.accounting else {
        return;
    };
    let mut rec = AcctRecord::new(RecordType::TransientQueue, now);
    rec.queue = key.to_string();
    rec.vmta = key.vmta.clone();
    rec.dsn_status = status.parse().ok();
    rec.dsn_diag = error.to_string();
    rec.dlv_type = Some(DlvType::Smtp);
    if let Some(d) = dest {
        rec.dsn_mta = format!("{} ({})", d.name, d.addr.ip());
        rec.dlv_destination_ip = Some(d.addr.ip());
    }
    if let Err(e) = acct.record(rec) {
        warn!("accounting: {e}");
    }
}

/// Marks which tracking a message's events can be followed by (SparkPost's Health Score
/// needs `open_tracking` to count opens).
fn set_tracking_flags(e: &mut petrel_events::Event, flags: Option<tracking::Flags>) {
    let f = flags.unwrap_or(tracking::Flags {
        open: false,
        click: false,
        initial_open: false,
    });
    e.open_tracking = Some(f.open);
    e.click_tracking = Some(f.click);
    e.initial_pixel = Some(f.initial_open);
}
