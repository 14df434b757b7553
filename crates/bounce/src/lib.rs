//! Parsing returned mail: what the bounce and feedback-loop processors (PowerMTA
//! `<bounce-processor>` / `<feedback-loop-processor>`, pmta-spec §2.9, §4.2, §4.3) see when
//! a remote system writes back to a return path.
//!
//! [`parse`] sorts one received message into a [`Returned`]:
//! - RFC 3464 delivery status notifications (`multipart/report;
//!   report-type=delivery-status`) and the non-standard bounces real MTAs send (qmail, Exim,
//!   Postfix and Sendmail plain text, Exchange, Gmail, Yahoo, …) become a [`Bounce`] with
//!   one [`BouncedRecipient`] per failed or delayed recipient, classified by petrel's shared
//!   SMTP classifier into PowerMTA `bounceCat` and SparkPost `bounce_class`; Amazon SES
//!   notifications (JSON by e-mail through SNS) become the same;
//! - RFC 5965 ARF reports (`report-type=feedback-report`) and Hotmail JMRP become a
//!   [`Complaint`];
//! - RFC 3834 auto-replies (vacation, out-of-office) become [`Returned::AutoReply`];
//! - anything else is [`Returned::Unrecognised`] (PowerMTA's "unmatched" mail).
//!
//! Everything needed to match a report to the message petrel sent is in [`OriginalRefs`]:
//! the returned original's Message-ID, X-Job, Return-Path (the VERP address) and all its
//! header fields. Pure: no I/O, no clock.

mod arf;
mod autoreply;
mod dsn;
mod fields;
mod mime;
mod scan;
mod ses;
mod text;
pub mod verdict;

use petrel_reply_class::BounceCategory;
use serde::Serialize;

pub use verdict::{
    smtp_phase, verdict, verdict_in, verdict_with, CodeSupplement, PhraseRule, Rules, SmtpPhase,
    Verdict, AFTER_DATA_MAILBOX, CODE_SUPPLEMENT, DNS_DEFINITE, DNS_TRANSIENT, PHASE_MARKERS,
    PROSE_RULES, RULE_GROUPS, SUPPLEMENT_RULES, TEXT_OVER_CODE,
};

/// What a returned message turned out to be. The daemon writes `rb`/`rs` rows and bounce
/// events for [`Returned::Bounce`], `f` rows and spam_complaint events for
/// [`Returned::Complaint`], and treats the other two as unmatched mail.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Returned {
    /// A delivery failure or delay report.
    Bounce(Bounce),
    /// A feedback-loop complaint (ARF or JMRP).
    Complaint(Complaint),
    /// An RFC 3834 automatic reply (vacation, out of office): never a bounce.
    AutoReply,
    /// Not a report petrel recognises (including DSNs that report only successes).
    Unrecognised,
}

/// A bounce report: the recipients it reports as failed (or delayed) and what identifies
/// the original message.
#[derive(Debug, Clone, Serialize)]
pub struct Bounce {
    /// One entry per failed or delayed recipient, in report order.
    pub recipients: Vec<BouncedRecipient>,
    /// How to find the original message (returned headers).
    pub original: OriginalRefs,
    /// The MTA that wrote the report (`Reporting-MTA`, without the `dns;` type), for the
    /// `dsnReportingMta` field of `rb` rows.
    pub reporting_mta: Option<String>,
}

/// One failed or delayed recipient of a bounce, with PowerMTA's and SparkPost's
/// categories so `rb` rows and Signals bounce events can be written directly.
#[derive(Debug, Clone, Serialize)]
pub struct BouncedRecipient {
    /// The recipient address (`Final-Recipient`, else `Original-Recipient`, else what the
    /// text names), without angle brackets.
    pub address: String,
    /// RFC 3463 status (`5.1.1`): from the report, else from the diagnostic, else derived
    /// from the reply code or the kind of report (`5.0.0` / `4.0.0`).
    pub status: Option<String>,
    /// The remote server's reply or the reporting MTA's explanation, as given.
    pub diagnostic: Option<String>,
    /// The remote MTA (`Remote-MTA`, without its type), when reported.
    pub remote_mta: Option<String>,
    /// RFC 3464 Action (`failed`, `delayed`); non-standard bounces say `failed` or
    /// `delayed` according to their wording.
    pub action: Option<String>,
    /// The SMTP reply code in the diagnostic (`550`), when there is one.
    pub reply_code: Option<u16>,
    /// PowerMTA `bounceCat` name (`bad-mailbox`, `quota-issues`, …).
    pub bounce_cat: String,
    /// SparkPost `bounce_class` (10 invalid recipient, 22 mailbox full, …).
    pub bounce_class: u16,
    /// The address is permanently bad (5xx and an unknown mailbox or domain): suppress it.
    pub hard: bool,
}

