//! Splitting a raw message into header fields and body, and RFC 6376 "relaxed"
//! canonicalization of both.
//!
//! Line ends may be CRLF or a bare LF: a message spooled with LF line ends goes out with
//! CRLF on the wire, so both canonicalize to CRLF (RFC 6376 §5.3 asks signers to sign the
//! message in the form it will be transmitted).

use ring::digest;

/// One header field of the message, as byte ranges into the raw message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    /// The name, without the WSP that may precede the colon.
    pub(crate) name: &'a [u8],
    /// Everything after the colon up to the field's last line end (excluded); continuation
    /// lines are included with their line ends.
    pub(crate) value: &'a [u8],
}

impl Field<'_> {
    /// Case-insensitive name comparison (header names are ASCII by definition).
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// A message split into its header fields (top to bottom) and its body.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub(crate) fields: Vec<Field<'a>>,
    pub(crate) body: &'a [u8],
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `raw` into header fields and body.
///
/// The header block ends at the first empty line (which is not part of the body) or at
/// the first line that is neither a field nor a continuation (which is kept as the start
/// of the body, as petrel-message does). A message without either is all headers and has
/// an empty body.
pub(crate) fn parse(raw: &[u8]) -> Message<'_> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    // (name_start, name_end, value_start, value_end) of the field being read.
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut pos = 0;
    let mut body_start = raw.len();
    while pos < raw.len() {
        let (content_end, next) = match raw[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let lf = pos + i;
                let end = if lf > pos && raw[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                (end, lf + 1)
            }
            None => (raw.len(), raw.len()),
        };
        let line = &raw[pos..content_end];
        if line.is_empty() {
            body_start = next;
            break;
        }
        if is_wsp(line[0]) {
            if let Some(last) = spans.last_mut() {
                last.3 = content_end;
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = &line[..colon];
            let name_len = name.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
            spans.push((pos, pos + name_len, pos + colon + 1, content_end));
        } else {
            body_start = pos;
            break;
        }
        pos = next;
    }
    for (ns, ne, vs, ve) in spans {
        fields.push(Field {
            name: &raw[ns..ne],
            value: &raw[vs..ve],
        });
    }
    let body = if body_start >= raw.len() {
        &[][..]
    } else {
        &raw[body_start..]
    };
    Message { fields, body }
}

/// Appends the relaxed form of one header field (RFC 6376 §3.4.2) to `out`: lower-case
/// name, colon, value unfolded with WSP runs reduced to one SP and no WSP at either end.
/// No CRLF is added; the caller adds it (the DKIM-Signature field itself is hashed without).
pub(crate) fn relaxed_header(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend(name.iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let mut pending_space = false;
    let mut started = false;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        i += 1;
        // Unfold: line ends inside the value disappear (the WSP after them stays).
        if b == b'\n' || (b == b'\r' && value.get(i) == Some(&b'\n')) {
            continue;
        }
        if is_wsp(b) {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b);
        started = true;
    }
}

/// Feeds the relaxed canonical form of `body` (RFC 6376 §3.4.4) to `sink`, piece by piece.
///
/// WSP runs become one SP, WSP at line ends is dropped, empty lines at the end are dropped,
/// every line ends in CRLF (a final line without one gets it), and an empty body stays empty.
pub(crate) fn relaxed_body(body: &[u8], mut sink: impl FnMut(&[u8])) {
    let mut pending_empty_lines = 0usize;
    let mut line_buf: Vec<u8> = Vec::with_capacity(1024);
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line_buf.clear();
        let mut pending_space = false;
        for &b in line {
            if is_wsp(b) {
                pending_space = true;
            } else {
                if pending_space {
                    line_buf.push(b' ');
                    pending_space = false;
                }
                line_buf.push(b);
            }
        }
        if line_buf.is_empty() {
            pending_empty_lines += 1;
            continue;
        }
        for _ in 0..pending_empty_lines {
            sink(b"\r\n");
        }
        pending_empty_lines = 0;
        sink(&line_buf);
        sink(b"\r\n");
    }
}

