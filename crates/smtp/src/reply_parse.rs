//! Parsing SMTP replies (RFC 5321 §4.2) as the outbound client receives them.
//!
//! The parser is incremental: the client appends whatever the socket returned to a buffer and
//! calls [`parse_reply`] until it yields a reply, so a reply split across TCP segments, or many
//! pipelined replies arriving in one segment, are handled the same way. Limits keep a hostile
//! server from making the client buffer without end.

use thiserror::Error;

use crate::reply::{EnhancedCode, Reply};

/// Longest reply line accepted, CRLF included. RFC 5321 §4.5.3.1.5 sets 512 octets; real
/// servers overrun it with long policy URLs, so the client allows eight times that before it
/// calls the peer broken.
pub const MAX_REPLY_LINE: usize = 4096;

/// Largest multi-line reply accepted. EHLO answers and long rejection texts fit easily; a peer
/// streaming `250-` lines forever is cut off here instead of filling memory.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Why bytes from the server are not an SMTP reply. Any of these means the session is out of
/// step (or the peer is not an SMTP server), so the client drops the connection.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ReplyError {
    /// The line does not start with a three-digit reply code (`2xx`…`5xx`, or `1xx`).
    #[error("reply line does not start with a reply code: {0:?}")]
    BadCode(String),
    /// The code is followed by something other than a space, a dash or the line end.
    #[error("reply code {code} followed by {found:?} instead of a space or a dash")]
    BadSeparator {
        /// The code that was read.
        code: u16,
        /// The byte found after it.
        found: char,
    },
    /// A line went past [`MAX_REPLY_LINE`] without a line feed.
    #[error("reply line longer than {MAX_REPLY_LINE} bytes")]
    LineTooLong,
    /// A multi-line reply went past [`MAX_REPLY_BYTES`].
    #[error("reply longer than {MAX_REPLY_BYTES} bytes")]
    TooLong,
}

/// Reads one complete reply from the start of `buf`.
///
/// Returns `Ok(None)` while the final line (`code SP text CRLF`) has not arrived yet, and
/// `Ok(Some((reply, consumed)))` once it has; bytes past `consumed` belong to the next reply.
/// Lines end at LF with an optional CR before it (a bare LF is tolerated because some servers
/// send one). When the first line's text starts with an RFC 3463 code (`d.d.d`), it becomes
/// [`Reply::enhanced`] and is removed from every line that repeats it, so
/// [`Reply::write_to`] gives back the original form. The reply code is the last line's, as
/// RFC 5321 §4.2.1 makes that line the one that counts. Text is decoded as UTF-8, with
/// invalid bytes replaced, because it only ever ends up in logs and DSNs.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut texts: Vec<&[u8]> = Vec::new();
    loop {
        let rest = &buf[pos..];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            if rest.len() >= MAX_REPLY_LINE {
                return Err(ReplyError::LineTooLong);
            }
            if pos + rest.len() >= MAX_REPLY_BYTES {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        if nl + 1 > MAX_REPLY_LINE {
            return Err(ReplyError::LineTooLong);
        }
        let end = pos + nl + 1;
        if end > MAX_REPLY_BYTES {
            return Err(ReplyError::TooLong);
        }
        let mut line = &rest[..nl];
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        let (code, last, text) = split_line(line)?;
        texts.push(text);
        pos = end;
        if last {
            return Ok(Some((build(code, &texts), pos)));
        }
    }
}

/// Splits one line (without its line end) into code, "is this the last line" and text.
fn split_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let code_ok = line.len() >= 3
        && (b'1'..=b'5').contains(&line[0])
        && line[1].is_ascii_digit()
        && line[2].is_ascii_digit();
    if !code_ok {
        let shown = &line[..line.len().min(16)];
        return Err(ReplyError::BadCode(
            String::from_utf8_lossy(shown).into_owned(),
        ));
    }
    let code = line[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(&other) => Err(ReplyError::BadSeparator {
            code,
            found: char::from(other),
        }),
    }
}

/// Assembles the reply, lifting the enhanced status code out of the text.
fn build(code: u16, texts: &[&[u8]]) -> Reply {
    let enhanced = texts.first().and_then(|t| enhanced_prefix(t));
    let lines = texts
        .iter()
        .map(|t| {
            let t = match enhanced {
                Some((e, len)) if enhanced_prefix(t) == Some((e, len)) => strip_code(t, len),
                _ => t,
            };
            String::from_utf8_lossy(t).into_owned()
        })
        .collect();
    Reply {
        code,
        enhanced: enhanced.map(|(e, _)| e),
        lines,
    }
}

/// Removes an enhanced code of `len` bytes and the single space after it.
fn strip_code(t: &[u8], len: usize) -> &[u8] {
    let t = &t[len..];
    t.strip_prefix(b" ").unwrap_or(t)
}

/// Reads `class.subject.detail` at the start of `text` (RFC 3463: class 2, 4 or 5, subject
/// and detail of one to three digits), followed by a space or the end of the text. Returns
/// the code and its length in bytes.
fn enhanced_prefix(text: &[u8]) -> Option<(EnhancedCode, usize)> {
    let class = *text.first()?;
    if !matches!(class, b'2' | b'4' | b'5') || text.get(1) != Some(&b'.') {
        return None;
    }
    let (subject, after_subject) = number(text, 2)?;
    if text.get(after_subject) != Some(&b'.') {
        return None;
    }
    let (detail, end) = number(text, after_subject + 1)?;
    match text.get(end) {
        None | Some(b' ') => Some((EnhancedCode(class - b'0', subject, detail), end)),
        _ => None,
    }
}