/// A feedback-loop complaint: a recipient marked the message as spam (or fraud, …).
#[derive(Debug, Clone, Serialize)]
pub struct Complaint {
    /// ARF `Feedback-Type` (`abuse`, `fraud`, `virus`, `other`, `not-spam`); `abuse` for
    /// JMRP and other non-ARF complaints.
    pub feedback_type: String,
    /// ARF `User-Agent`: the software that generated the report.
    pub user_agent: Option<String>,
    /// ARF `Reported-Domain`, else the domain of the report's From.
    pub reported_by: Option<String>,
    /// The complaining recipients: ARF `Original-Rcpt-To`, else the returned original's To.
    pub recipients: Vec<String>,
    /// ARF `Source-IP`: the IP the original came from (petrel's sending IP).
    pub source_ip: Option<String>,
    /// ARF `Arrival-Date` (as written in the report).
    pub arrival_date: Option<String>,
    /// How to find the original message.
    pub original: OriginalRefs,
}

/// What a report carries about the original message, to match it to what petrel sent:
/// PowerMTA matches only on report content (`header_*` columns, ENVID, the VERP return
/// path), never on its spool (pmta-spec §4.2).
#[derive(Debug, Clone, Default, Serialize)]
pub struct OriginalRefs {
    /// The original's Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// The original's `X-Job` header (PowerMTA job id).
    pub x_job: Option<String>,
    /// The original's Return-Path (the envelope sender, e.g. a VERP address), without
    /// angle brackets; for DSNs without a returned header, the `Original-Envelope-Id` is
    /// not this: see [`OriginalRefs::headers`].
    pub envelope_from: Option<String>,
    /// Every header field of the returned original (names in lower case, values unfolded),
    /// for `header_*` accounting columns. DSN per-message fields that identify the
    /// original (`original-envelope-id`) are appended when present.
    pub headers: Vec<(String, String)>,
}

/// Why a message could not be parsed at all (PowerMTA's `forward-errors-to` case), as
/// opposed to parsed and not recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input is empty or only whitespace.
    #[error("empty message")]
    Empty,
    /// No RFC 5322 header section could be found.
    #[error("no header section")]
    NoHeader,
    /// The MIME parser gave up on the structure (it panics on some malformed multiparts; the
    /// panic is contained here so one bad message cannot take a processor down).
    #[error("malformed MIME structure")]
    Malformed,
}

/// Parses a returned message; a message that cannot be parsed is
/// [`Returned::Unrecognised`]. See [`try_parse`] to tell the two apart.
pub fn parse(raw: &[u8]) -> Returned {
    try_parse(raw).unwrap_or(Returned::Unrecognised)
}

/// Parses a returned message, reporting unparseable input as an error so the caller can
/// route it to `forward-errors-to`.
pub fn try_parse(raw: &[u8]) -> Result<Returned, ParseError> {
    try_parse_with(raw, &Rules::all())
}

/// [`try_parse`] with some of the returned-mail rule groups switched off ([`Rules`]): for
/// measuring what each group contributes (the `crossval` example), not for production.
pub fn try_parse_with(raw: &[u8], rules: &Rules) -> Result<Returned, ParseError> {
    let mail = mime::parse(raw)?;
    if let Some(c) = arf::complaint(&mail) {
        return Ok(Returned::Complaint(c));
    }
    if let Some(result) = dsn::bounce(&mail, rules) {
        return Ok(result);
    }
    if let Some(result) = ses::notification(&mail, rules) {
        return Ok(result);
    }
    if autoreply::is_auto_reply(&mail) {
        return Ok(Returned::AutoReply);
    }
    if let Some(b) = text::bounce(&mail, rules) {
        return Ok(Returned::Bounce(b));
    }
    Ok(Returned::Unrecognised)
}

/// What a report says about one recipient, before classification.
pub(crate) struct Evidence<'a> {
    pub address: String,
    pub status: Option<(u8, u16, u16)>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    pub action: Option<String>,
    /// The report text, read when the recipient has no diagnostic of its own.
    pub context: &'a str,
    /// The SMTP phase found elsewhere in the report (paragraph, transcript).
    pub phase: Option<verdict::SmtpPhase>,
    /// The diagnostic is a local delivery program's exit status (`X-Unix; 71`), not an
    /// SMTP reply.
    pub local_mailer: bool,
    /// The rule groups in force.
    pub rules: &'a Rules,
}

