//! Dot-stuffing (RFC 5321 §4.5.2) as a streaming encoder.
//!
//! The message is encoded chunk by chunk into a reusable buffer that is written out and
//! cleared, so a large message is never copied whole. On the way the text is made safe for
//! the next hop with petrel-smtp's [`LineNormalizer`]: every bare CR and bare LF becomes
//! CRLF (a receiver that ends DATA at `CR . CR` or `LF . LF` could otherwise read a second,
//! forged message out of it: "SMTP smuggling"), and lines over 998 octets are folded.
//! Messages received by petrel are already stored that way, so for them this changes
//! nothing but the dots (and a DKIM signature made over the stored text stays valid); it
//! matters for anything stored by an older version.

use petrel_smtp::LineNormalizer;

/// Encoder state carried between chunks.
#[derive(Clone, Debug)]
pub(crate) struct DotStuffer {
    lines: LineNormalizer,
}

impl DotStuffer {
    /// A fresh encoder: the message starts at the beginning of a line.
    pub(crate) fn new() -> Self {
        DotStuffer {
            lines: LineNormalizer::dot_stuffing(),
        }
    }

    /// Appends the encoded form of `input` to `out`: a leading `.` on a line is doubled,
    /// bare CRs and LFs become CRLF, long lines are folded.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.lines.push(input, out);
    }

    /// Appends the end of data: a CRLF when the message did not end with one, then `.` CRLF.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        self.lines.finish_line(out);
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        s.push(body, &mut out);
        s.finish(&mut out);
        out
    }

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_added() {
        assert_eq!(encode(b""), b".\r\n");
        assert_eq!(encode(b"a\r\n"), b"a\r\n.\r\n");
        assert_eq!(encode(b"a"), b"a\r\n.\r\n");
        assert_eq!(
            encode(b".x\r\n..y\r\n.\r\nz.\r\n."),
            b"..x\r\n...y\r\n..\r\nz.\r\n..\r\n.\r\n"
        );
    }

    #[test]
    fn bare_lf_and_bare_cr_become_crlf() {
        assert_eq!(encode(b"a\nb\n.\n"), b"a\r\nb\r\n..\r\n.\r\n");
        assert_eq!(encode(b"a\rb\r\n"), b"a\r\nb\r\n.\r\n");
        assert_eq!(encode(b"a\r"), b"a\r\n.\r\n");
        assert_eq!(encode(b"\n\n"), b"\r\n\r\n.\r\n");
        // The smuggling form: the dot line is stuffed, nothing ends early.
        assert_eq!(
            encode(b"x\r.\rMAIL FROM:<f@x>\r\n"),
            b"x\r\n..\r\nMAIL FROM:<f@x>\r\n.\r\n"
        );
    }

    #[test]
    fn long_lines_are_folded_on_the_wire() {
        let out = encode(&[b'q'; 1200]);
        assert!(out.starts_with(&[b'q'; 998]));
        assert!(out[998..].starts_with(b"\r\n q"));
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 999));
    }

    #[test]
    fn any_split_gives_the_same_bytes() {
        let body = b"From: a\r\n.hidden\r\n\r\n.\r\nx\r\r\n.\nlast.";
        let whole = encode(body);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let mut out = Vec::new();
                let mut s = DotStuffer::new();
                s.push(&body[..a], &mut out);
                s.push(&body[a..b], &mut out);
                s.push(&body[b..], &mut out);
                s.finish(&mut out);
                assert_eq!(out, whole, "split at {a}, {b}");
            }
        }
    }
}
