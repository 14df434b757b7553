//! Non-standard bounces: heuristics over the human-readable text that MTAs without RFC 3464
//! support send (qmail, Exim, Postfix and Sendmail plain forms, Exchange, Gmail, Yahoo,
//! Domino, Courier, …).
//!
//! The text before the returned original (cut at "copy of the message"-style markers) is
//! read line by line. A line that starts with an address (`<a@b>:`, `a@b`, `To: a@b`,
//! `550 <a@b>... User unknown`) opens a recipient block; the following lines, up to the
//! next recipient or the first blank line after a reply code, are its diagnostic. When no
//! line names a recipient, `X-Failed-Recipients`, the first other address in the text and
//! the returned original's To are tried in turn. A Sendmail session transcript (`>>> DATA`,
//! `<<< 550 …`) tells which SMTP command a reply answered ([`transcript_phase`]).

use crate::fields::{self, Field};
use crate::mime::Mail;
use crate::verdict::{collapse, SmtpPhase};
use crate::{autoreply, scan, Bounce};

/// Lines (lower case) after which the returned original follows.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "copy of the first part of the message",
    "original message follows",
    "----- original message",
    "-----original message",
    "--- original message",
    "original message header",
    "message header follows",
    "header of the original message",
    "headers of the original message",
    "unsent message below",
    "unsent message follows",
    // Lotus Notes: "------- Returned Message --------".
    "- returned message -",
    "returned message follows",
    "----- message text follows",
    "start of returned message",
    "returned mail follows",
    "content-type: message/rfc822",
    "your message reads",
    "message headers follow",
    "original mail follows",
    "------ original message",
    "---- the following is the original message",
    "copy of the original message",
    "below is a copy",
];

/// Phrases (lower case) that mark a text as a delivery report.
const BOUNCE_PHRASES: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "was not delivered",
    "wasn't delivered",
    "not be delivered",
    "undeliverable",
    "delivery has failed",
    "delivery failed",
    "delivery to the following",
    "permanent error",
    "permanent fatal error",
    "unable to deliver",
    "wasn't able to deliver",
    "was unable to deliver",
    "following address(es) failed",
    "following addresses had",
    "following recipient",
    "delivery status notification",
    "mail delivery software",
    "qmail-send program",
    "mail system at host",
    "message was not sent",
    "has been delayed",
    "delivery problem",
    "could not deliver",
    "failed to deliver",
    "returned to sender",
    "message you sent",
    "not delivered to",
    "delivery attempts",
    "retry timeout",
    "did not reach",
    "rejected",
];

/// Whether a (lower-case) Subject is a delivery report's.
pub(crate) fn bounce_subject(s: &str) -> bool {
    [
        "undeliver",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "failure notice",
        "failure delivery",
        "returned mail",
        "mail delivery failed",
        "delivery notification",
        "nondeliverable",
        "non-deliverable",
        "non remis",
        "not delivered",
        "could not be delivered",
        "delivery problem",
        "mail system error",
        "returned to sender",
        "delivery has failed",
        "could not send",
        "delayed mail",
        "delivery delayed",
        "message delayed",
        "failed delivery",
        "delivery final failure",
        "mail failure",
        "unable to deliver",
        "unzustellbar",
        "error sending",
        "rejected",
        "bounced",
        "delivery error",
        "message not delivered",
        "warning: message",
        "problem delivering",
    ]
    .iter()
    .any(|p| s.contains(p))
}

