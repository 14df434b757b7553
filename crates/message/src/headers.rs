//! A light view over a message's header block, and the edits reception makes to it.

/// One header field: its name and the byte span of the whole field (folded lines included).
#[derive(Clone, Debug)]
struct Field {
    name_end: usize,
    start: usize,
    end: usize,
}

/// The header block of a raw message, indexed once so several lookups and edits cost one pass.
/// Offsets refer to the original bytes; nothing is copied until [`Headers::apply`].
#[derive(Debug)]
pub struct Headers<'a> {
    raw: &'a [u8],
    fields: Vec<Field>,
    /// Offset where the body starts (after the blank line), or `raw.len()` when there is none.
    body_start: usize,
}

/// Edits made at reception, applied in one copy of the message.
#[derive(Debug, Default)]
pub struct HeaderEdit {
    /// Lines (without CRLF) put before the first header, in order (e.g. `Received:`).
    pub prepend: Vec<String>,
    /// Header names to remove, case-insensitive (e.g. `X-Job` unless `retain-x-job`).
    pub remove: Vec<String>,
    /// Lines (without CRLF) added at the end of the header block (e.g. `Message-ID:`).
    pub append: Vec<String>,
}

impl<'a> Headers<'a> {
    /// Indexes the header block. Lines end in CRLF or LF; a line starting with space or tab
    /// continues the previous field. A message with no blank line is all headers.
    pub fn parse(raw: &'a [u8]) -> Self {
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = 0;
        let mut body_start = raw.len();
        while pos < raw.len() {
            let line_end = match raw[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => pos + i + 1,
                None => raw.len(),
            };
            let line = &raw[pos..line_end];
            if line == b"\r\n" || line == b"\n" {
                body_start = line_end;
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                if let Some(last) = fields.last_mut() {
                    last.end = line_end;
                }
            } else if let Some(colon) = line.iter().position(|&b| b == b':') {
                fields.push(Field {
                    name_end: pos + colon,
                    start: pos,
                    end: line_end,
                });
            } else {
                // Not a header line: the header block ends here (RFC 5322 body without a
                // blank line is malformed, but losing bytes would be worse).
                body_start = pos;
                break;
            }
            pos = line_end;
        }
        Headers {
            raw,
            fields,
            body_start,
        }
    }

    fn name(&self, f: &Field) -> &[u8] {
        let name = &self.raw[f.start..f.name_end];
        let end = name
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        &name[..end]
    }

    /// Values of every field named `name` (case-insensitive), unfolded and trimmed.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))
            .map(|f| {
                let value = &self.raw[f.name_end + 1..f.end];
                let text = String::from_utf8_lossy(value);
                let unfolded: String = text
                    .split(['\r', '\n'])
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("");
                unfolded.trim().to_string()
            })
            .collect()
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_all(name).into_iter().next()
    }

    /// Whether a field named `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.fields
            .iter()
            .any(|f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))
    }

    /// How many fields named `name` exist (hop counting uses `Received`).
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|f| self.name(f).eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }

    /// Produces the edited message. The body and every untouched header are copied byte for
    /// byte; added lines end in CRLF.
    pub fn apply(&self, edit: &HeaderEdit) -> Vec<u8> {
        let (mut out, rest) = self.apply_split(edit);
        out.extend_from_slice(&self.raw[rest..]);
        out
    }

    /// The edited message in two parts, so a large message need not be copied: the new
    /// header section (everything up to where the message continues unchanged), and the
    /// offset in the parsed bytes from which the rest follows as it is. The edited message
    /// is `head` followed by `raw[rest..]`.
    pub fn apply_split(&self, edit: &HeaderEdit) -> (Vec<u8>, usize) {
        let extra: usize = edit
            .prepend
            .iter()
            .chain(&edit.append)
            .map(|l| l.len() + 2)
            .sum();
        let header_end = self.fields.last().map_or(0, |f| f.end);
        let mut out = Vec::with_capacity(header_end + extra + 2);
        for line in &edit.prepend {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let mut copied = 0;
        for f in &self.fields {
            let name = self.name(f);
            if edit
                .remove
                .iter()
                .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
            {
                out.extend_from_slice(&self.raw[copied..f.start]);
                copied = f.end;
            }
        }
        out.extend_from_slice(&self.raw[copied..header_end.max(copied)]);
        if header_end > 0 && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        for line in &edit.append {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let rest_start = header_end.max(copied);
        if rest_start == self.body_start {
            // The original had no blank line after its headers: add one so the body (or the
            // end of the message) is not read as more headers.
            out.extend_from_slice(b"\r\n");
        }
        (out, rest_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@x.example\r\nX-Job: spring\r\nSubject: hello\r\n world\r\nx-virtual-mta: mta1\r\n\r\nbody line\r\n";

    #[test]
    fn lookups_are_case_insensitive_and_unfold() {
        let h = Headers::parse(MSG);
        assert_eq!(h.get("x-job").as_deref(), Some("spring"));
        assert_eq!(h.get("SUBJECT").as_deref(), Some("hello world"));
        assert_eq!(h.get("X-Virtual-MTA").as_deref(), Some("mta1"));
        assert!(!h.has("Message-ID"));
        assert_eq!(h.count("From"), 1);
    }

    #[test]
    fn apply_removes_prepends_and_appends() {
        let h = Headers::parse(MSG);
        let out = h.apply(&HeaderEdit {
            prepend: vec!["Received: from x by y".into()],
            remove: vec!["x-job".into(), "X-Virtual-MTA".into()],
            append: vec!["Message-ID: <1@y>".into()],
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from x by y\r\nFrom: a@x.example\r\nSubject: hello\r\n world\r\nMessage-ID: <1@y>\r\n\r\nbody line\r\n"
        );
    }

    #[test]
    fn headers_only_message_gets_terminated() {
        let h = Headers::parse(b"Subject: x\r\n");
        let out = h.apply(&HeaderEdit {
            append: vec!["Message-ID: <1@y>".into()],
            ..Default::default()
        });
        assert_eq!(out, b"Subject: x\r\nMessage-ID: <1@y>\r\n\r\n");
    }

    #[test]
    fn body_without_headers_is_kept() {
        let raw = b"just text, no header\r\nmore\r\n";
        let h = Headers::parse(raw);
        let out = h.apply(&HeaderEdit {
            prepend: vec!["Received: r".into()],
            ..Default::default()
        });
        assert!(out.starts_with(b"Received: r\r\n\r\n"));
        assert!(out.ends_with(raw));
    }

    #[test]
    fn untouched_message_is_byte_identical() {
        let h = Headers::parse(MSG);
        assert_eq!(h.apply(&HeaderEdit::default()), MSG);
    }
}
