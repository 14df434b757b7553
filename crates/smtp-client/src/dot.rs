//! Dot-stuffing (RFC 5321 §4.5.2) as a streaming encoder.
//!
//! The message is encoded chunk by chunk into a reusable buffer that is written out and
//! cleared, so a large message is never copied whole. Line ends are normalised to CRLF on the
//! way: a bare LF would be a protocol violation (and the trick behind "SMTP smuggling"), and
//! the receiver's own dot handling only looks at CRLF-started lines.

/// Encoder state carried between chunks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DotStuffer {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The last byte written was a CR that may be followed by the LF in the next chunk.
    pending_cr: bool,
}

impl DotStuffer {
    /// A fresh encoder: the message starts at the beginning of a line.
    pub(crate) fn new() -> Self {
        DotStuffer {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Appends the encoded form of `input` to `out`: a leading `.` on a line is doubled and
    /// a bare LF becomes CRLF. Bare CRs are passed through untouched.
    pub(crate) fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 4);
        while let Some(&first) = input.first() {
            if self.at_line_start && first == b'.' {
                out.push(b'.');
            }
            self.at_line_start = false;
            match memchr::memchr(b'\n', input) {
                Some(i) => {
                    let line = &input[..i];
                    out.extend_from_slice(line);
                    let cr_before = match line.last() {
                        Some(&b) => b == b'\r',
                        None => self.pending_cr,
                    };
                    if !cr_before {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.at_line_start = true;
                    self.pending_cr = false;
                    input = &input[i + 1..];
                }
                None => {
                    out.extend_from_slice(input);
                    self.pending_cr = input.last() == Some(&b'\r');
                    input = &[];
                }
            }
        }
    }

    /// Appends the end of data: a CRLF when the message did not end with one (a trailing
    /// bare CR gets just the LF), then `.` CRLF.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            if !self.pending_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b".\r\n");
        self.at_line_start = true;
        self.pending_cr = false;
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
    fn bare_lf_becomes_crlf_and_bare_cr_stays() {
        assert_eq!(encode(b"a\nb\n.\n"), b"a\r\nb\r\n..\r\n.\r\n");
        assert_eq!(encode(b"a\rb\r\n"), b"a\rb\r\n.\r\n");
        assert_eq!(encode(b"a\r"), b"a\r\n.\r\n");
        assert_eq!(encode(b"\n\n"), b"\r\n\r\n.\r\n");
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
