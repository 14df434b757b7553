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
///
/// One pass jumps from one `=` or LF to the next and copies the plain text between them as
/// slices (HTML has long stretches of it).
pub(crate) fn qp_decode(input: &[u8], eol: &[u8]) -> Vec<u8> {
    // Decoding only ever shrinks the text (soft breaks and escapes get shorter).
    let mut out = Vec::with_capacity(input.len());
    // Start of the input not copied or decoded yet.
    let mut pending = 0;
    for at in equals_or_lf(input) {
        if at < pending {
            // The LF of a soft line break, already consumed.
            continue;
        }
        if input[at] == b'\n' {
            out.extend_from_slice(trim_line_end(&input[pending..at]));
            out.extend_from_slice(eol);
            pending = at + 1;
            continue;
        }
        let after = &input[at + 1..];
        if let Some(line_end) = soft_break_len(after) {
            out.extend_from_slice(&input[pending..at]);
            pending = at + 1 + line_end;
        } else if let (Some(h), Some(l)) = (
            after.first().and_then(|&h| unhex(h)),
            after.get(1).and_then(|&l| unhex(l)),
        ) {
            out.extend_from_slice(&input[pending..at]);
            out.push(h << 4 | l);
            pending = at + 3;
        }
        // Otherwise the `=` is content and stays in the pending text.
    }
    out.extend_from_slice(trim_line_end(&input[pending..]));
    out
}

/// The positions of every `=` and LF in `input`, in order.
///
/// In quoted-printable HTML these are only some 20 bytes apart (`=3D` in every attribute, a
/// soft break every 76 characters), too close for a vectorised search to pay for its setup on
/// each call: this tests eight bytes at a time with word arithmetic instead.
fn equals_or_lf(input: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while let Some(word) = input.get(pos..pos + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let found = zero_bytes(word ^ (ONES * u64::from(b'=')))
                | zero_bytes(word ^ (ONES * u64::from(b'\n')));
            if found != 0 {
                // The lowest flag is exact (only bytes above a zero byte can be flagged wrongly).
                let at = pos + found.trailing_zeros() as usize / 8;
                pos = at + 1;
                return Some(at);
            }
            pos += 8;
        }
        let at = pos
            + input
                .get(pos..)?
                .iter()
                .position(|&b| b == b'=' || b == b'\n')?;
        pos = at + 1;
        Some(at)
    })
}

const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of the result is set for the lowest zero byte of `word`, and
/// maybe for bytes above it.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & (ONES * 0x80)
}

/// Removes what ends an encoded line but is not content: one CR (of a CRLF), then spaces and
/// tabs (padding added in transport). The text before the last `=` of a line never needs
/// trimming, since escapes are not white space.
fn trim_line_end(mut line: &[u8]) -> &[u8] {
    if let Some(l) = line.strip_suffix(b"\r") {
        line = l;
    }
    while let [rest @ .., b' ' | b'\t'] = line {
        line = rest;
    }
    line
}

/// If the `=` just before `after` is a soft line break (only white space and an optional CR
/// follow it on its line), the length of the rest of that line including its LF.
fn soft_break_len(after: &[u8]) -> Option<usize> {
    let blanks = after
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let rest = &after[blanks..];
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    match rest.first() {
        None => Some(after.len()),
        Some(b'\n') => Some(after.len() - rest.len() + 1),
        Some(_) => None,
    }
}

/// Bytes written as themselves inside an encoded line: printable ASCII except `=`, plus space
/// and tab (which must be escaped at the end of a line, see [`encode_line`]).
static QP_LITERAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 33;
    while b <= 126 {
        table[b] = true;
        b += 1;
    }
    table[b'=' as usize] = false;
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    table
};

/// Encodes quoted-printable with lines of at most 76 characters. `eol` sequences in the
/// content become hard line breaks written as `eol`; everything else that is not printable
/// ASCII (and `=`, and whitespace before a line break) is `=XX`-escaped.
pub(crate) fn qp_encode(input: &[u8], eol: &[u8]) -> Vec<u8> {
    // HTML is mostly printable ASCII: room for a soft break every 75 characters and for
    // escaping `=` in attributes, so the buffer rarely has to grow (and be copied).
    let mut out = Vec::with_capacity(input.len() + input.len() / 8 + 16);
    let eol_finder = memchr::memmem::Finder::new(eol);
    let mut rest = input;
    while let Some(i) = eol_finder.find(rest) {
        encode_line(&rest[..i], eol, &mut out);
        out.extend_from_slice(eol);
        rest = &rest[i + eol.len()..];
    }
    encode_line(rest, eol, &mut out);
    out
}