/// The index of the first line of the returned original in `body`, if marked.
fn original_start(body: &str) -> Option<usize> {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let l = line.to_lowercase();
        let t = l.trim_start();
        if ORIGINAL_MARKERS.iter().any(|m| l.contains(m))
            || t.starts_with("return-path:")
            || (t.starts_with("received: from") && line.starts_with(['R', 'r']))
        {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The report part of a body: everything before the returned original.
pub(crate) fn report_part(body: &str) -> &str {
    match original_start(body) {
        Some(i) => &body[..i],
        None => body,
    }
}

/// Header fields quoted inline after the report text (non-MIME bounces).
pub(crate) fn inline_original(body: &str) -> Option<Vec<Field>> {
    let start = original_start(body)?;
    let rest = &body[start..];
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let l = line.to_ascii_lowercase();
        if [
            "return-path:",
            "received:",
            "message-id:",
            "from:",
            "to:",
            "subject:",
            "date:",
            "x-",
            "dkim-signature:",
            "mime-version:",
            "reply-to:",
        ]
        .iter()
        .any(|h| l.starts_with(h))
        {
            let h = fields::header_section(&rest[offset..]);
            let useful = h.iter().any(|(n, _)| {
                matches!(
                    n.as_str(),
                    "message-id" | "from" | "to" | "subject" | "return-path" | "x-job"
                )
            });
            if useful {
                return Some(h);
            }
        }
        offset += line.len();
    }
    None
}

/// The paragraph of `report` that mentions `address` with a reply or status code: the
/// diagnostic a DSN without `Diagnostic-Code` gives only in its text part.
pub(crate) fn diagnostic_for(report: &str, address: &str) -> Option<String> {
    let needle = address.to_ascii_lowercase();
    if let Some(b) = blocks(report, &|_| false)
        .into_iter()
        .find(|b| b.address.eq_ignore_ascii_case(address) && b.has_code())
    {
        return Some(b.text());
    }
    let paragraphs = paragraphs(report);
    let with_code =
        |p: &&String| scan::reply_code(p).is_some() || scan::enhanced_code(p, &[4, 5]).is_some();
    let mentioning: Vec<&String> = paragraphs
        .iter()
        .filter(|p| p.to_ascii_lowercase().contains(&needle))
        .collect();
    if let Some(p) = mentioning.iter().find(|p| with_code(p)) {
        return Some(p.to_string());
    }
    // A one-recipient report often puts the address and the reason in separate paragraphs.
    let i = paragraphs
        .iter()
        .position(|p| p.to_ascii_lowercase().contains(&needle))?;
    paragraphs[i + 1..]
        .iter()
        .take(4)
        .find(with_code)
        .map(|p| p.to_string())
}

/// The SMTP phase of the reply to `address` in a Sendmail-style session transcript
/// (`>>> COMMAND` / `<<< reply`): the last command sent before the reply that names the
/// address or is the recipient's `diagnostic`. With PIPELINING the RCPT TO replies arrive
/// after `>>> DATA`; Sendmail then writes its own line for the recipient under the reply
/// (`550 5.1.1 <a@b>... User unknown`), which marks it as a RCPT TO reply. A DATA failure
/// gets a line without the address (`554 5.0.0 Service unavailable`).
pub(crate) fn transcript_phase(report: &str, address: &str, diagnostic: &str) -> Option<SmtpPhase> {
    let addr = address.to_lowercase();
    let diag = collapse(fields::untyped(diagnostic));
    let diag = diag.trim();
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let mut command = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(cmd) = line.strip_prefix(">>>") {
            command = command_phase(cmd);
            continue;
        }
        let Some(reply) = line.strip_prefix("<<<") else {
            continue;
        };
        let reply = collapse(reply);
        let reply = reply.trim();
        let ours = reply.contains(&addr)
            || (reply.len() > 5
                && diag.len() > 5
                && (diag.contains(reply) || reply.contains(diag)));
        if !ours {
            continue;
        }
        let phase = command?;
        let own_line = lines
            .get(i + 1)
            .filter(|l| !l.starts_with("<<<") && !l.starts_with(">>>"))
            .is_some_and(|l| l.to_lowercase().contains(&addr));
        return Some(if phase == SmtpPhase::Data && own_line {
            SmtpPhase::RcptTo
        } else {
            phase
        });
    }
    None
}

