//! SMTP replies: a three-digit code, an optional RFC 3463 enhanced status, and text lines.

use std::fmt;

/// RFC 3463 enhanced status code (`class.subject.detail`), kept separate from the text so a
/// reply can be rendered with or without ENHANCEDSTATUSCODES and inspected in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply as the server sends it. Built once per answer and written into the
/// session's output buffer, so pipelined replies go out together in one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (`250`, `452`, `550`, …).
    pub code: u16,
    /// The enhanced status, written before the text of every line when present.
    pub enhanced: Option<EnhancedCode>,
    /// Text lines; a multi-line reply uses `code-` on every line but the last.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(EnhancedCode(enhanced.0, enhanced.1, enhanced.2)),
            lines: vec![text.into()],
        }
    }

    /// A one-line reply without an enhanced status (greeting, EHLO, 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced status (the EHLO capability list).
    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// True for 4xx and 5xx replies.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form (CRLF-terminated lines) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(self.code.to_string().as_bytes());
            out.push(sep as u8);
            if let Some(e) = self.enhanced {
                out.extend_from_slice(e.to_string().as_bytes());
                if !text.is_empty() {
                    out.push(b' ');
                }
            }
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a string, for logs and tests.
    pub fn to_wire(&self) -> String {
        let mut v = Vec::new();
        self.write_to(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_wire().trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        let r = Reply::new(550, (5, 7, 1), "relaying denied");
        assert_eq!(r.to_wire(), "550 5.7.1 relaying denied\r\n");
    }

    #[test]
    fn multiline_uses_dash_continuations() {
        let r = Reply::multiline(
            250,
            vec!["host".into(), "PIPELINING".into(), "8BITMIME".into()],
        );
        assert_eq!(
            r.to_wire(),
            "250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        );
    }
}
