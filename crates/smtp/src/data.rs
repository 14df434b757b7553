//! The DATA phase: dot-unstuffing and end-of-data detection as a byte-level state machine.
//!
//! Only `CRLF . CRLF` ends the data; a bare LF never starts a line for that purpose, so the
//! "SMTP smuggling" trick (`LF . LF` or `LF . CRLF`) cannot end a message early. What is
//! stored goes through a [`LineNormalizer`]: bare CRs and LFs become CRLF and lines over 998
//! octets are folded, so no such trick can reach the next hop either (see `lines.rs`).

use crate::lines::LineNormalizer;

/// Tracks where the reader stands inside a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    LineStart,
    Dot,
    DotCr,
    Mid,
    Cr,
}

/// Incremental reader for the DATA phase. Feed it whatever the socket gave; it appends the
/// unstuffed message to the output and says where the terminator ended, so bytes after it
/// (pipelined commands) stay with the session.
#[derive(Debug)]
pub struct DataReader {
    state: State,
    max: Option<u64>,
    seen: u64,
    overflow: bool,
    discard: bool,
    eight_bit: bool,
    lines: LineNormalizer,
}

/// What [`DataReader::feed`] reports once the terminator arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataEnd {
    /// How many bytes of the last input were consumed, terminator included.
    pub consumed: usize,
}

impl DataReader {
    /// A reader that stops storing (but keeps scanning) past `max` bytes of message.
    pub fn new(max: Option<u64>) -> Self {
        DataReader {
            state: State::LineStart,
            max,
            seen: 0,
            overflow: false,
            discard: false,
            eight_bit: false,
            lines: LineNormalizer::new(),
        }
    }

    /// True when the message exceeded the size limit; the session answers `552 5.3.4`.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Stops storing: the rest is only scanned for the end of the data (the session has no
    /// memory left for this message and will answer 4xx).
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// Message bytes seen so far (after unstuffing, before normalising), including any past
    /// the limit.
    pub fn size(&self) -> u64 {
        self.seen
    }

    /// Bare CRs and LFs that were stored as CRLF.
    pub fn bare_line_ends(&self) -> u64 {
        self.lines.bare_line_ends()
    }

    /// Line breaks inserted into lines longer than 998 octets.
    pub fn folds(&self) -> u64 {
        self.lines.folds()
    }

    /// True when any byte above 127 was seen (8-bit content).
    pub fn saw_8bit(&self) -> bool {
        self.eight_bit
    }

