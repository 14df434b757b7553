//! The returned message, flattened with `mail-parser` into what the report parsers need:
//! the top-level header, and each leaf part's content type and decoded text.

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::fields::{self, Field};
use crate::ParseError;

/// One leaf part of the returned message.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// `type/subtype`, lower case (`text/plain` when the part has no Content-Type).
    pub ctype: String,
    /// The decoded content as text (lossy for non-UTF-8 binary parts; for a
    /// `message/rfc822` part, the raw returned message).
    pub text: String,
}

/// The parsed outer message.
#[derive(Debug)]
pub(crate) struct Mail {
    /// Top-level header fields, unfolded, names in lower case.
    pub header: Vec<Field>,
    /// Decoded Subject.
    pub subject: String,
    /// `report-type` of a top-level multipart/report, lower case.
    pub report_type: Option<String>,
    /// Leaf parts in order.
    pub leaves: Vec<Leaf>,
}

impl Mail {
    /// The first leaf of type `ctype`.
    pub fn leaf(&self, ctype: &str) -> Option<&Leaf> {
        self.leaves.iter().find(|l| l.ctype == ctype)
    }

    /// The human-readable text: text/plain parts, or html converted to text when there is
    /// no plain part, excluding report and returned-message parts.
    pub fn body_text(&self) -> String {
        let plain: Vec<&str> = self
            .leaves
            .iter()
            .filter(|l| l.ctype == "text/plain")
            .map(|l| l.text.as_str())
            .collect();
        if !plain.is_empty() {
            return plain.join("\n");
        }
        self.leaves
            .iter()
            .filter(|l| l.ctype == "text/html")
            .map(|l| mail_parser::decoders::html::html_to_text(&l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Parses `raw` into a [`Mail`].
pub(crate) fn parse(raw: &[u8]) -> Result<Mail, ParseError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // mail-parser 0.11 panics ("Invalid part ID") on some malformed multiparts (found by
    // fuzzing); returned mail is attacker-controlled, so the panic must stay contained.
    let msg = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .map_err(|_| ParseError::Malformed)?
        .ok_or(ParseError::NoHeader)?;
    let head_end = find_blank_line(raw).unwrap_or(raw.len());
    let header = fields::header_section(&String::from_utf8_lossy(&raw[..head_end]));
    if header.is_empty() {
        return Err(ParseError::NoHeader);
    }
    let report_type = msg
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .map(|r| r.to_ascii_lowercase());
    let mut leaves = Vec::new();
    for part in &msg.parts {
        let ctype = match part.content_type() {
            Some(ct) => format!(
                "{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            ),
            None => "text/plain".to_string(),
        };
        let text = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            PartType::Message(m) => String::from_utf8_lossy(m.raw_message()).into_owned(),
            PartType::Multipart(_) => continue,
        };
        let ctype = match &part.body {
            PartType::Message(_) if !ctype.starts_with("message/") => "message/rfc822".into(),
            // A multipart whose boundary never appears comes back as one text part.
            _ if ctype.starts_with("multipart/") => "text/plain".into(),
            _ => ctype,
        };
        leaves.push(Leaf { ctype, text });
    }
    // A multipart whose boundary never appears (seen in the wild): read the body as text.
    if leaves.iter().all(|l| l.text.trim().is_empty()) {
        leaves = vec![Leaf {
            ctype: "text/plain".into(),
            text: String::from_utf8_lossy(&raw[head_end..]).into_owned(),
        }];
    }
    Ok(Mail {
        header,
        subject: msg.subject().unwrap_or("").to_string(),
        report_type,
        leaves,
    })
}

/// The offset of the blank line ending the header section.
fn find_blank_line(raw: &[u8]) -> Option<usize> {
    let mut prev_nl = true;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            if prev_nl && i > 0 {
                return Some(i);
            }
            prev_nl = true;
        } else if b != b'\r' {
            prev_nl = false;
        }
    }
    None
}
