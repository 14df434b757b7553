//! The messages the sink sends back: RFC 3464 delivery status notifications for
//! out-of-band bounces and RFC 5965 ARF feedback reports for complaints, each in the look of
//! the recipient's provider. Pure: the caller supplies the time and a unique id.
//!
//! What petrel's returns processor needs from them (`crates/bounce`, `crates/returns`): a
//! DSN goes to the message's return path (the signed VERP address names the copy) and has
//! a `message/delivery-status` part with `Final-Recipient`, `Action: failed`, `Status` and a
//! `Diagnostic-Code`; an ARF report has a `message/feedback-report` part with
//! `Original-Rcpt-To`, and the original with a `Return-Path:` field naming its return path.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::provider::{look, oob_diagnostic, Style};

/// What both kinds of report say about the message they are about.
pub struct Original<'a> {
    /// The message as received (CRLF line ends).
    pub message: &'a [u8],
    /// Its envelope sender (the return path).
    pub mail_from: &'a str,
    /// The recipient the report is about.
    pub rcpt: &'a str,
    /// The address the message came from (petrel's sending IP).
    pub client: IpAddr,
    /// When it was accepted.
    pub arrival: SystemTime,
    /// The recipient's provider style.
    pub style: Style,
}

/// RFC 5322 date.
fn date(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

/// The header section of `message` (without the blank line).
pub fn header_section(message: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(message, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| memchr::memmem::find(message, b"\n\n").map(|i| i + 1))
        .unwrap_or(message.len());
    &message[..end]
}

/// The unfolded value of the first header field called `name` (case-insensitive).
pub fn header_value(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(v) = found.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim().eq_ignore_ascii_case(name) {
                found = Some(v.trim().to_string());
            }
        }
    }
    found
}

