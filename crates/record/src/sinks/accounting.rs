//! The accounting projection: the PowerMTA row of each outcome, handed to the `<acct-file>`
//! writers (which keep the record types their `records` filter names).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use petrel_accounting::{Accounting, AcctRecord, DlvType, DsnAction, SrcType};
use petrel_config::{Config, RecordType};
use tracing::warn;

use crate::outcome::{
    AttemptKind, Attempted, Complaint, Outcome, QueueDeferred, Received, Remote, RemoteReport,
};
use crate::recorder::Sink;

/// Writes each outcome's row to the accounting files.
pub struct AccountingSink {
    accounting: Arc<Accounting>,
}

impl AccountingSink {
    /// A sink writing to `accounting`.
    pub fn new(accounting: Arc<Accounting>) -> AccountingSink {
        AccountingSink { accounting }
    }
}

impl Sink for AccountingSink {
    fn write(&self, _config: &Config, outcome: &Outcome<'_>) {
        if let Err(e) = self.accounting.record(row(outcome)) {
            warn!("accounting: {e}");
        }
    }
}

/// The row of one outcome.
pub(crate) fn row(outcome: &Outcome<'_>) -> AcctRecord {
    match outcome {
        Outcome::Received(r) => received(r),
        Outcome::Attempted(a) => attempted(a),
        Outcome::QueueDeferred(q) => queue_deferred(q),
        Outcome::Reported(r) => reported(r),
        Outcome::Complained(c) => complained(c),
    }
}

/// `r`: the recipient as received.
fn received(r: &Received<'_>) -> AcctRecord {
    let env = r.rcpt.env;
    let rcpt = &env.recipients[r.rcpt.index as usize];
    let mut rec = AcctRecord::new(RecordType::Receipt, r.at);
    rec.orig = env.mail_from.clone();
    rec.rcpt = rcpt.address.clone();
    rec.orcpt = rcpt.orcpt.clone().unwrap_or_default();
    rec.src_type = Some(SrcType::Smtp);
    rec.rcv_source_ip = env.client_ip;
    rec.vmta = env.vmta.clone();
    rec.job_id = env.job_id.clone().unwrap_or_default();
    rec.env_id = env.env_id.clone().unwrap_or_default();
    rec.rcv_smtp_user = env.auth_user.clone().unwrap_or_default();
    rec
}

/// `d`, `b` or `t`: one recipient's attempt.
fn attempted(a: &Attempted<'_>) -> AcctRecord {
    let env = a.rcpt.env;
    let r = &env.recipients[a.rcpt.index as usize];
    let queued = SystemTime::UNIX_EPOCH + Duration::from_millis(env.received_at_unix_ms);
    let (kind, action) = match a.kind {
        AttemptKind::Delivered => (RecordType::Delivery, DsnAction::Relayed),
        AttemptKind::Bounced => (RecordType::Bounce, DsnAction::Failed),
        AttemptKind::Deferred => (RecordType::Transient, DsnAction::Delayed),
    };
    let mut rec = AcctRecord::new(kind, a.at);
    rec.time_queued = Some(queued);
    rec.orig = env.mail_from.clone();
    rec.rcpt = r.address.clone();
    rec.orcpt = r.orcpt.clone().unwrap_or_default();
    rec.dsn_action = Some(action);
    rec.dsn_status = a.status.parse().ok();
    rec.dsn_diag = a.diag.to_string();
    if a.kind != AttemptKind::Delivered {
        rec.bounce_cat = a.category.to_string();
    }
    rec.src_type = Some(SrcType::Smtp);
    rec.src_mta = match (&env.client_helo, &env.client_ip) {
        (Some(h), Some(ip)) => format!("{h} ({ip})"),
        (None, Some(ip)) => format!("({ip})"),
        (Some(h), None) => h.clone(),
        (None, None) => String::new(),
    };
    rec.dlv_type = Some(DlvType::Smtp);
    if let Some(d) = &a.route.remote {
        set_remote(&mut rec, d);
    }
    if let Some(s) = &a.route.session {
        rec.dlv_source_ip = Some(s.source_ip);
        rec.dlv_esmtp_available = s.esmtp.to_vec();
        if let Some((protocol, cipher)) = s.tls {
            rec.dlv_tls_protocol = protocol.to_string();
            rec.dlv_tls_cipher = cipher.to_string();
        }
    }
    rec.vmta = a.route.vmta.to_string();
    if env.vmta != a.route.vmta {
        rec.vmta_pool = env.vmta.clone();
    }
    rec.job_id = env.job_id.clone().unwrap_or_default();
    rec.env_id = env.env_id.clone().unwrap_or_default();
    rec.queue = format!("{}/{}", a.route.domain, a.route.vmta);
    rec.rcv_smtp_user = env.auth_user.clone().unwrap_or_default();
    rec.total_seconds_queued = a.at.duration_since(queued).map(|d| d.as_secs()).ok();
    rec
}

