//! A minimal MIME walker over the raw message bytes.
//!
//! It does not build or re-serialise a tree: it only finds the byte ranges of the `text/html`
//! leaf parts (and of the header fields a rewrite may have to change), so everything else in
//! the message can be copied through byte for byte.

use std::ops::Range;

use crate::transfer::Cte;

/// Deepest multipart nesting followed; deeper structures are refused (mail bombs).
pub(crate) const MAX_DEPTH: usize = 32;

/// One `text/html` leaf part found in the message.
#[derive(Debug, Clone)]
pub(crate) struct HtmlLeaf {
    /// Where a new header field can be inserted: the start of the blank line that ends the
    /// part's header (or the part start when it has no header).
    pub header_end: usize,
    /// The whole `Content-Transfer-Encoding` field (name to last folded line, no final EOL).
    pub cte_field: Option<Range<usize>>,
    /// The parsed transfer encoding; `None` if the value is unknown (part left alone).
    pub cte: Option<Cte>,
    /// The `charset` parameter of `Content-Type`, if any.
    pub charset: Option<String>,
    /// The encoded body.
    pub body: Range<usize>,
}

/// The message structure is nested deeper than [`MAX_DEPTH`].
#[derive(Debug)]
pub(crate) struct TooDeep;

/// One header field: its name and unfolded value, and its byte range in the message.
struct Field {
    name: String,
    value: String,
    range: Range<usize>,
}

/// A parsed entity header: fields plus where the header ends and the body starts.
struct Head {
    fields: Vec<Field>,
    header_end: usize,
    /// `None` when no blank line separates header and body (header-only entity).
    body_start: Option<usize>,
}

/// Returns the end of the line starting at `pos` (index after its LF, or `end`) and the
/// line's content without CR/LF.
fn line_at(raw: &[u8], pos: usize, end: usize) -> (usize, &[u8]) {
    let next = match memchr::memchr(b'\n', &raw[pos..end]) {
        Some(i) => pos + i + 1,
        None => end,
    };
    let mut content = &raw[pos..next];
    content = content.strip_suffix(b"\n").unwrap_or(content);
    content = content.strip_suffix(b"\r").unwrap_or(content);
    (next, content)
}

fn parse_head(raw: &[u8], start: usize, end: usize) -> Head {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < end {
        let (next, line) = line_at(raw, pos, end);
        if line.is_empty() {
            return Head {
                fields,
                header_end: pos,
                body_start: Some(next),
            };
        }
        let content_end = pos + line.len();
        if matches!(line[0], b' ' | b'\t') {
            if let Some(f) = fields.last_mut() {
                f.value.push_str(&String::from_utf8_lossy(line));
                f.range.end = content_end;
            }
        } else if let Some(colon) = memchr::memchr(b':', line) {
            fields.push(Field {
                name: String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase(),
                value: String::from_utf8_lossy(&line[colon + 1..]).into_owned(),
                range: pos..content_end,
            });
        }
        pos = next;
    }
    Head {
        fields,
        header_end: end,
        body_start: None,
    }
}

/// A parsed `Content-Type`: lower-case `type/subtype` and lower-case-named parameters.
pub(crate) struct ContentType {
    pub mime: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `Content-Type` value (RFC 2045 §5.1; comments are not supported).
pub(crate) fn parse_content_type(value: &str) -> ContentType {
    let mut parts = value.splitn(2, ';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let mut params = Vec::new();
    let rest = parts.next().unwrap_or("");
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b';' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let name = rest[name_start..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] == b';' {
            continue;
        }
        i += 1; // '='
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut val = Vec::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1; // closing quote
        } else {
            let s = i;
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            val.extend_from_slice(rest[s..i].trim_end().as_bytes());
        }
        if !name.is_empty() {
            params.push((name, String::from_utf8_lossy(&val).into_owned()));
        }
    }
    ContentType { mime, params }
}

/// Finds every `text/html` leaf in `raw`, in message order.
pub(crate) fn html_leaves(raw: &[u8]) -> Result<Vec<HtmlLeaf>, TooDeep> {
    let mut out = Vec::new();
    walk(raw, 0, raw.len(), 0, &mut out)?;
    Ok(out)
}

fn walk(
    raw: &[u8],
    start: usize,
    end: usize,
    depth: usize,
    out: &mut Vec<HtmlLeaf>,
) -> Result<(), TooDeep> {
    if depth > MAX_DEPTH {
        return Err(TooDeep);
    }
    let head = parse_head(raw, start, end);
    let Some(body_start) = head.body_start else {
        return Ok(());
    };
    let field = |name: &str| head.fields.iter().find(|f| f.name == name);
    let ct = field("content-type")
        .map(|f| parse_content_type(&f.value))
        .unwrap_or(ContentType {
            mime: "text/plain".into(),
            params: Vec::new(),
        });
    if ct.mime.starts_with("multipart/") {
        if let Some(boundary) = ct.param("boundary").filter(|b| !b.is_empty()) {
            for part in split_multipart(raw, body_start, end, boundary.as_bytes()) {
                walk(raw, part.start, part.end, depth + 1, out)?;
            }
        }
        return Ok(());
    }
    if ct.mime != "text/html" {
        return Ok(());
    }
    let attachment = field("content-disposition").is_some_and(|f| {
        f.value
            .trim_start()
            .get(..10)
            .is_some_and(|v| v.eq_ignore_ascii_case("attachment"))
    });
    if attachment {
        return Ok(());
    }
    let cte_field = field("content-transfer-encoding");
    out.push(HtmlLeaf {
        header_end: head.header_end,
        cte_field: cte_field.map(|f| f.range.clone()),
        cte: Cte::parse(cte_field.map(|f| f.value.as_str())),
        charset: ct.param("charset").map(str::to_owned),
        body: body_start..end,
    });
    Ok(())
}

