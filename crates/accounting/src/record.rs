//! One accounting event as typed data.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use petrel_config::RecordType;

use crate::status::EnhancedStatus;

/// One accounting event: a delivery, bounce, transient failure, reception, …
///
/// Exists so the code that knows what happened (delivery, listener, bounce processor)
/// hands over typed facts and the accounting writer alone decides the PowerMTA text
/// format. Every PowerMTA field has a slot; a field that does not apply to the record
/// type stays empty (`String::new()`, `None`, empty `Vec`) and is written as an empty
/// column. Build one with [`AcctRecord::new`] and struct-update syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcctRecord {
    /// `type`: d, b, t, tq, r, f, rb or rs.
    pub record_type: RecordType,
    /// `timeLogged`: when the event happened (delivery, bounce, reception time).
    pub time_logged: SystemTime,
    /// `timeQueued`: when the message was spooled.
    pub time_queued: Option<SystemTime>,
    /// `orig`: MAIL FROM after rewriting/VERP (for rb/rs/f: where the report was sent).
    pub orig: String,
    /// `rcpt`: RCPT TO (for rb/rs: the DSN's Final-Recipient).
    pub rcpt: String,
    /// `orcpt`: the ORCPT DSN parameter.
    pub orcpt: String,
    /// `dsnAction`: relayed / delivered / failed / delayed.
    pub dsn_action: Option<DsnAction>,
    /// `dsnStatus`: the enhanced code; written with its gloss, `5.1.1 (bad destination …)`.
    pub dsn_status: Option<EnhancedStatus>,
    /// `dsnDiag`: the remote reply, e.g. `smtp;550 5.1.1 no such user`.
    pub dsn_diag: String,
    /// `dsnMta`: `mx-hostname (ip)` of the remote MTA.
    pub dsn_mta: String,
    /// `dsnReportingMta` (rb only): the Reporting-MTA of a remote DSN.
    pub dsn_reporting_mta: String,
    /// `bounceCat`: one of the 17 categories (`bad-mailbox`, `policy-related`, …).
    pub bounce_cat: String,
    /// `srcType`: how the message came in.
    pub src_type: Option<SrcType>,
    /// `srcMta`: `HELO-name (client-ip)` of the injecting client.
    pub src_mta: String,
    /// `dlvType`: how it was delivered.
    pub dlv_type: Option<DlvType>,
    /// `dlvSourceIp`: local source address used.
    pub dlv_source_ip: Option<IpAddr>,
    /// `dlvDestinationIp`: remote address.
    pub dlv_destination_ip: Option<IpAddr>,
    /// `dlvEsmtpAvailable`: EHLO keywords the remote advertised (written comma-joined).
    pub dlv_esmtp_available: Vec<String>,
    /// `dlvSize`: message size in bytes.
    pub dlv_size: Option<u64>,
    /// `dlvTlsProtocol`: negotiated STARTTLS protocol (e.g. `TLSv1.3`).
    pub dlv_tls_protocol: String,
    /// `dlvTlsCipher`: negotiated cipher suite.
    pub dlv_tls_cipher: String,
    /// `vmta`: the virtual MTA (a pool-selected message names the member; r: the pool).
    pub vmta: String,
    /// `vmtaPool`: the pool name when a pool was selected.
    pub vmta_pool: String,
    /// `jobId`.
    pub job_id: String,
    /// `envId`: the DSN ENVID.
    pub env_id: String,
    /// `queue`: `domain/vmta` actually used.
    pub queue: String,
    /// `totalSecondsQueued`: reception → this event. When `None`, derived from
    /// `time_logged - time_queued` if both are known.
    pub total_seconds_queued: Option<u64>,
    /// `rcvSmtpUser`: the SMTP AUTH user the message was received from.
    pub rcv_smtp_user: String,
    /// `rcvSourceIp`: client address at reception.
    pub rcv_source_ip: Option<IpAddr>,
    /// `rcvDestinationIp`: listener address at reception.
    pub rcv_destination_ip: Option<IpAddr>,
    /// `userString`: used when the `<acct-file>` sets no `user-string` of its own.
    pub user_string: String,
    /// `format` (rb/rs/f): `dsn`, `qmail`, `arf`, `jmrp`, a pattern-file name, ….
    pub format: String,
    /// `repSourceIp` (f): the IP the complaint is about, as reported.
    pub rep_source_ip: Option<IpAddr>,
    /// `feedbackType` (f): ARF Feedback-Type (`abuse`, …).
    pub feedback_type: String,
    /// `userAgent` (f): ARF User-Agent.
    pub user_agent: String,
    /// `reportingMta` (f): ARF Reporting-MTA.
    pub reporting_mta: String,
    /// `reportedDomain` (f): ARF Reported-Domain.
    pub reported_domain: String,
    /// Message headers for `header_NAME` columns; names match case-insensitively and the
    /// first occurrence wins.
    pub headers: Vec<(String, String)>,
    /// ARF report fields for `arf_NAME` columns (f); several values for one name are
    /// written as a CSV-encoded list.
    pub arf: Vec<(String, String)>,
}