/// The phase of a command line of a transcript (`RCPT To:<a@b>`, `DATA`, `.`).
fn command_phase(cmd: &str) -> Option<SmtpPhase> {
    let c = cmd.trim().to_ascii_uppercase();
    let phase = if c.starts_with("RCPT") {
        SmtpPhase::RcptTo
    } else if c.starts_with("MAIL") {
        SmtpPhase::MailFrom
    } else if c.starts_with("DATA") || c == "." {
        SmtpPhase::Data
    } else if c.starts_with("EHLO") || c.starts_with("HELO") {
        SmtpPhase::Helo
    } else {
        return None;
    };
    Some(phase)
}

/// Blank-line separated paragraphs, whitespace collapsed.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(&line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Line prefixes (lower case) before a recipient address.
const RCPT_PREFIXES: &[&str] = &[
    "final-recipient:",
    "original-recipient:",
    "failed recipient:",
    "failed recipients:",
    "recipient address:",
    "recipient:",
    "recipients:",
    "rcpt to:",
    "address:",
    "addresses:",
    "e-mail:",
    "email:",
    "to:",
    "user:",
    "mailbox:",
    "destinataire:",
    "empfänger:",
    "- ",
    "* ",
    "• ",
];

/// The address a line starts with (after a known prefix or a leading reply/status code),
/// and the rest of the line.
fn leading_address(line: &str) -> Option<(String, String)> {
    let mut t = line.trim();
    let lower = t.to_lowercase();
    if t.starts_with(">>>") || lower.starts_with("rcpt to") && !lower.starts_with("rcpt to:") {
        return None;
    }
    for p in RCPT_PREFIXES {
        if lower.starts_with(p) && t.is_char_boundary(p.len()) {
            t = t[p.len()..].trim_start();
            break;
        }
    }
    // "<<< 550 5.1.1 <a@b>... User unknown", "550 <a@b>... User unknown"
    let t0 = t.trim_start_matches("<<<").trim_start();
    let mut rest = t0;
    let mut had_code = false;
    if scan::reply_code(rest.get(..3).unwrap_or("")).is_some() && rest.len() > 4 {
        rest = rest[3..].trim_start_matches(['-', ' ']);
        had_code = true;
        let first_word = rest.split(' ').next().unwrap_or("");
        if scan::enhanced_code(first_word, &[4, 5]).is_some() {
            rest = rest.split_once(' ').map(|x| x.1).unwrap_or("");
        }
    }
    let t = if had_code { rest } else { t };
    let token_end = t
        .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(')
        .unwrap_or(t.len());
    let token = &t[..token_end];
    let mut core = token.trim_start_matches(['<', '"', '\'', '[']);
    core = core.trim_end_matches(['.', ':', '>', '"', '\'', ']']);
    if let Some(i) = core.find('>') {
        core = &core[..i];
    }
    core.find('@')?;
    let found = scan::addresses(core);
    let addr = found.first()?;
    if !addr.eq_ignore_ascii_case(core) {
        return None;
    }
    let tail = t[token_end..].trim();
    let rest = if had_code {
        t0.to_string()
    } else {
        tail.to_string()
    };
    Some((addr.clone(), rest))
}

/// Addresses that are never the failed recipient: the report's own From and To (the
/// original sender), and postmaster-like mailboxes.
fn excluded(mail: &Mail) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["from", "to", "return-path", "reply-to", "sender"] {
        if let Some(v) = fields::get(&mail.header, name) {
            out.extend(
                scan::addresses(v)
                    .into_iter()
                    .map(|a| a.to_ascii_lowercase()),
            );
        }
    }
    out
}

fn is_service_address(a: &str) -> bool {
    let local = a.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "mailerdaemon" | "mailer_daemon" | "noreply" | "no-reply"
    )
}

/// A recipient block being read.
struct Block {
    address: String,
    lines: Vec<String>,
    closed: bool,
}