/// Where a body part that started at `start` ends, given the delimiter line at `delimiter`:
/// the line break before the delimiter belongs to the delimiter (RFC 2046 §5.1.1).
fn part_end(raw: &[u8], start: usize, delimiter: usize) -> usize {
    let mut e = delimiter;
    if e > start && raw[e - 1] == b'\n' {
        e -= 1;
        if e > start && raw[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e.max(start)
}

/// The byte ranges of the body parts of a multipart body (RFC 2046 §5.1.1). The EOL before a
/// delimiter line belongs to the delimiter. Without a close delimiter the last part runs to
/// the end; without any delimiter there are no parts.
fn split_multipart(raw: &[u8], start: usize, end: usize, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary);
    // Jump from one `--boundary` to the next instead of looking at every line of the body;
    // only those at the start of a line can be delimiters.
    for found in memchr::memmem::find_iter(&raw[start..end], &delimiter) {
        let pos = start + found;
        if pos > start && raw[pos - 1] != b'\n' {
            continue;
        }
        let (next, line) = line_at(raw, pos, end);
        let Some(rest) = line.strip_prefix(&delimiter[..]) else {
            continue;
        };
        let close = rest.starts_with(b"--");
        let tail = if close { &rest[2..] } else { rest };
        if tail.iter().all(|&b| b == b' ' || b == b'\t') {
            if let Some(s) = current.take() {
                parts.push(s..part_end(raw, s, pos));
            }
            if close {
                return parts;
            }
            current = Some(next);
        }
    }
    if let Some(s) = current {
        parts.push(s..end);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_parameters() {
        let ct = parse_content_type(
            " Multipart/Alternative; boundary=\"a b\\\"c\";\r\n\tcharset=UTF-8 ; x",
        );
        assert_eq!(ct.mime, "multipart/alternative");
        assert_eq!(ct.param("boundary"), Some("a b\"c"));
        assert_eq!(ct.param("charset"), Some("UTF-8"));
    }

    #[test]
    fn finds_nested_html_leaves() {
        let msg = b"Content-Type: multipart/mixed; boundary=outer\r\n\r\npre\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nhi\r\n--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n<p>x</p>\r\n--inner--\r\n--outer\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n<p>att</p>\r\n--outer--\r\nepilogue\r\n";
        let leaves = html_leaves(msg).unwrap();
        assert_eq!(leaves.len(), 1);
        let l = &leaves[0];
        assert_eq!(&msg[l.body.clone()], b"<p>x</p>");
        assert_eq!(l.cte, Some(Cte::QuotedPrintable));
        assert_eq!(l.charset.as_deref(), Some("utf-8"));
        assert_eq!(
            &msg[l.cte_field.clone().unwrap()],
            b"Content-Transfer-Encoding: Quoted-Printable"
        );
    }

    #[test]
    fn boundary_prefix_is_not_a_delimiter() {
        let msg = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n--bx\n<p>\n--b--\n";
        let leaves = html_leaves(msg).unwrap();
        assert_eq!(&msg[leaves[0].body.clone()], b"--bx\n<p>");
    }

    /// The previous delimiter search, line by line: the definition of the expected result.
    fn split_multipart_by_lines(
        raw: &[u8],
        start: usize,
        end: usize,
        boundary: &[u8],
    ) -> Vec<Range<usize>> {
        let mut parts = Vec::new();
        let mut current: Option<usize> = None;
        let mut pos = start;
        while pos < end {
            let (next, line) = line_at(raw, pos, end);
            if let Some(rest) = line
                .strip_prefix(b"--")
                .and_then(|l| l.strip_prefix(boundary))
            {
                let close = rest.starts_with(b"--");
                let tail = if close { &rest[2..] } else { rest };
                if tail.iter().all(|&b| b == b' ' || b == b'\t') {
                    if let Some(s) = current.take() {
                        parts.push(s..part_end(raw, s, pos));
                    }
                    if close {
                        return parts;
                    }
                    current = Some(next);
                }
            }
            pos = next;
        }
        if let Some(s) = current {
            parts.push(s..end);
        }
        parts
    }

    #[test]
    fn delimiter_search_matches_line_by_line() {
        let pieces: [&[u8]; 14] = [
            b"--b\r\n",
            b"--b--\r\n",
            b"--b \t\n",
            b"--bx\n",
            b"x--b\n",
            b"\n",
            b"\r\n",
            b"text ",
            b"--b",
            b"--",
            b"b",
            b"--b--",
            b"---b\n",
            b"\r",
        ];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..n % 17 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                body.extend_from_slice(pieces[(x % pieces.len() as u64) as usize]);
            }
            for boundary in [&b"b"[..], b"-b", b"b-", b"--"] {
                for start in [0, body.len().min(1), body.len().min(3)] {
                    assert_eq!(
                        split_multipart(&body, start, body.len(), boundary),
                        split_multipart_by_lines(&body, start, body.len(), boundary),
                        "{:?} from {start}, boundary {:?}",
                        String::from_utf8_lossy(&body),
                        String::from_utf8_lossy(boundary)
                    );
                }
            }
        }
    }

    #[test]
    fn nesting_limit() {
        let mut msg = Vec::new();
        for i in 0..40 {
            msg.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        assert!(html_leaves(&msg).is_err());
    }
}
