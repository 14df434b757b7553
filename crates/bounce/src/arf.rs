//! Feedback-loop complaints: RFC 5965 ARF (`multipart/report;
//! report-type=feedback-report` with a `message/feedback-report` part of `Name: value`
//! fields) and Microsoft's JMRP (a returned original carrying
//! `X-HmXmrOriginalRecipient`).

use crate::fields::{self, Field};
use crate::mime::Mail;
use crate::{scan, Complaint};

/// The complaint in `mail`, if it is one.
pub(crate) fn complaint(mail: &Mail) -> Option<Complaint> {
    arf(mail).or_else(|| jmrp(mail))
}

/// RFC 5965 §3: the machine-readable part.
fn arf(mail: &Mail) -> Option<Complaint> {
    let report = mail
        .leaf("message/feedback-report")
        .map(|l| l.text.as_str())
        .or_else(|| {
            if mail.report_type.as_deref() != Some("feedback-report") {
                return None;
            }
            mail.leaves.iter().map(|l| l.text.as_str()).find(|t| {
                fields::groups(t)
                    .iter()
                    .flatten()
                    .any(|(n, _)| n == "feedback-type")
            })
        })?;
    let f: Vec<Field> = fields::groups(report).into_iter().flatten().collect();
    let feedback_type = fields::get(&f, "feedback-type")?.to_ascii_lowercase();
    let original = crate::find_original(mail);
    let mut recipients: Vec<String> = f
        .iter()
        .filter(|(n, _)| n == "original-rcpt-to" || n == "removal-recipient")
        .filter_map(|(_, v)| scan::address_in(v))
        .collect();
    if recipients.is_empty() {
        recipients = original_to(&original.headers);
    }
    let reported_by = fields::get(&f, "reported-domain")
        .map(str::to_string)
        .or_else(|| report_from_domain(&mail.header));
    Some(Complaint {
        feedback_type,
        user_agent: fields::get(&f, "user-agent").map(str::to_string),
        reported_by,
        recipients,
        source_ip: fields::get(&f, "source-ip").map(str::to_string),
        arrival_date: fields::get(&f, "arrival-date")
            .or_else(|| fields::get(&f, "received-date"))
            .map(str::to_string),
        original,
    })
}

/// Hotmail/Outlook.com JMRP: not ARF, but the returned original has
/// `X-HmXmrOriginalRecipient` naming the complainer (pmta-spec §4.3).
fn jmrp(mail: &Mail) -> Option<Complaint> {
    let leaf = mail.leaf("message/rfc822")?;
    let header = fields::header_section(leaf.text.trim_start());
    let rcpt = fields::get(&header, "x-hmxmroriginalrecipient")?;
    let recipients = scan::addresses(rcpt);
    Some(Complaint {
        feedback_type: "abuse".into(),
        user_agent: None,
        reported_by: report_from_domain(&mail.header),
        recipients,
        source_ip: fields::get(&header, "x-originating-ip").map(|v| {
            v.trim_matches(|c| c == '[' || c == ']' || c == ' ')
                .to_string()
        }),
        arrival_date: fields::get(&header, "date").map(str::to_string),
        original: crate::original_refs(header),
    })
}

/// The addresses in the returned original's To.
fn original_to(header: &[(String, String)]) -> Vec<String> {
    fields::get(header, "to")
        .map(scan::addresses)
        .unwrap_or_default()
}

/// The domain of the report's own From.
fn report_from_domain(header: &[Field]) -> Option<String> {
    let from = scan::address_in(fields::get(header, "from")?)?;
    from.rsplit_once('@').map(|(_, d)| d.to_string())
}