/// SHA-256 of the relaxed body and the canonical length (for `l=`).
pub(crate) fn body_hash(body: &[u8]) -> (digest::Digest, u64) {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut len = 0u64;
    relaxed_body(body, |piece| {
        ctx.update(piece);
        len += piece.len() as u64;
    });
    (ctx.finish(), len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    fn canon_body(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        relaxed_body(body, |p| out.extend_from_slice(p));
        out
    }

    fn canon_headers(raw: &[u8]) -> Vec<u8> {
        let msg = parse(raw);
        let mut out = Vec::new();
        for f in &msg.fields {
            relaxed_header(f.name, f.value, &mut out);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// RFC 6376 §3.4.6, the relaxed example, verbatim.
    const RFC6376_EXAMPLE: &[u8] = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

    #[test]
    fn rfc6376_example_headers() {
        assert_eq!(canon_headers(RFC6376_EXAMPLE), b"a:X\r\nb:Y Z\r\n");
    }

    #[test]
    fn rfc6376_example_body() {
        let msg = parse(RFC6376_EXAMPLE);
        assert_eq!(canon_body(msg.body), b" C\r\nD E\r\n");
    }

    #[test]
    fn empty_body_hashes_to_sha256_of_nothing() {
        // RFC 6376 §3.4.4 (and erratum 1384): under relaxed, an empty body is the empty
        // string, not CRLF, so bh is SHA-256("").
        let expect = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        for body in [&b""[..], b"\r\n", b"\r\n\r\n", b"\n\n", b" \t \r\n \r\n"] {
            let (h, len) = body_hash(body);
            assert_eq!(STANDARD.encode(h.as_ref()), expect, "{body:?}");
            assert_eq!(len, 0);
        }
    }

    #[test]
    fn rfc_example_body_hash() {
        // The body of RFC 6376 Appendix A / RFC 8463 Appendix A.3 and its published bh=.
        let body = b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n";
        let (h, _) = body_hash(body);
        assert_eq!(
            STANDARD.encode(h.as_ref()),
            "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
        );
    }

    #[test]
    fn lf_only_equals_crlf() {
        let crlf = b"Subject: a\r\n  b\r\n\r\nline one \r\n\r\nline\ttwo\r\n\r\n";
        let lf = b"Subject: a\n  b\n\nline one \n\nline\ttwo\n\n";
        assert_eq!(canon_headers(crlf), canon_headers(lf));
        assert_eq!(canon_body(parse(crlf).body), canon_body(parse(lf).body));
        assert_eq!(canon_body(parse(lf).body), b"line one\r\n\r\nline two\r\n");
    }

    #[test]
    fn final_line_without_line_end_gets_crlf() {
        assert_eq!(canon_body(b"abc"), b"abc\r\n");
        assert_eq!(canon_body(b"abc\r\n\r\nx  "), b"abc\r\n\r\nx\r\n");
    }

    #[test]
    fn eight_bit_bytes_pass_through() {
        let body = "Grüße, 世界  !\r\n".as_bytes();
        assert_eq!(canon_body(body), "Grüße, 世界 !\r\n".as_bytes());
        let mut out = Vec::new();
        relaxed_header(b"Subject", " Grüße ".as_bytes(), &mut out);
        assert_eq!(out, "subject:Grüße".as_bytes());
    }

    #[test]
    fn parse_shapes() {
        // No body at all: every line is a header.
        let m = parse(b"From: a@b.example\r\nSubject: x");
        assert_eq!(m.fields.len(), 2);
        assert!(m.body.is_empty());
        // Blank line then nothing.
        let m = parse(b"From: a@b.example\r\n\r\n");
        assert_eq!(m.fields.len(), 1);
        assert!(m.body.is_empty());
        // Folded field keeps its continuation lines.
        let m = parse(b"To: a@b.example,\r\n c@d.example\r\nX: y\r\n\r\nbody");
        assert_eq!(m.fields[0].value, b" a@b.example,\r\n c@d.example");
        assert_eq!(m.fields[1].name, b"X");
        assert_eq!(m.body, b"body");
        // A line that is not a header starts the body (not lost).
        let m = parse(b"From: a@b.example\nthis is not a header\nmore\n");
        assert_eq!(m.fields.len(), 1);
        assert_eq!(m.body, b"this is not a header\nmore\n");
        // A message starting with an empty line has no headers.
        let m = parse(b"\r\nbody");
        assert!(m.fields.is_empty());
        assert_eq!(m.body, b"body");
    }
}
