//! RFC 3834 automatic replies (vacation, out of office). Bounces themselves are often
//! marked `Auto-Submitted: auto-replied` (Postfix does so), so that header alone only
//! counts when the message does not come from a mailer daemon and does not look like a
//! delivery report; explicit vacation markers always count.

use crate::fields;
use crate::mime::Mail;

/// Subject prefixes and words of automatic replies, lower case.
const SUBJECTS: &[&str] = &[
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto:",
    "automatic reply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automated response",
    "automatische antwort",
    "out of office",
    "out of the office",
    "out-of-office",
    "vacation",
    "abwesenheit",
    "absence",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "away from my mail",
    "on leave",
];

/// Whether `mail` is an automatic reply rather than a report.
pub(crate) fn is_auto_reply(mail: &Mail) -> bool {
    let h = &mail.header;
    let has = |n: &str| fields::get(h, n).is_some();
    if has("x-autoreply") || has("x-autorespond") || has("x-autoresponder") {
        return true;
    }
    if fields::get(h, "precedence").is_some_and(|p| p.eq_ignore_ascii_case("auto_reply")) {
        return true;
    }
    let subject = mail.subject.to_lowercase();
    if from_daemon(mail) || crate::text::bounce_subject(&subject) {
        return false;
    }
    SUBJECTS.iter().any(|s| subject.contains(s))
        || fields::get(h, "auto-submitted")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"))
}

/// The report's From is a mailer daemon or postmaster.
pub(crate) fn from_daemon(mail: &Mail) -> bool {
    let from = fields::get(&mail.header, "from")
        .unwrap_or("")
        .to_ascii_lowercase();
    [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "mail administrator",
        "mailer_daemon",
        "maildaemon",
        "mail-daemon",
        "bounce",
        "daemon@",
        "mail system",
        "nobody@",
        "root@",
        "mdaemon",
    ]
    .iter()
    .any(|p| from.contains(p))
}
