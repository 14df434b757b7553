//! The typed outcome: one value per thing that happened, carrying the facts the stage that
//! saw it knows. It borrows them, so describing an outcome allocates nothing; each sink copies
//! only what its projection writes.

use std::net::IpAddr;
use std::time::SystemTime;

use petrel_spool::{Envelope, MessageId, Spool};

/// One thing that happened to mail.
#[derive(Clone, Copy)]
pub enum Outcome<'a> {
    /// A recipient of a message accepted with 250 (`r` row, `reception` event).
    Received(Received<'a>),
    /// One recipient's delivery attempt ended: delivered, bounced or deferred (`d` / `b` / `t`
    /// rows; `delivery`, `inband`, `rejection` or `tempfail` events).
    Attempted(Attempted<'a>),
    /// A whole queue could not be reached (`tq` row; no event).
    QueueDeferred(QueueDeferred<'a>),
    /// A remote report about one recipient of a copy petrel sent: a bounce or a delay notice
    /// (`rb` / `rs` rows; an `outofband` event for a failure).
    Reported(RemoteReport<'a>),
    /// A feedback-loop complaint about one recipient (`f` row, `feedback` event).
    Complained(Complaint<'a>),
}

/// One recipient of a spooled message.
#[derive(Clone, Copy)]
pub struct Recipient<'a> {
    /// The spool holding the message (its size is looked up only by a sink that writes it).
    pub spool: &'a Spool,
    /// The message.
    pub id: MessageId,
    /// Its envelope.
    pub env: &'a Envelope,
    /// The recipient's index in the envelope.
    pub index: u32,
}

impl Recipient<'_> {
    /// The stored message's size in bytes.
    pub fn size(&self) -> Option<u64> {
        self.spool.body_len(self.id)
    }
}

/// A recipient accepted at reception.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    /// Who.
    pub rcpt: Recipient<'a>,
    /// When.
    pub at: SystemTime,
}

/// Where an attempt went.
#[derive(Clone, Copy)]
pub struct Route<'a> {
    /// The queue's domain (the recipient's own, or another one by `queue-to`).
    pub domain: &'a str,
    /// The virtual MTA sending it (a pool member when the message named a pool).
    pub vmta: &'a str,
    /// The remote host, once one was chosen.
    pub remote: Option<Remote<'a>>,
    /// The SMTP session, once one was open.
    pub session: Option<Session<'a>>,
}

/// The remote host of an attempt.
#[derive(Clone, Copy)]
pub struct Remote<'a> {
    /// Its name (MX host or `smtp-hosts` entry).
    pub name: &'a str,
    /// The address connected to.
    pub ip: IpAddr,
}

/// The facts of an open SMTP session.
#[derive(Clone, Copy)]
pub struct Session<'a> {
    /// The local address used.
    pub source_ip: IpAddr,
    /// The EHLO keywords the remote advertised.
    pub esmtp: &'a [String],
    /// The negotiated TLS protocol and cipher suite, when STARTTLS was used.
    pub tls: Option<(&'a str, &'a str)>,
}

/// How an attempt ended for a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    /// The receiver took it.
    Delivered,
    /// Permanently failed (in the session, by expiry, by petrel's own policy, by deletion).
    Bounced,
    /// Temporarily failed: it waits for a retry.
    Deferred,
}

/// One recipient's attempt.
#[derive(Clone, Copy)]
pub struct Attempted<'a> {
    /// Who.
    pub rcpt: Recipient<'a>,
    /// Where it went.
    pub route: Route<'a>,
    /// How it ended.
    pub kind: AttemptKind,
    /// When.
    pub at: SystemTime,
    /// The enhanced status (`2.0.0`, `5.1.1`).
    pub status: &'a str,
    /// The diagnostic (`smtp;550 5.1.1 no such user`).
    pub diag: &'a str,
    /// PowerMTA `bounceCat` (the operator's own by `<bounce-category-patterns>`); empty for a
    /// delivery.
    pub category: &'a str,
    /// SparkPost `bounce_class` (0 for a delivery). Class 25 is petrel's own policy (a
    /// suppressed or deleted recipient), reported to Signals as a policy rejection.
    pub class: u16,
    /// Failed attempts before this one.
    pub attempts: u32,
}

/// A queue that could not be reached.
#[derive(Clone, Copy)]
pub struct QueueDeferred<'a> {
    /// The queue's domain.
    pub domain: &'a str,
    /// The queue's virtual MTA.
    pub vmta: &'a str,
    /// The host that failed, when one was tried.
    pub remote: Option<Remote<'a>>,
    /// What went wrong.
    pub error: &'a str,
    /// The enhanced status (`4.4.1`).
    pub status: &'a str,
    /// When.
    pub at: SystemTime,
}

/// Which copy a returned report is about, when a signed return path (or the original's
/// Message-ID) said so.
#[derive(Clone, Copy)]
pub struct Attribution<'a> {
    /// The Signals `message_id` of the copy.
    pub message_id: &'a str,
    /// The subaccount it was sent for.
    pub subaccount: u64,
}

/// One recipient of a remote delivery report (DSN or a non-standard bounce).
#[derive(Clone, Copy)]
pub struct RemoteReport<'a> {
    /// When it was processed.
    pub at: SystemTime,
    /// A failure (`rb`); a delay notice otherwise (`rs`).
    pub failed: bool,
    /// Where the report was sent (the return path).
    pub to: &'a str,
    /// The client that delivered the report: its HELO name and address.
    pub client: (&'a str, Option<IpAddr>),
    /// The recipient the report is about.
    pub recipient: &'a str,
    /// Its enhanced status, as reported.
    pub status: Option<&'a str>,
    /// The diagnostic, as reported.
    pub diagnostic: Option<&'a str>,
    /// The basic reply code, as reported.
    pub reply_code: Option<u16>,
    /// The remote MTA that refused it.
    pub remote_mta: Option<&'a str>,
    /// The MTA that wrote the report.
    pub reporting_mta: Option<&'a str>,
    /// PowerMTA `bounceCat`.
    pub category: &'a str,
    /// SparkPost `bounce_class`.
    pub class: u16,
    /// The header fields of the returned original.
    pub original_headers: &'a [(String, String)],
    /// The original's `X-Job`.
    pub campaign: Option<&'a str>,
    /// The copy it is about, when known.
    pub copy: Option<Attribution<'a>>,
}

/// One recipient of a feedback-loop complaint (ARF, JMRP).
#[derive(Clone, Copy)]
pub struct Complaint<'a> {
    /// When it was processed.
    pub at: SystemTime,
    /// Where the complaint was sent.
    pub to: &'a str,
    /// The recipient who complained.
    pub recipient: &'a str,
    /// ARF Feedback-Type (`abuse`, `not-spam`, …).
    pub feedback_type: &'a str,
    /// ARF User-Agent.
    pub user_agent: Option<&'a str>,
    /// Who sent the complaint (Reporting-MTA).
    pub reported_by: Option<&'a str>,
    /// The source IP the complaint is about, as reported.
    pub source_ip: Option<&'a str>,
    /// The header fields of the complained-about original.
    pub original_headers: &'a [(String, String)],
    /// The original's `X-Job`.
    pub campaign: Option<&'a str>,
    /// The copy it is about, when known.
    pub copy: Option<Attribution<'a>>,
}
