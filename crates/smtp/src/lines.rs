//! Text lines as SMTP allows them: CRLF-terminated and at most 998 octets long.
//!
//! RFC 5321 §2.3.8 forbids a client to send a bare CR or a bare LF, and §4.5.3.1.6 limits a
//! text line to 1000 octets with its CRLF. A relay that passes either through hands the next
//! hop ambiguous input: a receiver that ends DATA at `CR . CR` (or `LF . LF`) reads a second,
//! forged message out of `x\r.\rMAIL FROM:…` ("SMTP smuggling"), and a receiver that cuts
//! long lines cuts them somewhere petrel did not choose. [`LineNormalizer`] makes text safe
//! in one streaming pass, chunk by chunk, without holding a line back:
//!
//! * every bare CR and every bare LF becomes CRLF (Postfix's `smtpd_forbid_bare_newline =
//!   normalize`, KumoMTA's `invalid_line_endings = "Fix"`);
//! * a line longer than 998 octets is broken by inserting CRLF SPACE, as Postfix's
//!   `smtp_line_length_limit` does ("to minimize the damage to MIME formatted mail"): in a
//!   header that is a fold, in a body a continuation. The break is moved back to the start of
//!   a UTF-8 character when it would split one;
//! * optionally (on the wire) a line that starts with `.` gets a second one (RFC 5321
//!   §4.5.2). The doubled dot is not counted in the line length, as the RFC says.
//!
//! Output that went through it once passes through again unchanged, so a message normalised
//! at reception is sent exactly as stored (and as DKIM-signed).

/// The longest text line, CRLF not counted (RFC 5321 §4.5.3.1.6, RFC 5322 §2.1.1).
pub const MAX_TEXT_LINE: usize = 998;

/// What a long line is broken with: a line end and a space, so in a header the rest is a
/// continuation of the same field.
const FOLD: &[u8] = b"\r\n ";

/// Streaming normaliser; see the module documentation. One per message.
#[derive(Clone, Debug)]
pub struct LineNormalizer {
    dot_stuff: bool,
    /// Octets of the current output line so far (a doubled dot not counted).
    line_len: usize,
    /// The last input byte was a CR, already written as CRLF: an LF next is its own.
    after_cr: bool,
    /// The next content byte starts a line.
    at_line_start: bool,
    bare_line_ends: u64,
    folds: u64,
}

impl Default for LineNormalizer {
    fn default() -> Self {
        LineNormalizer::new()
    }
}

impl LineNormalizer {
    /// A normaliser for storing a message: line ends and lengths only.
    pub fn new() -> Self {
        LineNormalizer {
            dot_stuff: false,
            line_len: 0,
            after_cr: false,
            at_line_start: true,
            bare_line_ends: 0,
            folds: 0,
        }
    }

    /// A normaliser for the wire: also doubles a dot that starts a line.
    pub fn dot_stuffing() -> Self {
        LineNormalizer {
            dot_stuff: true,
            ..LineNormalizer::new()
        }
    }

    /// Bare CRs and bare LFs seen so far (each became CRLF). A CR at the very end of the
    /// input is counted only once the next byte shows it was bare.
    pub fn bare_line_ends(&self) -> u64 {
        self.bare_line_ends
    }

    /// Line breaks inserted into lines longer than [`MAX_TEXT_LINE`].
    pub fn folds(&self) -> u64 {
        self.folds
    }

    /// True when the output ends with a complete line (or is empty).
    pub fn at_line_start(&self) -> bool {
        self.at_line_start
    }

    /// Appends the normalised form of `input` to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 64 + 4);
        let mut i = 0;
        while i < input.len() {
            match input[i] {
                b'\n' => {
                    if self.after_cr {
                        self.after_cr = false;
                    } else {
                        self.bare_line_ends += 1;
                        self.end_line(out);
                    }
                    i += 1;
                }
                b'\r' => {
                    if self.after_cr {
                        // The previous CR was not followed by LF.
                        self.bare_line_ends += 1;
                    }
                    self.end_line(out);
                    self.after_cr = true;
                    i += 1;
                }
                _ => {
                    if self.after_cr {
                        self.bare_line_ends += 1;
                        self.after_cr = false;
                    }
                    let end =
                        memchr::memchr2(b'\r', b'\n', &input[i..]).map_or(input.len(), |k| i + k);
                    self.content(&input[i..end], out);
                    i = end;
                }
            }
        }
    }

    /// Ends an unterminated last line with CRLF, so the text can be followed by the
    /// end-of-data line.
    pub fn finish_line(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            self.end_line(out);
        }
        self.after_cr = false;
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.line_len = 0;
        self.at_line_start = true;
    }

    /// A run of bytes without CR or LF.
    fn content(&mut self, mut run: &[u8], out: &mut Vec<u8>) {
        if self.at_line_start {
            if self.dot_stuff && run.first() == Some(&b'.') {
                out.push(b'.');
            }
            self.at_line_start = false;
        }
        while let Some(cut) = self.fold_before(run) {
            out.extend_from_slice(&run[..cut]);
            out.extend_from_slice(FOLD);
            self.folds += 1;
            self.line_len = 1;
            run = &run[cut..];
        }
        out.extend_from_slice(run);
        self.line_len += run.len();
    }

    /// The first byte of `run` the current line has no room for: one that would be octet
    /// 999, or the first byte of a UTF-8 character that would end past octet 998 (so a
    /// character is never split). Decided byte by byte from the line length alone, so the
    /// result does not depend on how the input was cut into chunks, and output that went
    /// through once has no such byte left.
    fn fold_before(&self, run: &[u8]) -> Option<usize> {
        let room = MAX_TEXT_LINE.saturating_sub(self.line_len);
        let from = room.saturating_sub(3).min(run.len());
        let to = (room + 1).min(run.len());
        (from..to).find(|&p| self.line_len + p + utf8_len(run[p]) > MAX_TEXT_LINE)
    }
}