/// `tq`: a queue that could not be reached.
fn queue_deferred(q: &QueueDeferred<'_>) -> AcctRecord {
    let mut rec = AcctRecord::new(RecordType::TransientQueue, q.at);
    rec.queue = format!("{}/{}", q.domain, q.vmta);
    rec.vmta = q.vmta.to_string();
    rec.dsn_status = q.status.parse().ok();
    rec.dsn_diag = q.error.to_string();
    rec.dlv_type = Some(DlvType::Smtp);
    if let Some(d) = &q.remote {
        set_remote(&mut rec, d);
    }
    rec
}

fn set_remote(rec: &mut AcctRecord, d: &Remote<'_>) {
    rec.dsn_mta = format!("{} ({})", d.name, d.ip);
    rec.dlv_destination_ip = Some(d.ip);
}

/// `rb` (a failure) or `rs` (a delay notice): one recipient of a remote report.
fn reported(r: &RemoteReport<'_>) -> AcctRecord {
    let kind = if r.failed {
        RecordType::RemoteBounce
    } else {
        RecordType::RemoteStatus
    };
    let mut rec = AcctRecord::new(kind, r.at);
    rec.orig = r.to.to_string();
    rec.rcpt = r.recipient.to_string();
    rec.dsn_action = (!r.failed).then_some(DsnAction::Delayed);
    rec.dsn_status = r.status.and_then(|s| s.parse().ok());
    rec.dsn_diag = r
        .diagnostic
        .map(|d| {
            if d.contains(';') {
                d.to_string()
            } else {
                format!("smtp;{d}")
            }
        })
        .unwrap_or_default();
    rec.dsn_mta = r.remote_mta.unwrap_or_default().to_string();
    rec.dsn_reporting_mta = r.reporting_mta.unwrap_or_default().to_string();
    rec.bounce_cat = r.category.to_string();
    rec.src_type = Some(SrcType::Smtp);
    let (helo, client_ip) = r.client;
    rec.src_mta = match client_ip {
        Some(ip) => format!("{helo} ({ip})"),
        None => helo.to_string(),
    };
    rec.env_id = r
        .original_headers
        .iter()
        .find(|(n, _)| n == "original-envelope-id")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    rec.format = "dsn".into();
    rec.headers = r.original_headers.to_vec();
    rec
}

/// `f`: one recipient of a feedback-loop complaint.
fn complained(c: &Complaint<'_>) -> AcctRecord {
    let mut rec = AcctRecord::new(RecordType::FeedbackLoop, c.at);
    rec.rep_source_ip = c.source_ip.and_then(|s| s.parse().ok());
    rec.feedback_type = c.feedback_type.to_string();
    rec.format = "arf".into();
    rec.user_agent = c.user_agent.unwrap_or_default().to_string();
    rec.orig = c.to.to_string();
    rec.rcpt = c.recipient.to_string();
    rec.reporting_mta = c.reported_by.unwrap_or_default().to_string();
    rec.reported_domain = c.reported_by.unwrap_or_default().to_string();
    rec.dlv_source_ip = rec.rep_source_ip;
    rec.headers = c.original_headers.to_vec();
    rec
}
