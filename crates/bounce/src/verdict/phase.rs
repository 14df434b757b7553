//! Which SMTP command a returned recipient's reply answered, read from the report's words
//! (a refusal after DATA or of MAIL FROM is not about the recipient's address).

use super::collapse;

/// The SMTP command a remote reply answered, when the report says (Postfix "(in reply to
/// end of DATA command)", Exim "SMTP error from remote mail server after MAIL FROM:…",
/// qmail "does not like recipient", a Sendmail transcript's `>>> DATA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpPhase {
    /// The greeting, before any command.
    Connect,
    /// EHLO / HELO.
    Helo,
    /// MAIL FROM: the reply is about the sender.
    MailFrom,
    /// RCPT TO: the reply is about the recipient.
    RcptTo,
    /// DATA or end of data: the recipient was accepted, the message was refused.
    Data,
}

/// Phrases (lower case, whitespace collapsed) that name the SMTP phase of a remote reply.
pub const PHASE_MARKERS: &[(&[&str], SmtpPhase)] = &[
    (
        &[
            "after initial connection",
            "initial server greeting",
            "while receiving the initial server greeting",
            "smtp greeting",
            "smtp:connect",
            // qmail-remote: "Connected to 192.0.2.1 but greeting failed."
            "but greeting failed",
        ],
        SmtpPhase::Connect,
    ),
    (
        &[
            "after ehlo",
            "after helo",
            "in reply to ehlo command",
            "in reply to helo command",
            "performing the helo handshake",
            "performing the ehlo handshake",
            "smtp:ehlo",
            "smtp:helo",
            // qmail-remote: "Connected to 192.0.2.1 but my name was rejected."
            "but my name was rejected",
        ],
        SmtpPhase::Helo,
    ),
    (
        &[
            "after mail from",
            "after pipelined mail from",
            "in reply to mail from command",
            "smtp:mail",
            "[mail_from]",
            // qmail-remote: "Connected to 192.0.2.1 but sender was rejected."
            "but sender was rejected",
        ],
        SmtpPhase::MailFrom,
    ),
    (
        &[
            "after rcpt to",
            "after pipelined rcpt to",
            "after rcpt command",
            "in reply to rcpt to command",
            "does not like recipient",
            "most progress was rcpt to response",
            "smtp:rcpt",
            "[rcpt_to]",
        ],
        SmtpPhase::RcptTo,
    ),
    (
        &[
            "after end of data",
            "after data:",
            "after pipelined data",
            "after sending data",
            "in reply to end of data command",
            "in reply to data command",
            "for text command",
            "failed after i sent the message",
            // qmail-remote: "192.0.2.1 failed on DATA command."
            "failed on data command",
            "smtp:data",
            "[data]",
        ],
        SmtpPhase::Data,
    ),
];

/// The SMTP phase `text` names: the earliest marker of [`PHASE_MARKERS`] in it.
pub fn smtp_phase(text: &str) -> Option<SmtpPhase> {
    let lower = collapse(text);
    PHASE_MARKERS
        .iter()
        .flat_map(|(phrases, phase)| {
            phrases
                .iter()
                .filter_map(|p| lower.find(p).map(|at| (at, *phase)))
        })
        .min_by_key(|(at, _)| *at)
        .map(|(_, phase)| phase)
}
