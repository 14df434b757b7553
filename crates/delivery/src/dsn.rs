//! Delivery status notifications (RFC 3464) that petrel sends to the envelope sender when a
//! recipient fails for good, as PowerMTA does (pmta-spec §4.4). Never to a null sender.

use std::time::SystemTime;

use petrel_message::Headers;
use petrel_smtp::Notify;
use petrel_spool::{Envelope, Ret};

/// One failed recipient to report.
#[derive(Clone, Debug)]
pub struct FailedRecipient {
    /// The recipient address.
    pub rcpt: String,
    /// `ORCPT=` as received.
    pub orcpt: Option<String>,
    /// Enhanced status (`5.1.1`).
    pub status: String,
    /// The remote MTA's name, when one answered.
    pub remote_mta: Option<String>,
    /// `smtp; 550 5.1.1 ...` or a local explanation.
    pub diagnostic: String,
}

/// Whether the sender asked not to be told: `NOTIFY=NEVER`, or a NOTIFY list without FAILURE.
pub fn wants_failure_dsn(notify: Option<&[Notify]>) -> bool {
    notify.is_none_or(|n| n.contains(&Notify::Failure))
}

/// Builds the DSN message (headers and body, CRLF line ends) for `failed` recipients of the
/// message `original` with `envelope`.
pub fn build_failure_dsn(
    host: &str,
    envelope: &Envelope,
    original: &[u8],
    failed: &[FailedRecipient],
    now: SystemTime,
) -> Vec<u8> {
    let date = rfc2822(now);
    let arrival = rfc2822(
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(envelope.received_at_unix_ms),
    );
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let boundary = format!("petrel-dsn-{nanos:x}");
    let subject = Headers::parse(original).get("Subject").unwrap_or_default();
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n"
    ));
    m.push_str(&format!("To: <{}>\r\n", envelope.mail_from));
    m.push_str("Subject: Undelivered Mail Returned to Sender\r\n");
    m.push_str(&format!("Date: {date}\r\n"));
    m.push_str(&format!("Message-ID: <{nanos:x}.dsn@{host}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    m.push_str(&format!(
        "This is the mail system at host {host}.\r\n\r\nYour message{} could not be delivered to one or more recipients.\r\nIt has been returned to you with this report.\r\n\r\n",
        if subject.is_empty() { String::new() } else { format!(" \"{subject}\"") }
    ));
    for f in failed {
        m.push_str(&format!("<{}>: {}\r\n", f.rcpt, f.diagnostic));
    }
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    m.push_str(&format!("Reporting-MTA: dns; {host}\r\n"));
    if let Some(envid) = &envelope.env_id {
        m.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    m.push_str(&format!("Arrival-Date: {arrival}\r\n"));
    for f in failed {
        m.push_str("\r\n");
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.rcpt));
        if let Some(o) = &f.orcpt {
            m.push_str(&format!(
                "Original-Recipient: {}\r\n",
                o.replacen(';', "; ", 1)
            ));
        }
        m.push_str("Action: failed\r\n");
        m.push_str(&format!("Status: {}\r\n", f.status));
        if let Some(mta) = &f.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        m.push_str(&format!(
            "Diagnostic-Code: {}\r\n",
            f.diagnostic.replacen(';', "; ", 1)
        ));
        m.push_str(&format!("Last-Attempt-Date: {date}\r\n"));
    }
    let headers_only = matches!(envelope.ret, Some(Ret::Hdrs));
    m.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: {}\r\n\r\n",
        if headers_only {
            "text/rfc822-headers"
        } else {
            "message/rfc822"
        }
    ));
    let mut out = m.into_bytes();
    if headers_only {
        let end = find_header_end(original);
        out.extend_from_slice(&original[..end]);
    } else {
        out.extend_from_slice(original);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn find_header_end(m: &[u8]) -> usize {
    m.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .unwrap_or(m.len())
}

fn rfc2822(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_rules() {
        assert!(wants_failure_dsn(None));
        assert!(wants_failure_dsn(Some(&[Notify::Success, Notify::Failure])));
        assert!(!wants_failure_dsn(Some(&[Notify::Never])));
        assert!(!wants_failure_dsn(Some(&[Notify::Delay])));
    }

    #[test]
    fn dsn_has_the_three_parts() {
        let env = Envelope {
            mail_from: "sender@example.org".into(),
            recipients: vec![],
            vmta: "{default}".into(),
            job_id: None,
            env_id: Some("E1".into()),
            ret: Some(Ret::Hdrs),
            smtputf8: false,
            body_8bit: false,
            auth_user: None,
            client_ip: None,
            client_helo: None,
            received_at_unix_ms: 0,
            facts: Default::default(),
        };
        let dsn = build_failure_dsn(
            "mta.test",
            &env,
            b"Subject: hi\r\n\r\nsecret body\r\n",
            &[FailedRecipient {
                rcpt: "gone@example.com".into(),
                orcpt: Some("rfc822;gone@example.com".into()),
                status: "5.1.1".into(),
                remote_mta: Some("mx.example.com".into()),
                diagnostic: "smtp;550 5.1.1 no such user".into(),
            }],
            SystemTime::UNIX_EPOCH,
        );
        let s = String::from_utf8(dsn).unwrap();
        assert!(s.contains("report-type=delivery-status"));
        assert!(s.contains("Final-Recipient: rfc822; gone@example.com"));
        assert!(s.contains("Status: 5.1.1"));
        assert!(s.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user"));
        assert!(s.contains("Original-Envelope-Id: E1"));
        assert!(s.contains("text/rfc822-headers") && s.contains("Subject: hi"));
        assert!(!s.contains("secret body"), "RET=HDRS returns headers only");
    }
}