    fn note_8bit(&mut self, bytes: &[u8]) {
        if !self.eight_bit && !bytes.is_ascii() {
            self.eight_bit = true;
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        if let Some(max) = self.max {
            if self.seen > max {
                self.overflow = true;
            }
        }
        if !self.overflow && !self.discard {
            self.lines.push(bytes, out);
        }
    }

    /// Consumes `input`, appending message bytes to `out` (normalised: CRLF line ends only,
    /// no line over 998 octets). Returns `Some` once the terminating `CRLF.CRLF` has been
    /// read; the terminator's final CRLF is not part of the message but the CRLF before the
    /// dot is.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<DataEnd> {
        let mut run_start = 0usize;
        let mut i = 0usize;
        // Bytes in the middle of a line are copied in runs, not one by one: the scan jumps
        // from one CR to the next with memchr.
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Mid => {
                    match memchr::memchr(b'\r', &input[i..]) {
                        Some(k) => {
                            i += k + 1;
                            self.state = State::Cr;
                        }
                        None => i = input.len(),
                    }
                    continue;
                }
                State::Cr => {
                    self.state = match b {
                        b'\n' => State::LineStart,
                        b'\r' => State::Cr,
                        _ => State::Mid,
                    };
                    i += 1;
                    continue;
                }
                State::LineStart => {
                    if b == b'.' {
                        // Flush the run before the dot; the dot itself is held back.
                        let run = &input[run_start..i];
                        self.emit(out, run);
                        self.state = State::Dot;
                        i += 1;
                        run_start = i;
                    } else {
                        self.state = if b == b'\r' { State::Cr } else { State::Mid };
                        i += 1;
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                        run_start = i;
                    } else {
                        // Dot-stuffed line: the leading dot is dropped and this byte
                        // starts the line's text.
                        self.state = if b == b'\r' { State::Cr } else { State::Mid };
                        run_start = i;
                        i += 1;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        self.note_8bit(&input[..i]);
                        return Some(DataEnd { consumed: i + 1 });
                    }
                    // `.\r` followed by something else: the dot was stuffing, keep the CR.
                    self.emit(out, b"\r");
                    self.state = match b {
                        b'\r' => State::Cr,
                        _ => State::Mid,
                    };
                    run_start = i;
                    i += 1;
                }
            }
        }
        let run = &input[run_start.min(input.len())..];
        self.emit(out, run);
        self.note_8bit(input);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
        let mut r = DataReader::new(None);
        let mut out = Vec::new();
        for c in chunks {
            if let Some(end) = r.feed(c, &mut out) {
                return (out, Some(end.consumed));
            }
        }
        (out, None)
    }

    #[test]
    fn simple_message_and_terminator() {
        let (out, end) = read_all(&[b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"]);
        assert_eq!(out, b"Subject: x\r\n\r\nhello\r\n");
        assert_eq!(end, Some(b"Subject: x\r\n\r\nhello\r\n.\r\n".len()));
    }

    #[test]
    fn dot_unstuffing() {
        let (out, _) = read_all(&[b"..leading\r\n...\r\n.\r\n"]);
        assert_eq!(out, b".leading\r\n..\r\n");
    }

    #[test]
    fn terminator_split_across_chunks() {
        let input: &[u8] = b"a\r\n.b\r\n.\r\n";
        for split in 0..input.len() {
            let (out, end) = read_all(&[&input[..split], &input[split..]]);
            assert_eq!(out, b"a\r\nb\r\n", "split at {split}");
            assert!(end.is_some(), "split at {split}");
        }
    }

    #[test]
    fn bare_lf_dot_does_not_end_data() {
        let (out, end) = read_all(&[b"a\n.\nb\r\n.\r\n"]);
        // Not the end, and stored with CRLF: the lone dot line is content, which the sending
        // side dot-stuffs like any other.
        assert_eq!(out, b"a\r\n.\r\nb\r\n");
        assert!(end.is_some());
        let (_, end) = read_all(&[b"a\n.\r\nmore"]);
        assert_eq!(end, None);
    }

    #[test]
    fn empty_message() {
        let (out, end) = read_all(&[b".\r\n"]);
        assert!(out.is_empty());
        assert_eq!(end, Some(3));
    }

    #[test]
    fn dot_cr_not_followed_by_lf_keeps_cr() {
        let (out, _) = read_all(&[b".\rx\r\n.\r\n"]);
        assert_eq!(out, b"\r\nx\r\n");
    }

    #[test]
    fn smuggling_attempts_are_stored_as_plain_lines() {
        for attack in [
            &b"x\r.\rMAIL FROM:<forged@x.example>\r\n"[..],
            b"x\n.\nMAIL FROM:<forged@x.example>\r\n",
            b"x\r\n.\rMAIL FROM:<forged@x.example>\r\n",
            b"x\n.\r\nMAIL FROM:<forged@x.example>\r\n",
        ] {
            let input = [attack, b"tail\r\n.\r\n"].concat();
            let mut r = DataReader::new(None);
            let mut out = Vec::new();
            let end = r
                .feed(&input, &mut out)
                .expect("only the real terminator ends DATA");
            assert_eq!(end.consumed, input.len(), "{attack:?}");
            assert!(r.bare_line_ends() > 0, "{attack:?}");
            // Every LF has its CR and every CR its LF.
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' {
                    assert_eq!(out[i - 1], b'\r', "{out:?}");
                }
                if b == b'\r' {
                    assert_eq!(out.get(i + 1), Some(&b'\n'), "{out:?}");
                }
            }
            assert!(out.ends_with(b"MAIL FROM:<forged@x.example>\r\ntail\r\n"));
        }
    }

    #[test]
    fn long_lines_are_folded_when_stored() {
        let input = [&[b'z'; 1500][..], b"\r\n.\r\n"].concat();
        let mut r = DataReader::new(None);
        let mut out = Vec::new();
        assert!(r.feed(&input, &mut out).is_some());
        assert_eq!(r.folds(), 1);
        assert_eq!(out.len(), 1500 + 3 + 2);
        assert!(out[998..].starts_with(b"\r\n z"));
    }

    #[test]
    fn eight_bit_is_noticed_but_not_after_the_terminator() {
        let mut r = DataReader::new(None);
        let mut out = Vec::new();
        assert!(r.feed(b"plain\r\n.\r\n\xff", &mut out).is_some());
        assert!(!r.saw_8bit());
        let mut r = DataReader::new(None);
        assert!(r.feed("caf\u{e9}\r\n.\r\n".as_bytes(), &mut out).is_some());
        assert!(r.saw_8bit());
    }

    #[test]
    fn size_limit_overflows_but_finds_end() {
        let mut r = DataReader::new(Some(4));
        let mut out = Vec::new();
        let end = r.feed(b"123456789\r\n.\r\n", &mut out);
        assert!(end.is_some());
        assert!(r.overflowed());
        assert_eq!(r.size(), 11);
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let input: &[u8] = b"H: v\r\n\r\n..x\r\n.\ry\r\nz\r\r\n\xc3\xa9\r\n.\r\n";
        let (whole, e1) = read_all(&[input]);
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let (bytes, e2) = read_all(&chunks);
        assert_eq!(whole, bytes);
        assert_eq!(e1, Some(input.len()));
        assert!(e2.is_some());
    }
}
