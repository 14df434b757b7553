//! Content-Transfer-Encoding decoding and re-encoding for the parts being rewritten.
//!
//! Decoding is lenient (mail in the wild is often sloppy); encoding is strict: quoted-printable
//! lines are at most 76 characters with soft breaks, base64 lines exactly 76 characters.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Longest encoded line for quoted-printable and base64 (RFC 2045).
pub(crate) const MAX_ENCODED_LINE: usize = 76;
/// Longest line (without CRLF) allowed for 7bit/8bit bodies (RFC 5322 §2.1.1).
pub(crate) const MAX_LINE: usize = 998;

/// The transfer encodings this crate can rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cte {
    /// `7bit`, `8bit` or no header: the body is the content.
    Identity,
    /// `binary`: like identity but without line-length limits.
    Binary,
    QuotedPrintable,
    Base64,
}

impl Cte {
    /// Parses a `Content-Transfer-Encoding` value; `None` for unknown tokens (left alone).
    pub(crate) fn parse(value: Option<&str>) -> Option<Cte> {
        let Some(v) = value else {
            return Some(Cte::Identity);
        };
        let v = v.trim();
        if v.eq_ignore_ascii_case("7bit") || v.eq_ignore_ascii_case("8bit") || v.is_empty() {
            Some(Cte::Identity)
        } else if v.eq_ignore_ascii_case("binary") {
            Some(Cte::Binary)
        } else if v.eq_ignore_ascii_case("quoted-printable") {
            Some(Cte::QuotedPrintable)
        } else if v.eq_ignore_ascii_case("base64") {
            Some(Cte::Base64)
        } else {
            None
        }
    }
}

fn unhex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Decodes quoted-printable. Hard line breaks (LF or CRLF in the input) become `eol`; soft
/// breaks disappear; trailing whitespace on encoded lines is dropped (RFC 2045 §6.7 rule 3);
/// malformed `=` sequences are kept literally.
pub(crate) fn qp_decode(input: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut lines = input.split(|&b| b == b'\n').peekable();
    while let Some(mut line) = lines.next() {
        let last = lines.peek().is_none();
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        // Transport-added trailing whitespace is not content.
        while let [rest @ .., b' ' | b'\t'] = line {
            line = rest;
        }
        let mut soft = false;
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            if b == b'=' {
                if i + 1 == line.len() {
                    soft = true;
                    break;
                }
                if let (Some(h), Some(l)) = (
                    line.get(i + 1).copied().and_then(unhex),
                    line.get(i + 2).copied().and_then(unhex),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(b);
            i += 1;
        }
        if !soft && !last {
            out.extend_from_slice(eol);
        }
    }
    out
}

/// Encodes quoted-printable with lines of at most 76 characters. `eol` sequences in the
/// content become hard line breaks written as `eol`; everything else that is not printable
/// ASCII (and `=`, and whitespace before a line break) is `=XX`-escaped.
pub(crate) fn qp_encode(input: &[u8], eol: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(input.len() + input.len() / 8);
    let mut first = true;
    for line in split_on(input, eol) {
        if !first {
            out.extend_from_slice(eol);
        }
        first = false;
        let mut col = 0usize;
        for (i, &b) in line.iter().enumerate() {
            let at_end = i + 1 == line.len();
            let literal = match b {
                b' ' | b'\t' => !at_end,
                b'=' => false,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Keep room for the soft-break '=' unless this is the last char of the line.
            let limit = if at_end {
                MAX_ENCODED_LINE
            } else {
                MAX_ENCODED_LINE - 1
            };
            if col + width > limit {
                out.push(b'=');
                out.extend_from_slice(eol);
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            col += width;
        }
    }
    out
}

/// Splits on a multi-byte separator (`eol`); always yields at least one piece.
fn split_on<'a>(input: &'a [u8], sep: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(input);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memmem::find(r, sep) {
            Some(i) => {
                rest = Some(&r[i + sep.len()..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Decodes base64, ignoring whitespace and line breaks; `None` if it is not valid base64.
pub(crate) fn b64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(&clean).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&clean)
            .ok()
    })
}

/// Encodes base64 in lines of 76 characters separated by `eol` (no trailing `eol`).
pub(crate) fn b64_encode(input: &[u8], eol: &[u8]) -> Vec<u8> {
    let encoded = STANDARD.encode(input);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / MAX_ENCODED_LINE * eol.len());
    for (i, chunk) in encoded.as_bytes().chunks(MAX_ENCODED_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(chunk);
    }
    out
}

/// True if some line of `body` (split on LF, CR of CRLF not counted) exceeds 998 octets.
pub(crate) fn has_overlong_line(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n').any(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        l.len() > MAX_LINE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_round_trip_and_line_lengths() {
        let text = format!(
            "<p>caf\u{e9} = 100% </p>\r\n{}\r\n\tend \r\n\r\nx",
            "a".repeat(300)
        );
        let enc = qp_encode(text.as_bytes(), b"\r\n");
        for line in enc.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.len() <= 76, "{}", String::from_utf8_lossy(line));
            assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"));
            assert!(line.iter().all(|&b| (32..=126).contains(&b) || b == b'\t'));
        }
        assert_eq!(qp_decode(&enc, b"\r\n"), text.as_bytes());
    }

    #[test]
    fn qp_decode_is_lenient() {
        assert_eq!(qp_decode(b"a=3Db=\r\nc =ZZ=4", b"\r\n"), b"a=bc =ZZ=4");
        assert_eq!(qp_decode(b"x  \ny", b"\n"), b"x\ny");
        assert_eq!(qp_decode(b"a=3d", b"\n"), b"a=");
    }

    #[test]
    fn qp_lone_lf_in_crlf_content_is_escaped() {
        let enc = qp_encode(b"a\nb\r\nc", b"\r\n");
        assert_eq!(enc, b"a=0Ab\r\nc");
        assert_eq!(qp_decode(&enc, b"\r\n"), b"a\nb\r\nc");
    }

    #[test]
    fn base64_round_trip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let enc = b64_encode(&data, b"\r\n");
        for line in enc.split(|&b| b == b'\n') {
            assert!(line.strip_suffix(b"\r").unwrap_or(line).len() <= 76);
        }
        assert_eq!(b64_decode(&enc).unwrap(), data);
        assert!(b64_decode(b"@@@@").is_none());
    }
}