impl AcctRecord {
    /// A record of `record_type` logged at `time_logged` with every other field empty.
    ///
    /// Exists because most fields do not apply to most types; fill the rest with
    /// `AcctRecord { rcpt: …, ..AcctRecord::new(RecordType::Delivery, now) }`.
    pub fn new(record_type: RecordType, time_logged: SystemTime) -> Self {
        AcctRecord {
            record_type,
            time_logged,
            time_queued: None,
            orig: String::new(),
            rcpt: String::new(),
            orcpt: String::new(),
            dsn_action: None,
            dsn_status: None,
            dsn_diag: String::new(),
            dsn_mta: String::new(),
            dsn_reporting_mta: String::new(),
            bounce_cat: String::new(),
            src_type: None,
            src_mta: String::new(),
            dlv_type: None,
            dlv_source_ip: None,
            dlv_destination_ip: None,
            dlv_esmtp_available: Vec::new(),
            dlv_size: None,
            dlv_tls_protocol: String::new(),
            dlv_tls_cipher: String::new(),
            vmta: String::new(),
            vmta_pool: String::new(),
            job_id: String::new(),
            env_id: String::new(),
            queue: String::new(),
            total_seconds_queued: None,
            rcv_smtp_user: String::new(),
            rcv_source_ip: None,
            rcv_destination_ip: None,
            user_string: String::new(),
            format: String::new(),
            rep_source_ip: None,
            feedback_type: String::new(),
            user_agent: String::new(),
            reporting_mta: String::new(),
            reported_domain: String::new(),
            headers: Vec::new(),
            arf: Vec::new(),
        }
    }

    /// The value of header `name` (case-insensitive, first occurrence).
    ///
    /// Exists for `header_NAME` columns, whose spelling in the config need not match the
    /// message's.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The RFC 3464 Action of a record (`dsnAction`).
///
/// Exists so producers cannot misspell the four values PowerMTA writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsnAction {
    /// Handed to a server that does not support DSN (the usual d value).
    Relayed,
    /// Delivered to a server that supports DSN.
    Delivered,
    /// Permanently failed (b).
    Failed,
    /// Temporarily failed (t, tq, rs).
    Delayed,
}

impl DsnAction {
    /// The column text.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Relayed => "relayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
        }
    }
}

impl fmt::Display for DsnAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a message entered petrel (`srcType`).
///
/// Exists because PowerMTA distinguishes SMTP injection from API/pickup injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrcType {
    /// Received over SMTP.
    Smtp,
    /// Injected by API or pickup directory.
    Api,
}

impl SrcType {
    /// The column text.
    pub fn as_str(self) -> &'static str {
        match self {
            SrcType::Smtp => "smtp",
            SrcType::Api => "api",
        }
    }
}

/// How a message left petrel (`dlvType`).
///
/// Exists so the delivery paths (SMTP, pipe, discard, file, HTTP relay) are named alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlvType {
    /// SMTP delivery.
    Smtp,
    /// `pipe` delivery.
    Pipe,
    /// `discard`ed.
    Discard,
    /// Written to a `file`.
    File,
    /// HTTP relay (e.g. SparkPost); written as `http-delivery` (PowerMTA's name is inferred).
    Http,
}

impl DlvType {
    /// The column text.
    pub fn as_str(self) -> &'static str {
        match self {
            DlvType::Smtp => "smtp",
            DlvType::Pipe => "pipe",
            DlvType::Discard => "discard",
            DlvType::File => "file",
            DlvType::Http => "http-delivery",
        }
    }
}