fn push_lines(out: &mut Vec<u8>, lines: &[&str]) {
    for l in lines {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `bytes`, ending them with a line break if they lack one.
fn push_block(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    if !bytes.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// An out-of-band bounce of `o` from `host` (the reporting MTA): the mailbox "turned out
/// not to exist" after acceptance. `id` makes the Message-ID and boundary unique.
pub fn dsn(o: &Original<'_>, host: &str, now: SystemTime, id: u64) -> Vec<u8> {
    let lk = look(o.style);
    let header = header_section(o.message);
    let orig_subject = header_value(header, "subject").unwrap_or_default();
    let subject = if lk.subject_suffix {
        format!("{}{orig_subject}", lk.dsn_subject)
    } else {
        lk.dsn_subject.to_string()
    };
    let diag = oob_diagnostic(o.style, o.rcpt, o.client);
    let boundary = format!("=_sink-dsn-{id:x}");
    let mut out = Vec::with_capacity(header.len() + 2048);
    push_lines(
        &mut out,
        &[
            &format!("From: {}", lk.from),
            &format!("To: <{}>", o.mail_from),
            &format!("Subject: {subject}"),
            &format!("Date: {}", date(now)),
            &format!("Message-ID: <dsn-{id:x}@{host}>"),
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            &format!(
                "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
            ),
            "",
            "This is a MIME-encapsulated message.",
            "",
            &format!("--{boundary}"),
            "Content-Type: text/plain; charset=us-ascii",
            "",
            &format!("Your message to <{}> could not be delivered.", o.rcpt),
            "The mailbox was accepted at first, but it does not exist.",
            "",
            &format!("The remote server said: {diag}"),
            "",
            &format!("--{boundary}"),
            "Content-Type: message/delivery-status",
            "",
            &format!("Reporting-MTA: dns; {host}"),
            &format!("Arrival-Date: {}", date(o.arrival)),
            "",
            &format!("Final-Recipient: rfc822; {}", o.rcpt),
            "Action: failed",
            "Status: 5.1.1",
            &format!("Remote-MTA: dns; {host}"),
            &format!("Diagnostic-Code: smtp; {diag}"),
            &format!("Last-Attempt-Date: {}", date(now)),
            "",
            &format!("--{boundary}"),
            "Content-Type: text/rfc822-headers",
            "",
            &format!("Return-Path: <{}>", o.mail_from),
        ],
    );
    push_block(&mut out, header);
    push_lines(&mut out, &["", &format!("--{boundary}--")]);
    out
}

/// An ARF complaint about `o`, addressed to `feedback_to`: the recipient pressed "this is
/// spam". The original is attached whole, with the `Return-Path:` a mailbox adds.
pub fn arf(o: &Original<'_>, feedback_to: &str, host: &str, now: SystemTime, id: u64) -> Vec<u8> {
    let lk = look(o.style);
    let header = header_section(o.message);
    let orig_subject = header_value(header, "subject").unwrap_or_default();
    let reported = header_value(header, "from")
        .and_then(|f| domain_of_address(&f))
        .or_else(|| o.mail_from.rsplit_once('@').map(|(_, d)| d.to_string()))
        .unwrap_or_default();
    let boundary = format!("=_sink-arf-{id:x}");
    let mut out = Vec::with_capacity(o.message.len() + 2048);
    push_lines(
        &mut out,
        &[
            &format!("From: {}", lk.arf_from),
            &format!("To: <{feedback_to}>"),
            &format!("Subject: FW: {orig_subject}"),
            &format!("Date: {}", date(now)),
            &format!("Message-ID: <arf-{id:x}@{host}>"),
            "MIME-Version: 1.0",
            &format!(
                "Content-Type: multipart/report; report-type=feedback-report; boundary=\"{boundary}\""
            ),
            "",
            &format!("--{boundary}"),
            "Content-Type: text/plain; charset=us-ascii",
            "",
            &format!(
                "This is an email abuse report for an email message received from IP {} on {}.",
                o.client,
                date(o.arrival)
            ),
            "",
            &format!("--{boundary}"),
            "Content-Type: message/feedback-report",
            "",
            "Feedback-Type: abuse",
            &format!("User-Agent: {}", lk.arf_agent),
            "Version: 1",
            &format!("Original-Mail-From: <{}>", o.mail_from),
            &format!("Original-Rcpt-To: <{}>", o.rcpt),
            &format!("Arrival-Date: {}", date(o.arrival)),
            &format!("Reporting-MTA: dns; {host}"),
            &format!("Source-IP: {}", o.client),
            &format!("Reported-Domain: {reported}"),
            "",
            &format!("--{boundary}"),
            "Content-Type: message/rfc822",
            "Content-Disposition: inline",
            "",
            &format!("Return-Path: <{}>", o.mail_from),
        ],
    );
    push_block(&mut out, o.message);
    push_lines(&mut out, &[&format!("--{boundary}--")]);
    out
}

/// The domain of the first address in a `From:` value (`News <news@x.example>`).
fn domain_of_address(v: &str) -> Option<String> {
    let a = match (v.rfind('<'), v.rfind('>')) {
        (Some(s), Some(e)) if s < e => &v[s + 1..e],
        _ => v.trim(),
    };
    a.rsplit_once('@')
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_bounce::Returned;

    const MSG: &[u8] = b"From: News <news@brand.example>\r\nTo: ana@gmail.example\r\nSubject: Spring sale\r\nX-Job: spring\r\nMessage-ID: <m1@brand.example>\r\n\r\nHello\r\n";

    fn original(style: Style) -> Original<'static> {
        Original {
            message: MSG,
            mail_from: "news+abc234@bounces.brand.example",
            rcpt: "ana@gmail.example",
            client: "127.0.0.2".parse().unwrap(),
            arrival: SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
            style,
        }
    }

    #[test]
    fn petrel_reads_the_dsn_as_a_hard_bounce_of_the_copy() {
        for style in [Style::Gmail, Style::Microsoft, Style::Yahoo, Style::Generic] {
            let raw = dsn(&original(style), "mx.sink.test", SystemTime::now(), 7);
            let Returned::Bounce(b) = petrel_bounce::parse(&raw) else {
                panic!(
                    "{style:?}: not a bounce:\n{}",
                    String::from_utf8_lossy(&raw)
                );
            };
            assert_eq!(b.recipients.len(), 1);
            let r = &b.recipients[0];
            assert_eq!(r.address, "ana@gmail.example");
            assert_eq!(r.status.as_deref(), Some("5.1.1"));
            assert_eq!((r.bounce_class, r.hard), (10, true), "{style:?}: {r:?}");
            assert_eq!(r.reply_code, Some(550));
            assert_eq!(b.original.x_job.as_deref(), Some("spring"));
            assert_eq!(
                b.original.envelope_from.as_deref(),
                Some("news+abc234@bounces.brand.example")
            );
            assert_eq!(b.reporting_mta.as_deref(), Some("mx.sink.test"));
        }
    }

    #[test]
    fn petrel_reads_the_arf_report_as_a_complaint_about_the_copy() {
        for style in [Style::Gmail, Style::Microsoft, Style::Yahoo, Style::Generic] {
            let raw = arf(
                &original(style),
                "fbl@fbl.brand.example",
                "mx.sink.test",
                SystemTime::now(),
                9,
            );
            let Returned::Complaint(c) = petrel_bounce::parse(&raw) else {
                panic!(
                    "{style:?}: not a complaint:\n{}",
                    String::from_utf8_lossy(&raw)
                );
            };
            assert_eq!(c.recipients, vec!["ana@gmail.example".to_string()]);
            assert_eq!(c.feedback_type, "abuse");
            assert_eq!(c.source_ip.as_deref(), Some("127.0.0.2"));
            assert_eq!(c.reported_by.as_deref(), Some("brand.example"));
            assert_eq!(c.original.x_job.as_deref(), Some("spring"));
            assert_eq!(
                c.original.envelope_from.as_deref(),
                Some("news+abc234@bounces.brand.example")
            );
            assert_eq!(c.user_agent.as_deref(), Some(look(style).arf_agent));
        }
    }

    #[test]
    fn header_values_unfold() {
        let h = b"Subject: one\r\n two\r\nX-Job: a\r\n\r\nbody";
        assert_eq!(header_value(h, "subject").as_deref(), Some("one two"));
        assert_eq!(header_value(h, "x-job").as_deref(), Some("a"));
        assert_eq!(header_value(h, "from"), None);
        assert_eq!(header_section(h), b"Subject: one\r\n two\r\nX-Job: a\r\n");
    }
}
