//! Amazon SES notifications delivered by e-mail through SNS: a text body holding one JSON
//! object, `{"notificationType":"Bounce"|"Complaint"|"Delivery", "bounce": {…},
//! "complaint": {…}, "mail": {…}}`, sometimes wrapped in an SNS envelope
//! (`{"Type":"Notification","Message":"<the same object as a string>"}`).
//!
//! The JSON reader is hand-written (the crate has no JSON dependency) and bounded: nesting
//! deeper than [`MAX_DEPTH`] or anything malformed gives up, never panics.

use crate::fields::{self, Field};
use crate::mime::Mail;
use crate::{scan, Bounce, Complaint, Returned};

/// The deepest nesting the reader follows (SES notifications nest four levels).
const MAX_DEPTH: usize = 32;

/// How many `{` at line starts are tried as the start of the notification.
const MAX_ATTEMPTS: usize = 4;

/// A parsed JSON value. Numbers are kept as their text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of member `key`, if it is a non-empty string.
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        }
    }

    /// The elements of member `key`, if it is an array.
    fn array(&self, key: &str) -> &[Json] {
        match self.get(key) {
            Some(Json::Array(items)) => items,
            _ => &[],
        }
    }
}

/// Parses one JSON value at the start of `text` (leading whitespace allowed; what follows
/// the value is ignored).
pub(crate) fn parse_json(text: &str) -> Option<Json> {
    let mut r = Reader {
        b: text.as_bytes(),
        i: 0,
    };
    r.value(0)
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Some(value)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Object(members));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b'}').then_some(Json::Object(members));
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(Json::Array(items));
                }
            }
            b'"' => self.string().map(Json::String),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            c if c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self
                    .b
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                {
                    self.i += 1;
                }
                let n = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
                Some(Json::Number(n))
            }
            _ => None,
        }
    }

    /// A string starting at the opening quote. Raw control characters are accepted (mail
    /// transport sometimes folds long JSON lines inside strings).
    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }

    /// The character of a `\uXXXX` escape (after the `u`), joining surrogate pairs; a lone
    /// surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
            let save = self.i;
            self.i += 2;
            match self.hex4() {
                Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return Some(char::from_u32(c).unwrap_or('\u{FFFD}'));
                }
                _ => self.i = save,
            }
        }
        Some(char::from_u32(hi).unwrap_or('\u{FFFD}'))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + 4)?;
        let s = std::str::from_utf8(digits).ok()?;
        let v = u32::from_str_radix(s, 16).ok()?;
        self.i += 4;
        Some(v)
    }
}

/// The SES notification in `mail`, if its text is one: a bounce, a complaint, or
/// `Unrecognised` for delivery notifications (successes).
pub(crate) fn notification(mail: &Mail, rules: &crate::Rules) -> Option<Returned> {
    let body = mail.body_text();
    if !body.contains("notificationType") {
        return None;
    }
    // Lines longer than SMTP allows come back broken as "…!" CRLF SP "…" (Sendmail's and
    // others' line splitting); the JSON is one long line.
    let body = body.replace("!\r\n ", "").replace("!\n ", "");
    let n = find_notification(&body)?;
    match n.str("notificationType")? {
        "Bounce" => bounce(&n, rules).map(Returned::Bounce),
        "Complaint" => complaint(&n, mail).map(Returned::Complaint),
        _ => Some(Returned::Unrecognised),
    }
}

/// The notification object: the first JSON object at a line start that has
/// `notificationType`, directly or as the SNS envelope's `Message` string.
fn find_notification(body: &str) -> Option<Json> {
    let starts = body
        .match_indices('{')
        .filter(|(i, _)| body[..*i].ends_with('\n') || body[..*i].trim().is_empty())
        .take(MAX_ATTEMPTS);
    for (i, _) in starts {
        let Some(v) = parse_json(&body[i..]) else {
            continue;
        };
        if v.get("notificationType").is_some() {
            return Some(v);
        }
        if let Some(inner) = v.str("Message").and_then(parse_json) {
            if inner.get("notificationType").is_some() {
                return Some(inner);
            }
        }
    }
    None
}