/// Builds a classified recipient from what a report says about it.
pub(crate) fn recipient(e: Evidence<'_>) -> BouncedRecipient {
    let Evidence {
        address,
        status,
        diagnostic,
        remote_mta,
        action,
        context,
        phase,
        local_mailer,
        rules,
    } = e;
    let diag_text = diagnostic.as_deref().unwrap_or("");
    let reply_code = scan::reply_code(diag_text).or_else(|| {
        (diag_text.is_empty())
            .then(|| scan::reply_code(context))
            .flatten()
    });
    let delayed = action.as_deref() == Some("delayed");
    let status = status.or_else(|| {
        reply_code
            .map(|c| ((c / 100) as u8, 0, 0))
            .or(Some(if delayed { (4, 0, 0) } else { (5, 0, 0) }))
    });
    let text = if diag_text.trim().is_empty() {
        context
    } else {
        diag_text
    };
    let phase = verdict::smtp_phase(text).or(phase);
    let mut v = verdict::verdict_with(rules, status, reply_code, text, phase);
    // A local delivery program failed (Sendmail's `X-Unix; 71` with 4.5.0, procmail's
    // "Couldn't create …: No such user" under Postfix): there was no SMTP dialogue for an
    // x.5.x protocol error to be about, and the recipient's own MTA had accepted the address
    // before handing it to the program; the recipient's system is misconfigured. Only a
    // full mailbox keeps its category.
    if local_mailer
        && rules.on("local-mailer")
        && matches!(
            v.category,
            BounceCategory::Other
                | BounceCategory::ProtocolErrors
                | BounceCategory::BadMailbox
                | BounceCategory::BadDomain
                | BounceCategory::InactiveMailbox
        )
    {
        v.category = BounceCategory::BadConfiguration;
        v.class = if v.permanent { 40 } else { 20 };
    }
    // "failed" with a 4.x.x status: the reporting MTA gave up after temporary failures,
    // i.e. the message expired in its queue. Unless the last attempt names a reason of
    // its own (mailbox full, blocked, …), the category is message-expired.
    if action.as_deref() == Some("failed")
        && rules.on("failed-4xx-expired")
        && matches!(status, Some((4, _, _)))
        && matches!(
            v.category,
            BounceCategory::Other
                | BounceCategory::BadConnection
                | BounceCategory::NoAnswerFromHost
        )
    {
        v.category = BounceCategory::MessageExpired;
        v.class = 24;
    }
    if delayed {
        v.permanent = false;
        if v.class != 24 && v.class != 21 && v.class != 22 && v.class != 23 {
            v.class = if v.class == 70 { 70 } else { 20 };
        }
    }
    BouncedRecipient {
        address,
        status: status.map(scan::code_string),
        diagnostic: diagnostic.filter(|d| !d.trim().is_empty()),
        remote_mta,
        action,
        reply_code,
        bounce_cat: v.category.as_str().to_string(),
        bounce_class: v.class,
        hard: v.hard() && !delayed,
    }
}

/// [`OriginalRefs`] from a header section of the returned original.
pub(crate) fn original_refs(header: Vec<(String, String)>) -> OriginalRefs {
    let bare = |v: &str| {
        v.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_string()
    };
    let message_id = fields::get(&header, "message-id").map(|v| {
        let v = v.trim();
        match (v.find('<'), v.find('>')) {
            (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
            _ => bare(v),
        }
    });
    let x_job = fields::get(&header, "x-job").map(|v| v.trim().to_string());
    let envelope_from = fields::get(&header, "return-path")
        .map(|v| scan::address_in(v).unwrap_or_else(|| bare(v)))
        .filter(|v| !v.is_empty());
    OriginalRefs {
        message_id,
        x_job,
        envelope_from,
        headers: header,
    }
}

/// The returned original of a report: a `message/rfc822` part, a `text/rfc822-headers`
/// part, or header lines quoted in the text after a "copy of the message" marker.
pub(crate) fn find_original(mail: &mime::Mail) -> OriginalRefs {
    for ctype in [
        "message/rfc822",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global",
        "message/global-headers",
    ] {
        if let Some(leaf) = mail.leaf(ctype) {
            let h = fields::header_section(leaf.text.trim_start());
            if !h.is_empty() {
                return original_refs(h);
            }
        }
    }
    let body = mail.body_text();
    match text::inline_original(&body) {
        Some(h) => original_refs(h),
        None => OriginalRefs::default(),
    }
}