/// Encodes one line of content (without its line break), inserting soft breaks so that no
/// encoded line is longer than [`MAX_ENCODED_LINE`].
fn encode_line(line: &[u8], eol: &[u8], out: &mut Vec<u8>) {
    // Every character but the last must leave room for the soft-break `=` after it.
    const INNER_MAX: usize = MAX_ENCODED_LINE - 1;
    let Some((&last, mut rest)) = line.split_last() else {
        return;
    };
    let mut col = 0;
    while let Some(&b) = rest.first() {
        if QP_LITERAL[usize::from(b)] {
            // A run of literal bytes is copied in slices, cut only where a soft break goes.
            let (mut run, after) = rest.split_at(literal_run(rest));
            while !run.is_empty() {
                if col == INNER_MAX {
                    soft_break(eol, out);
                    col = 0;
                }
                let n = run.len().min(INNER_MAX - col);
                out.extend_from_slice(&run[..n]);
                col += n;
                run = &run[n..];
            }
            rest = after;
        } else {
            if col + 3 > INNER_MAX {
                soft_break(eol, out);
                col = 0;
            }
            push_escaped(b, out);
            col += 3;
            rest = &rest[1..];
        }
    }
    // The last character may use the last column; whitespace there must be escaped or it
    // would be taken for transport padding.
    let literal = QP_LITERAL[usize::from(last)] && !matches!(last, b' ' | b'\t');
    let width = if literal { 1 } else { 3 };
    if col + width > MAX_ENCODED_LINE {
        soft_break(eol, out);
    }
    if literal {
        out.push(last);
    } else {
        push_escaped(last, out);
    }
}

/// Length of the run of [`QP_LITERAL`] bytes at the start of `bytes`.
///
/// HTML is mostly long runs of printable ASCII, so the scan tests eight bytes at a time with
/// word arithmetic and only looks at single bytes around the exceptions.
fn literal_run(bytes: &[u8]) -> usize {
    let mut i = 0;
    loop {
        for word in bytes[i..].chunks_exact(8) {
            let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            if !all_printable_but_equals(word) {
                break;
            }
            i += 8;
        }
        match bytes.get(i) {
            Some(&b) if QP_LITERAL[usize::from(b)] => i += 1,
            _ => return i,
        }
    }
}

/// Whether all eight bytes of `word` are in `' '..='~'` and none is `=` (the classic "has a
/// byte less than / greater than / equal to" bit tricks; exact for "none of them").
fn all_printable_but_equals(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let above_tilde = word.wrapping_add(ONES) | word;
    let eq = word ^ (ONES * u64::from(b'='));
    let equals = eq.wrapping_sub(ONES) & !eq;
    (below_space | above_tilde | equals) & HIGH == 0
}

fn soft_break(eol: &[u8], out: &mut Vec<u8>) {
    out.push(b'=');
    out.extend_from_slice(eol);
}

fn push_escaped(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
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

    /// The straightforward byte-at-a-time codecs the fast ones replaced: the definition of
    /// the expected output.
    mod reference {
        use super::super::{unhex, MAX_ENCODED_LINE};

        pub fn qp_decode(input: &[u8], eol: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut lines = input.split(|&b| b == b'\n').peekable();
            while let Some(mut line) = lines.next() {
                let last = lines.peek().is_none();
                if let Some(l) = line.strip_suffix(b"\r") {
                    line = l;
                }
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

        pub fn qp_encode(input: &[u8], eol: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            let mut lines = Vec::new();
            let mut rest = input;
            while let Some(i) = rest.windows(eol.len()).position(|w| w == eol) {
                lines.push(&rest[..i]);
                rest = &rest[i + eol.len()..];
            }
            lines.push(rest);
            for (n, line) in lines.iter().enumerate() {
                if n > 0 {
                    out.extend_from_slice(eol);
                }
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
                        out.extend_from_slice(format!("={b:02X}").as_bytes());
                    }
                    col += width;
                }
            }
            out
        }
    }

    /// Deterministic pseudo-random bytes biased towards what matters to the codecs: line
    /// breaks, `=`, white space, hex digits and long runs of plain text.
    fn awkward_bytes(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let piece: &[u8] = match x % 16 {
                0 => b"\r\n",
                1 => b"\n",
                2 => b"\r",
                3 => b"=",
                4 => b" ",
                5 => b"\t",
                6 => b"=4",
                7 => b"=C3=A9",
                8 => b"=\r\n",
                9 => b"\xe9\x00\xff",
                10 => b"  \r\n",
                _ => b"<a href=\"https://example.com/x?a=1&amp;b=2\">link text</a> more text",
            };
            let take = (x >> 8) as usize % (piece.len() + 1);
            out.extend_from_slice(&piece[..take.max(1)]);
        }
        out
    }

    #[test]
    fn word_test_matches_byte_test() {
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut word = *b"abc 1~#!";
                word[pos] = b;
                let expected = (32..=126).contains(&b) && b != b'=';
                assert_eq!(
                    all_printable_but_equals(u64::from_le_bytes(word)),
                    expected,
                    "byte {b} at {pos}"
                );
            }
        }
    }

    #[test]
    fn qp_matches_reference_codec() {
        for seed in 0..400u64 {
            let data = awkward_bytes(seed, (seed as usize * 37) % 3000);
            for eol in [&b"\r\n"[..], b"\n"] {
                assert_eq!(
                    qp_encode(&data, eol),
                    reference::qp_encode(&data, eol),
                    "encode, seed {seed}"
                );
                assert_eq!(
                    qp_decode(&data, eol),
                    reference::qp_decode(&data, eol),
                    "decode, seed {seed}"
                );
            }
        }
        for edge in [&b""[..], b"=", b"\n", b"\r\n", b" ", b"a=", b"==41", b"=4"] {
            assert_eq!(
                qp_encode(edge, b"\r\n"),
                reference::qp_encode(edge, b"\r\n")
            );
            assert_eq!(
                qp_decode(edge, b"\r\n"),
                reference::qp_decode(edge, b"\r\n")
            );
        }
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