/// One to three ASCII digits starting at `start`: the value and the index after them.
fn number(text: &[u8], start: usize) -> Option<(u16, usize)> {
    let digits = text
        .get(start..)?
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let value = text[start..start + digits]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Some((value, start + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &[u8]) -> (Reply, usize) {
        parse_reply(input).unwrap().unwrap()
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let (r, n) = one(b"550 5.1.1 <x@example.com>: user unknown\r\nrest");
        assert_eq!(n, 41);
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced, Some(EnhancedCode(5, 1, 1)));
        assert_eq!(r.lines, vec!["<x@example.com>: user unknown".to_string()]);
    }

    #[test]
    fn multi_line_ehlo_reply() {
        let input = b"250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 \r\n";
        let (r, n) = one(input);
        assert_eq!(n, input.len());
        assert_eq!(r.code, 250);
        assert_eq!(r.enhanced, None);
        assert_eq!(
            r.lines,
            ["mx.example.com Hello", "PIPELINING", "SIZE 1000", ""]
        );
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        assert_eq!(parse_reply(b""), Ok(None));
        assert_eq!(parse_reply(b"25"), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n"), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n250 last"), Ok(None));
        assert_eq!(parse_reply(b"250 ok\r"), Ok(None));
    }

    #[test]
    fn pipelined_replies_come_out_one_at_a_time() {
        let input = b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n";
        let (a, n1) = one(input);
        let (b, n2) = one(&input[n1..]);
        let (c, n3) = one(&input[n1 + n2..]);
        assert_eq!((a.code, b.code, c.code), (250, 250, 354));
        assert_eq!(b.enhanced, Some(EnhancedCode(2, 1, 5)));
        assert_eq!(c.enhanced, None);
        assert_eq!(n1 + n2 + n3, input.len());
    }

    #[test]
    fn enhanced_code_is_removed_from_each_repeating_line() {
        let input = b"550-5.7.1 first line\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n";
        let (r, _) = one(input);
        assert_eq!(r.enhanced, Some(EnhancedCode(5, 7, 1)));
        assert_eq!(r.lines, ["first line", "second", "third"]);
        assert_eq!(r.to_wire().as_bytes(), input);
    }

    #[test]
    fn things_that_look_almost_like_enhanced_codes_stay_text() {
        for (input, text) in [
            (&b"250 1.2.3 not a class\r\n"[..], "1.2.3 not a class"),
            (b"250 2.0.0.1 an address\r\n", "2.0.0.1 an address"),
            (b"250 2.0 short\r\n", "2.0 short"),
            (b"250 2.0000.0 long\r\n", "2.0000.0 long"),
            (b"250 2.0.0x\r\n", "2.0.0x"),
        ] {
            let (r, _) = one(input);
            assert_eq!(r.enhanced, None, "{input:?}");
            assert_eq!(r.lines, [text]);
        }
        let (r, _) = one(b"452 4.5.3\r\n");
        assert_eq!(r.enhanced, Some(EnhancedCode(4, 5, 3)));
        assert_eq!(r.lines, [""]);
    }

    #[test]
    fn bare_code_bare_lf_and_last_line_code() {
        let (r, n) = one(b"250\n");
        assert_eq!((r.code, n), (250, 4));
        assert_eq!(r.lines, [""]);
        let (r, _) = one(b"250-a\n251 b\n");
        assert_eq!(r.code, 251);
        assert_eq!(r.lines, ["a", "b"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let (r, _) = one(b"550 caf\xe9\r\n");
        assert_eq!(r.lines, ["caf\u{fffd}"]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(matches!(
            parse_reply(b"hello\r\n"),
            Err(ReplyError::BadCode(_))
        ));
        assert!(matches!(
            parse_reply(b"25\r\n"),
            Err(ReplyError::BadCode(_))
        ));
        assert!(matches!(
            parse_reply(b"650 nope\r\n"),
            Err(ReplyError::BadCode(_))
        ));
        assert_eq!(
            parse_reply(b"250x\r\n"),
            Err(ReplyError::BadSeparator {
                code: 250,
                found: 'x'
            })
        );
        assert!(matches!(
            parse_reply(b"250-ok\r\nbad\r\n"),
            Err(ReplyError::BadCode(_))
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let long = vec![b'a'; MAX_REPLY_LINE];
        assert_eq!(parse_reply(&long), Err(ReplyError::LineTooLong));
        let mut line = b"250 ".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_REPLY_LINE));
        assert_eq!(parse_reply(&line), Err(ReplyError::LineTooLong));
        line.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&line), Err(ReplyError::LineTooLong));

        let mut many = Vec::new();
        while many.len() <= MAX_REPLY_BYTES {
            many.extend_from_slice(b"250-PIPELINING PIPELINING PIPELINING\r\n");
        }
        many.extend_from_slice(b"250 end\r\n");
        assert_eq!(parse_reply(&many), Err(ReplyError::TooLong));
        assert_eq!(
            parse_reply(&many[..MAX_REPLY_BYTES + 2]),
            Err(ReplyError::TooLong)
        );
    }
}
