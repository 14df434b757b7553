//! RFC 3464 delivery status notifications: a `message/delivery-status` part (or the same
//! fields in a mistyped or plain-text part) with one per-message group and one group per
//! recipient.

use crate::fields::{self, Field};
use crate::mime::Mail;
use crate::{scan, text, Bounce, Returned};

/// The DSN in `mail`, if it has one: `Some(Bounce)` when at least one recipient failed or
/// was delayed, `Some(Unrecognised)` when it reports only successes (delivered, relayed,
/// expanded), `None` when there are no DSN fields at all.
pub(crate) fn bounce(mail: &Mail, rules: &crate::Rules) -> Option<Returned> {
    let groups = dsn_groups(mail)?;
    let body = mail.body_text();
    let report = text::report_part(&body);
    let reporting_mta = groups
        .iter()
        .find_map(|g| fields::get(g, "reporting-mta"))
        .map(|v| fields::untyped(v).to_string());
    let mut recipients = Vec::new();
    let mut seen_any = false;
    for g in groups.iter().filter(|g| is_recipient_group(g)) {
        let address = fields::get(g, "final-recipient")
            .and_then(scan::address_in)
            .or_else(|| fields::get(g, "original-recipient").and_then(scan::address_in))
            .or_else(|| fields::get(g, "x-actual-recipient").and_then(scan::address_in))
            .or_else(|| fields::get(g, "final-recipient").map(|v| fields::untyped(v).to_string()));
        let Some(address) = address.filter(|a| !a.is_empty()) else {
            continue;
        };
        seen_any = true;
        let mut status = fields::get(g, "status").and_then(|s| scan::enhanced_code(s, &[2, 4, 5]));
        let diagnostic = fields::get(g, "diagnostic-code")
            .map(|d| fields::untyped(d).to_string())
            .filter(|d| !d.is_empty());
        let action = match fields::get(g, "action").map(|a| a.to_ascii_lowercase()) {
            Some(a) if a.starts_with("fail") => "failed",
            Some(a) if a.starts_with("delay") => "delayed",
            Some(a) if a.starts_with("deliver") => "delivered",
            Some(a) if a.starts_with("relay") => "relayed",
            Some(a) if a.starts_with("expand") => "expanded",
            _ => match status {
                Some((2, _, _)) => "delivered",
                Some((4, _, _)) => "delayed",
                _ => "failed",
            },
        };
        if action != "failed" && action != "delayed" {
            continue;
        }
        // The remote server's own enhanced code (the last one in the diagnostic, which is
        // the innermost reply when MTAs quote each other) wins over the reporting MTA's
        // summary: "Status: 5.0.0" with "550 5.1.1 user unknown" is 5.1.1.
        let typed = fields::get(g, "diagnostic-code").unwrap_or("");
        // A local delivery program: a diagnostic of type X-Unix (its exit status), or
        // Sendmail's X-Actual-Recipient naming a pipe ("|/usr/bin/procmail …").
        let local_mailer = typed
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("x-unix;")
            || fields::get(g, "x-actual-recipient")
                .is_some_and(|a| fields::untyped(a).trim_start().starts_with('|'));
        let paragraph = text::diagnostic_for(report, &address);
        // Without a Diagnostic-Code or a paragraph about the recipient, a comment in the
        // Status field is the only reason given ("Status: 4.0.0 (example.net: host name
        // lookup failure)", RFC 3464's own example).
        let status_comment = fields::get(g, "status")
            .and_then(|v| {
                // (A ")" before the first "(" is no comment: found by the fuzzer.)
                let open = v.find('(')? + 1;
                let close = v.rfind(')').filter(|c| *c >= open)?;
                Some(v[open..close].trim().to_string())
            })
            .filter(|c| !c.is_empty());
        let diagnostic = diagnostic.or_else(|| paragraph.clone()).or(status_comment);
        let diag_code = diagnostic
            .as_deref()
            .and_then(|d| scan::enhanced_codes(d, &[4, 5]).last());
        if let Some(d) = diag_code {
            status = Some(d);
        } else if matches!(status, Some((2, _, _))) {
            status = None;
        } else if let Some((c, 0, 0)) = status {
            // A generic status and a diagnostic without a code (Sendmail's "X-Unix; 255"):
            // the human-readable part may carry the specific one ("554 5.3.0 unknown
            // mailer error 255").
            if let Some(p) = paragraph
                .as_deref()
                .and_then(|p| scan::enhanced_codes(p, &[c]).last())
            {
                status = Some(p);
            }
        }
        let phase = diagnostic
            .as_deref()
            .and_then(crate::verdict::smtp_phase)
            .or_else(|| paragraph.as_deref().and_then(crate::verdict::smtp_phase))
            .or_else(|| {
                text::transcript_phase(report, &address, diagnostic.as_deref().unwrap_or(""))
            });
        let remote_mta = fields::get(g, "remote-mta").map(|v| fields::untyped(v).to_string());
        recipients.push(crate::recipient(crate::Evidence {
            address,
            status,
            diagnostic,
            remote_mta,
            action: Some(action.to_string()),
            context: report,
            phase,
            local_mailer,
            rules,
        }));
    }
    if !seen_any {
        return None;
    }
    if recipients.is_empty() {
        return Some(Returned::Unrecognised);
    }
    let mut original = crate::find_original(mail);
    if let Some(envid) = groups
        .iter()
        .find_map(|g| fields::get(g, "original-envelope-id"))
    {
        original
            .headers
            .push(("original-envelope-id".into(), envid.to_string()));
    }
    Some(Returned::Bounce(Bounce {
        recipients,
        original,
        reporting_mta,
    }))
}

/// A group describing one recipient.
fn is_recipient_group(g: &[Field]) -> bool {
    g.iter()
        .any(|(n, _)| n == "final-recipient" || n == "original-recipient")
}

/// Splits groups in which a recipient field repeats: some MTAs (AOL) write the
/// per-recipient groups without the blank lines between them.
fn split_recipients(groups: Vec<Vec<Field>>) -> Vec<Vec<Field>> {
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let mut current: Vec<Field> = Vec::new();
        for f in g {
            let repeats = (f.0 == "final-recipient" || f.0 == "original-recipient")
                && current.iter().any(|(n, _)| *n == f.0);
            if repeats {
                out.push(std::mem::take(&mut current));
            }
            current.push(f);
        }
        if !current.is_empty() {
            out.push(current);
        }
    }
    out
}

/// The field groups of the delivery-status part, or of whatever part carries DSN fields.
fn dsn_groups(mail: &Mail) -> Option<Vec<Vec<Field>>> {
    let typed = mail.leaves.iter().find(|l| {
        matches!(
            l.ctype.as_str(),
            "message/delivery-status" | "message/global-delivery-status"
        )
    });
    let candidates: Vec<&str> = match typed {
        Some(l) => vec![l.text.as_str()],
        None => mail
            .leaves
            .iter()
            .filter(|l| l.ctype.starts_with("text/") || l.ctype.starts_with("message/"))
            .filter(|l| l.ctype != "message/rfc822")
            .map(|l| l.text.as_str())
            .collect(),
    };
    for text in candidates {
        let groups = split_recipients(fields::groups(text));
        let has_rcpt = groups.iter().any(|g| {
            is_recipient_group(g)
                && g.iter()
                    .any(|(n, _)| n == "action" || n == "status" || n == "diagnostic-code")
        });
        if has_rcpt {
            return Some(groups);
        }
    }
    None
}