/// Length of the UTF-8 sequence `b` starts (1 for ASCII, continuation and invalid bytes).
fn utf8_len(b: u8) -> usize {
    match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(input: &[u8]) -> (Vec<u8>, LineNormalizer) {
        let mut n = LineNormalizer::new();
        let mut out = Vec::new();
        n.push(input, &mut out);
        (out, n)
    }

    fn lines_ok(out: &[u8]) -> bool {
        out.split(|&b| b == b'\n').all(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            l.len() <= MAX_TEXT_LINE && !l.contains(&b'\r')
        }) && out
            .iter()
            .enumerate()
            .all(|(i, &b)| b != b'\n' || (i > 0 && out[i - 1] == b'\r'))
    }

    #[test]
    fn bare_cr_and_lf_become_crlf() {
        let (out, n) = norm(b"x\r.\rMAIL FROM:<a@b>\r\na\nb\r\r\nc\n\rd");
        assert_eq!(
            out,
            b"x\r\n.\r\nMAIL FROM:<a@b>\r\na\r\nb\r\n\r\nc\r\n\r\nd".to_vec()
        );
        // x\r .\r a\n b\r c\n \r(followed by d)
        assert_eq!(n.bare_line_ends(), 6);
        assert_eq!(n.folds(), 0);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let mut n = LineNormalizer::new();
        let mut out = Vec::new();
        n.push(b"a\r", &mut out);
        n.push(b"\nb\r", &mut out);
        n.push(b"c", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc");
        assert_eq!(n.bare_line_ends(), 1);
    }

    #[test]
    fn long_lines_are_folded_at_998() {
        let line = vec![b'a'; 2500];
        let (out, n) = norm(&[&line[..], b"\r\nshort\r\n"].concat());
        assert!(lines_ok(&out));
        assert_eq!(n.folds(), 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0].len(), 998);
        assert_eq!(lines[1].len(), 998);
        assert!(lines[1].starts_with(' '));
        assert_eq!(lines[2].len(), 1 + 2500 - 998 - 997);
        assert_eq!(lines[3], "short");
        // Exactly 998 is left alone.
        let (out, n) = norm(&[&[b'b'; 998][..], b"\r\n"].concat());
        assert_eq!(n.folds(), 0);
        assert_eq!(out.len(), 1000);
    }

    #[test]
    fn folding_does_not_split_a_utf8_character() {
        // 997 ASCII bytes, then "é" (2 bytes) straddles the 998 boundary.
        let mut input = vec![b'a'; 997];
        input.extend_from_slice("é and more".as_bytes());
        let (out, n) = norm(&input);
        assert_eq!(n.folds(), 1);
        let text = String::from_utf8(out).expect("still valid UTF-8");
        assert_eq!(text.split("\r\n").next().unwrap().len(), 997);
        assert!(text.contains("\r\n é and more"));
    }

    #[test]
    fn dot_stuffing_doubles_leading_dots_only_on_the_wire() {
        let mut n = LineNormalizer::dot_stuffing();
        let mut out = Vec::new();
        n.push(b".a\r\nb.\r\n.\r.\n", &mut out);
        n.finish_line(&mut out);
        assert_eq!(out, b"..a\r\nb.\r\n..\r\n..\r\n");
        let (out, _) = norm(b".a\r\n");
        assert_eq!(out, b".a\r\n");
    }

    #[test]
    fn finish_line_terminates_the_last_line() {
        let mut n = LineNormalizer::new();
        let mut out = Vec::new();
        n.push(b"a", &mut out);
        n.finish_line(&mut out);
        assert_eq!(out, b"a\r\n");
        let mut out = Vec::new();
        let mut n = LineNormalizer::new();
        n.push(b"a\r", &mut out);
        n.finish_line(&mut out);
        assert_eq!(out, b"a\r\n");
    }

    proptest::proptest! {
        /// Any input, split anywhere: the output has only CRLF line ends and no line over
        /// 998 octets, the same bytes come out however it is split, and normalising the
        /// output again changes nothing.
        #[test]
        fn output_is_canonical_split_invariant_and_idempotent(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::prelude::any::<u8>(),
                    1 => proptest::prelude::Just(b'\r'),
                    1 => proptest::prelude::Just(b'\n'),
                    1 => proptest::prelude::Just(b'.'),
                ],
                0..3000,
            ),
            split in 0usize..3000,
        ) {
            let (whole, _) = norm(&input);
            proptest::prop_assert!(lines_ok(&whole));
            let split = split.min(input.len());
            let mut n = LineNormalizer::new();
            let mut parts = Vec::new();
            n.push(&input[..split], &mut parts);
            n.push(&input[split..], &mut parts);
            proptest::prop_assert_eq!(&whole, &parts);
            let (again, n2) = norm(&whole);
            proptest::prop_assert_eq!(&again, &whole);
            proptest::prop_assert_eq!(n2.folds(), 0);
            proptest::prop_assert_eq!(n2.bare_line_ends(), 0);
        }
    }
}