/// The original message as SES reports it: `mail.headers` (when the sender let SES include
/// them), `mail.source` as the envelope sender.
fn original(n: &Json) -> crate::OriginalRefs {
    let mail = n.get("mail");
    let headers: Vec<Field> = mail
        .map(|m| m.array("headers"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|h| {
            let name = h.str("name")?;
            Some((name.to_ascii_lowercase(), h.str("value")?.to_string()))
        })
        .collect();
    let mut refs = crate::original_refs(headers);
    if refs.envelope_from.is_none() {
        refs.envelope_from = mail
            .and_then(|m| m.str("source"))
            .and_then(scan::address_in);
    }
    refs
}

fn bounce(n: &Json, rules: &crate::Rules) -> Option<Bounce> {
    let b = n.get("bounce")?;
    let permanent = b.str("bounceType") == Some("Permanent");
    let recipients: Vec<_> = b
        .array("bouncedRecipients")
        .iter()
        .filter_map(|r| {
            let address = r.str("emailAddress").and_then(scan::address_in)?;
            let diagnostic = r
                .str("diagnosticCode")
                .map(|d| fields::untyped(d).to_string());
            let status = r
                .str("status")
                .and_then(|s| scan::enhanced_code(s, &[4, 5]))
                .or_else(|| {
                    diagnostic
                        .as_deref()
                        .and_then(|d| scan::enhanced_codes(d, &[4, 5]).last())
                });
            let action = match r.str("action") {
                Some(a) if a.eq_ignore_ascii_case("delayed") => "delayed",
                _ => "failed",
            };
            // A transient bounce without a status of its own: SES gave up after
            // temporary failures.
            let status = status.or((!permanent && diagnostic.is_none()).then_some((4, 0, 0)));
            Some(crate::recipient(crate::Evidence {
                address,
                status,
                diagnostic,
                remote_mta: r.str("remoteMtaIp").map(str::to_string),
                action: Some(action.to_string()),
                context: "",
                phase: None,
                local_mailer: false,
                rules,
            }))
        })
        .collect();
    if recipients.is_empty() {
        return None;
    }
    Some(Bounce {
        recipients,
        original: original(n),
        reporting_mta: b
            .str("reportingMTA")
            .map(|m| fields::untyped(m).to_string()),
    })
}

fn complaint(n: &Json, mail: &Mail) -> Option<Complaint> {
    let c = n.get("complaint")?;
    let recipients: Vec<String> = c
        .array("complainedRecipients")
        .iter()
        .filter_map(|r| r.str("emailAddress").and_then(scan::address_in))
        .collect();
    let reported_by = fields::get(&mail.header, "from")
        .and_then(scan::address_in)
        .and_then(|a| a.rsplit_once('@').map(|(_, d)| d.to_string()));
    Some(Complaint {
        feedback_type: c
            .str("complaintFeedbackType")
            .unwrap_or("abuse")
            .to_ascii_lowercase(),
        user_agent: c.str("userAgent").map(str::to_string),
        reported_by,
        recipients,
        source_ip: n
            .get("mail")
            .and_then(|m| m.str("sourceIp"))
            .map(str::to_string),
        arrival_date: c
            .str("arrivalDate")
            .or_else(|| c.str("timestamp"))
            .map(str::to_string),
        original: original(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values() {
        let v =
            parse_json(r#" {"a":[1,-2.5e3,true,false,null],"b":"x\"\u00e9\ud83d\ude00\n"} tail"#)
                .unwrap();
        assert_eq!(v.str("b"), Some("x\"é😀"));
        assert_eq!(v.array("a").len(), 5);
        assert_eq!(v.array("a")[0], Json::Number("1".into()));
        for bad in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":}",
            "[1,]",
            "\"\\q\"",
            "\"\\ud800",
            "{\"a\":1 \"b\":2}",
        ] {
            assert_eq!(parse_json(bad), None, "{bad:?}");
        }
        // A lone surrogate is replaced, not an error.
        assert_eq!(
            parse_json(r#""\ud800x""#),
            Some(Json::String("\u{FFFD}x".into()))
        );
        // Deep nesting gives up instead of exhausting the stack.
        let deep = "[".repeat(10_000);
        assert_eq!(parse_json(&deep), None);
    }
}