impl Block {
    fn text(&self) -> String {
        self.lines
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn has_code(&self) -> bool {
        let t = self.text();
        scan::reply_code(&t).is_some() || scan::enhanced_code(&t, &[4, 5]).is_some()
    }
}

/// A transcript line that belongs to no recipient block: Sendmail's start of another SMTP
/// session ("While talking to mx.example.org:") or its status line about a host rather
/// than an address ("550 example.org (smtp)... 550 Host unknown").
fn ends_block(line: &str) -> bool {
    let lower = line.to_lowercase();
    if lower
        .trim_start_matches(['.', ' '])
        .starts_with("while talking to")
    {
        return true;
    }
    if scan::reply_code(line.get(..3).unwrap_or("")).is_none() {
        return false;
    }
    // "NNN who... why" where who is a host name, optionally with its mailer: "(smtp)".
    let rest = line.get(3..).unwrap_or("").trim_start();
    let Some((who, _)) = rest.split_once("... ") else {
        return false;
    };
    let host = who.split_once(' ').map_or(who, |(h, mailer)| {
        if mailer.starts_with('(') && mailer.ends_with(')') {
            h
        } else {
            ""
        }
    });
    !host.is_empty() && host.contains('.') && !host.contains('@')
}

/// Recipient blocks of a report: lines that start with an address (not `skip`ped) and the
/// lines that follow them.
fn blocks(report: &str, skip: &dyn Fn(&str) -> bool) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut current: Option<usize> = None;
    for line in report.lines() {
        let t = line.trim();
        if t.is_empty() {
            if let Some(i) = current {
                if blocks[i].has_code() {
                    blocks[i].closed = true;
                    current = None;
                }
            }
            continue;
        }
        if let Some((addr, rest)) = leading_address(t).filter(|(a, _)| !skip(a)) {
            let i = match blocks
                .iter()
                .position(|b| b.address.eq_ignore_ascii_case(&addr))
            {
                Some(i) => i,
                None => {
                    blocks.push(Block {
                        address: addr,
                        lines: Vec::new(),
                        closed: false,
                    });
                    blocks.len() - 1
                }
            };
            if !rest.is_empty() {
                blocks[i].lines.push(rest);
            }
            blocks[i].closed = false;
            current = Some(i);
            continue;
        }
        if let Some(i) = current {
            if ends_block(t) {
                blocks[i].closed = true;
                current = None;
            } else if !blocks[i].closed && blocks[i].lines.len() < 20 {
                blocks[i].lines.push(t.to_string());
            }
        }
    }

    blocks
}

/// A non-standard bounce in `mail`, if the text reads like one and names a recipient.
pub(crate) fn bounce(mail: &Mail, rules: &crate::Rules) -> Option<Bounce> {
    let body = mail.body_text();
    let report = report_part(&body);
    let lower = report.to_lowercase();
    let subject = mail.subject.to_lowercase();
    let failed_hdr = fields::get(&mail.header, "x-failed-recipients");
    let looks_like = autoreply::from_daemon(mail)
        || bounce_subject(&subject)
        || failed_hdr.is_some()
        || BOUNCE_PHRASES.iter().any(|p| lower.contains(p));
    if !looks_like {
        return None;
    }
    let mut excluded = excluded(mail);
    let original = crate::find_original(mail);
    for name in ["from", "return-path", "sender"] {
        if let Some(v) = fields::get(&original.headers, name) {
            excluded.extend(
                scan::addresses(v)
                    .into_iter()
                    .map(|a| a.to_ascii_lowercase()),
            );
        }
    }
    let skip = |a: &str| {
        let a = a.to_ascii_lowercase();
        excluded.contains(&a) || is_service_address(&a)
    };

    // Exchange 2003 quotes the original's To and Subject ("Your message / To: a@b /
    // Subject: …") before "did not reach the following recipient(s):"; the recipients
    // follow that line.
    let listed = recipient_list(report);
    let mut blocks = blocks(listed, &skip);
    if blocks.is_empty() {
        // The failed address may be the sender's own (a message sent to oneself).
        blocks = self::blocks(listed, &is_service_address);
    }

    if blocks.is_empty() {
        let candidates: Vec<String> = failed_hdr
            .map(scan::addresses)
            .filter(|v| !v.is_empty())
            .or_else(|| {
                scan::addresses(report)
                    .into_iter()
                    .find(|a| !skip(a))
                    .map(|a| vec![a])
            })
            .or_else(|| {
                fields::get(&original.headers, "to")
                    .and_then(|t| scan::addresses(t).into_iter().find(|a| !skip(a)))
                    .map(|a| vec![a])
            })?;
        let single = candidates.len() == 1;
        for a in candidates {
            // One recipient that the text does not name next to the reason (Exim's
            // "The following address(es) failed: kijitora" without a domain): the
            // paragraphs with a reply code are its diagnostic.
            let lines = diagnostic_for(report, &a)
                .or_else(|| single.then(|| coded_paragraphs(report)).flatten())
                .into_iter()
                .collect();
            blocks.push(Block {
                address: a,
                lines,
                closed: true,
            });
        }
    }

    let delayed_report = [
        "warning message only",
        "has been delayed",
        "have been delayed",
        "delivery is delayed",
        "will be retried",
        "will continue trying",
        "will keep trying",
        "still trying",
        "delivery delayed",
        "not yet been delivered",
        "do not need to resend",
    ]
    .iter()
    .any(|p| lower.contains(p) || subject.contains(p));

    let context = fold(report);
    let recipients = blocks
        .into_iter()
        .map(|b| {
            let mut diag = b.text();
            if !b.has_code() {
                if let Some(d) = diagnostic_for(report, &b.address) {
                    if !diag.is_empty() {
                        diag.push(' ');
                    }
                    diag.push_str(&d);
                }
            }
            let status = scan::enhanced_codes(&diag, &[4, 5]).last();
            let code = scan::reply_code(&diag);
            let permanent_code = status.map(|s| s.0 == 5).or(code.map(|c| c >= 500));
            let delayed = match permanent_code {
                Some(p) => !p && delayed_report,
                None => delayed_report,
            };
            let action = if delayed { "delayed" } else { "failed" };
            let context_for = if diag.is_empty() {
                context.as_str()
            } else {
                ""
            };
            let phase = transcript_phase(report, &b.address, &diag);
            crate::recipient(crate::Evidence {
                address: b.address,
                status,
                diagnostic: Some(diag),
                remote_mta: None,
                action: Some(action.to_string()),
                context: context_for,
                phase,
                local_mailer: false,
                rules,
            })
        })
        .collect();
    Some(Bounce {
        recipients,
        original,
        reporting_mta: None,
    })
}

/// Lines (lower case) after which a report lists its failed recipients, when what comes
/// before them quotes the original message's own header fields.
const RECIPIENT_LIST_INTROS: &[&str] = &["did not reach the following recipient"];

/// The part of `report` that lists recipients: after a [`RECIPIENT_LIST_INTROS`] line,
/// else all of it.
fn recipient_list(report: &str) -> &str {
    let mut offset = 0;
    for line in report.split_inclusive('\n') {
        offset += line.len();
        let l = line.to_lowercase();
        if RECIPIENT_LIST_INTROS.iter().any(|m| l.contains(m)) {
            return &report[offset..];
        }
    }
    report
}

/// The paragraphs of `report` that carry a reply or enhanced status code, joined.
fn coded_paragraphs(report: &str) -> Option<String> {
    let found: Vec<String> = paragraphs(report)
        .into_iter()
        .filter(|p| scan::reply_code(p).is_some() || scan::enhanced_code(p, &[4, 5]).is_some())
        .collect();
    (!found.is_empty()).then(|| found.join(" "))
}

/// Whitespace-collapsed text.
fn fold(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
