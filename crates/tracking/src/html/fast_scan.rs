//! A hand-written scan for the common case: the same [`Scan`] as the `lol_html` pass, for
//! documents made only of markup whose tokenization is simple to follow.
//!
//! It reads the document as the WHATWG tokenizer does, but only as far as the rewriter needs:
//! start and end tags with their attributes, comments, doctypes and other bogus comments, and
//! the text of `<style>`, `<title>`, `<textarea>` and `<script>`, which holds no markup.
//!
//! Whatever it does not model exactly it refuses (returns `None`), and the caller falls back
//! to the `lol_html` pass: charsets other than UTF-8, NUL bytes, foreign content (`svg`,
//! `math`: namespaces, CDATA), the rarer raw-text elements, escaped script text, input that
//! ends inside a tag or comment, duplicate or oddly valueless link attributes, link attributes
//! that are not UTF-8, and bodies whose end `lol_html`'s element stack could see elsewhere than
//! at the first `</body>`. Correctness for unusual input never depends on this code; the
//! differential tests hold the two scans together for everything else.

use std::borrow::Cow;
use std::ops::Range;

use encoding_rs::Encoding;

use super::{record_link, tag_name_end, Edit, FoundLink, HtmlJob, PixelKind, Scan};

/// The scan of `input`, or `None` if it needs the `lol_html` pass.
pub(super) fn scan(
    input: &[u8],
    enc: Option<&'static Encoding>,
    job: &HtmlJob<'_>,
) -> Option<Scan> {
    if enc.is_some_and(|e| e != encoding_rs::UTF_8) || memchr::memchr(0, input).is_some() {
        return None;
    }
    let mut scanner = Scanner {
        input,
        job,
        // Without a declared charset a `<meta>` could switch it.
        meta_matters: enc.is_none(),
        st: Scan::with_capacity_for(input.len()),
        attrs: Vec::new(),
        body: Body::NotSeen,
        before_body: Vec::new(),
    };
    scanner.run()?;
    if scanner.body == Body::Open {
        // Whether `lol_html` closes the body at the end of the input: not modelled.
        return None;
    }
    Some(scanner.st)
}

/// Where the scan is with the first `<body>` (tracked only when the bottom pixel is wanted).
#[derive(PartialEq)]
enum Body {
    NotSeen,
    /// Seen; its end tag not yet.
    Open,
    /// Its end tag was seen: the bottom pixel has its place.
    Done,
}

/// An attribute of a tag: its name, its raw bytes and its value (`None` if it has none).
struct Attr {
    name: Range<usize>,
    raw: Range<usize>,
    value: Option<Range<usize>>,
}

/// A tag read by [`Scanner::tag`].
struct Tag {
    name: Range<usize>,
    /// Just after its `>`.
    end: usize,
    self_closing: bool,
}

struct Scanner<'i, 'j> {
    input: &'i [u8],
    job: &'j HtmlJob<'j>,
    meta_matters: bool,
    st: Scan,
    /// The attributes of the last tag read.
    attrs: Vec<Attr>,
    body: Body,
    /// Names of the start tags before the first `<body>` (with the bottom pixel wanted): an
    /// end tag with one of these names could close the body on `lol_html`'s element stack.
    before_body: Vec<Range<usize>>,
}

const RAW_TEXT_SUPPORTED: &[&[u8]] = &[b"style", b"title", b"textarea", b"script"];
/// Elements whose content or namespace this scan does not model.
const REFUSED: &[&[u8]] = &[
    b"svg",
    b"math",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"noscript",
    b"plaintext",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C')
}

fn is_one_of(name: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

impl Scanner<'_, '_> {
    /// Reads the whole input; `None` as soon as something is not modelled.
    fn run(&mut self) -> Option<()> {
        let input = self.input;
        let mut pos = 0;
        while let Some(lt) = memchr::memchr(b'<', &input[pos..]) {
            let at = pos + lt;
            pos = match input.get(at + 1) {
                Some(b'!') => markup_declaration_end(input, at)?,
                Some(b'?') => bogus_comment_end(input, at + 2)?,
                Some(b'/') => self.end_tag(at)?,
                Some(c) if c.is_ascii_alphabetic() => self.start_tag(at)?,
                // A `<` that starts nothing is text.
                _ => at + 1,
            };
        }
        Some(())
    }

    /// Handles the start tag at `at`; returns where scanning goes on.
    fn start_tag(&mut self, at: usize) -> Option<usize> {
        let tag = self.tag(at + 1)?;
        let name = &self.input[tag.name.clone()];
        if name.eq_ignore_ascii_case(b"a") || name.eq_ignore_ascii_case(b"area") {
            self.link(at, &tag)?;
        } else if name.eq_ignore_ascii_case(b"body") {
            self.body_start(&tag)?;
        } else if is_one_of(name, REFUSED)
            || (self.meta_matters && name.eq_ignore_ascii_case(b"meta"))
        {
            return None;
        } else if is_one_of(name, RAW_TEXT_SUPPORTED) {
            return self.raw_text_end(&tag);
        }
        if self.body == Body::NotSeen && self.job.bottom_pixel.is_some() {
            self.before_body.push(tag.name);
        }
        Some(tag.end)
    }

    /// Handles the end tag (or what `</` starts) at `at`; returns where scanning goes on.
    fn end_tag(&mut self, at: usize) -> Option<usize> {
        match self.input.get(at + 2)? {
            // `</>` is dropped.
            b'>' => return Some(at + 3),
            c if !c.is_ascii_alphabetic() => return bogus_comment_end(self.input, at + 2),
            _ => {}
        }
        let tag = self.tag(at + 2)?;
        if self.body == Body::Open {
            let name = &self.input[tag.name.clone()];
            if name.eq_ignore_ascii_case(b"body") {
                self.st.edits.push(Edit::Pixel(at, PixelKind::Bottom));
                self.st.bottom_placed = true;
                self.body = Body::Done;
            } else if name.eq_ignore_ascii_case(b"html")
                || self
                    .before_body
                    .iter()
                    .any(|open| name.eq_ignore_ascii_case(&self.input[open.clone()]))
            {
                return None;
            }
        }
        Some(tag.end)
    }

    /// Records an `a` or `area` start tag starting at `at`.
    fn link(&mut self, at: usize, tag: &Tag) -> Option<()> {
        let input = self.input;
        // Values as `lol_html` decodes them are the raw bytes only when they are UTF-8.
        std::str::from_utf8(&input[at..tag.end]).ok()?;
        for (i, a) in self.attrs.iter().enumerate() {
            let name = &input[a.name.clone()];
            let dup = self.attrs[..i]
                .iter()
                .any(|b| name.eq_ignore_ascii_case(&input[b.name.clone()]));
            if dup {
                return None;
            }
        }
        let found = FoundLink {
            tag: at..tag.end,
            self_closing: tag.self_closing,
        };
        let attrs = self
            .attrs
            .iter()
            .map(|a| (a.name.clone(), a.raw.clone(), a.value.clone()));
        record_link(input, self.job, &mut self.st, found, attrs, |value| {
            let value = value.clone().map_or(&[][..], |v| &input[v]);
            Cow::Borrowed(std::str::from_utf8(value).unwrap_or_default())
        });
        Some(())
    }

    /// Notes a `<body>` start tag, as the `lol_html` body handler does.
    fn body_start(&mut self, tag: &Tag) -> Option<()> {
        let job = self.job;
        if job.top_pixel.is_none() && job.bottom_pixel.is_none() {
            return Some(());
        }
        if self.st.body_seen || tag.self_closing {
            // A second body on the element stack, or one without content: not modelled.
            return None;
        }
        self.st.body_seen = true;
        if job.top_pixel.is_some() {
            self.st.edits.push(Edit::Pixel(tag.end, PixelKind::Top));
            self.st.pixels += 1;
        }
        if job.bottom_pixel.is_some() {
            self.body = Body::Open;
        }
        Some(())
    }

    /// Skips the text of a raw-text or RCDATA element to its end tag (which is then read as
    /// any end tag).
    fn raw_text_end(&self, tag: &Tag) -> Option<usize> {
        let input = self.input;
        let name = &input[tag.name.clone()];
        if tag.self_closing {
            return None;
        }
        let mut pos = tag.end;
        loop {
            let lt = pos + memchr::memmem::find(&input[pos..], b"</")?;
            let name_end = lt + 2 + name.len();
            let closes = input
                .get(lt + 2..name_end)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                && input
                    .get(name_end)
                    .is_some_and(|&b| is_space(b) || b == b'/' || b == b'>');
            if closes {
                let is_script = name.eq_ignore_ascii_case(b"script");
                if is_script && memchr::memmem::find(&input[tag.end..lt], b"<!--").is_some() {
                    // Escaped script text has states of its own.
                    return None;
                }
                return Some(lt);
            }
            pos = lt + 2;
        }
    }

    /// Reads a tag whose name starts at `name_start` (after `<` or `</`), with its
    /// attributes into `self.attrs`. `None` if the input ends inside it or an attribute has an
    /// `=` but no value (where `lol_html`'s value position is not modelled).
    fn tag(&mut self, name_start: usize) -> Option<Tag> {
        let input = self.input;
        self.attrs.clear();
        let name_end = tag_name_end(input, name_start);
        let mut i = name_end;
        loop {
            while is_space(*input.get(i)?) {
                i += 1;
            }
            match input[i] {
                b'>' => return Some(self.finish(name_start..name_end, i + 1, false)),
                b'/' => {
                    if *input.get(i + 1)? == b'>' {
                        return Some(self.finish(name_start..name_end, i + 2, true));
                    }
                    // A stray `/` between attributes.
                    i += 1;
                }
                _ => i = self.attribute(i)?,
            }
        }
    }

    fn finish(&self, name: Range<usize>, end: usize, self_closing: bool) -> Tag {
        Tag {
            name,
            end,
            self_closing,
        }
    }

    /// Reads the attribute starting at `start` into `self.attrs`; returns where it ends.
    fn attribute(&mut self, start: usize) -> Option<usize> {
        let input = self.input;
        // The first character belongs to the name whatever it is (even `=`).
        let mut i = start + 1;
        while !matches!(*input.get(i)?, b'/' | b'>' | b'=') && !is_space(input[i]) {
            i += 1;
        }
        let name = start..i;
        while is_space(*input.get(i)?) {
            i += 1;
        }
        if input[i] != b'=' {
            self.attrs.push(Attr {
                raw: name.clone(),
                name,
                value: None,
            });
            return Some(i);
        }
        i += 1;
        while is_space(*input.get(i)?) {
            i += 1;
        }
        let (value, end) = match input[i] {
            b'>' => return None,
            quote @ (b'"' | b'\'') => {
                let close = i + 1 + memchr::memchr(quote, &input[i + 1..])?;
                (i + 1..close, close + 1)
            }
            _ => {
                let mut j = i;
                while !is_space(*input.get(j)?) && input[j] != b'>' {
                    j += 1;
                }
                (i..j, j)
            }
        };
        self.attrs.push(Attr {
            raw: name.start..end,
            name,
            value: Some(value),
        });
        Some(end)
    }
}

/// Where the markup declaration (`<!…`) at `at` ends: a comment, or a doctype, CDATA section
/// (bogus in HTML content) or other bogus comment, which all end at the first `>`.
fn markup_declaration_end(input: &[u8], at: usize) -> Option<usize> {
    if !input[at..].starts_with(b"<!--") {
        return bogus_comment_end(input, at + 2);
    }
    let body = at + 4;
    // `<!-->` and `<!--->` are (abruptly closed) empty comments.
    match input.get(body..) {
        Some([b'>', ..]) => return Some(body + 1),
        Some([b'-', b'>', ..]) => return Some(body + 2),
        _ => {}
    }
    // Otherwise the first `-->` or `--!>` whose dashes are inside the comment.
    let mut from = body;
    loop {
        let gt = from + memchr::memchr(b'>', &input[from..])?;
        let ends = |close: &[u8]| gt >= body + close.len() && input[gt - close.len()..gt] == *close;
        if ends(b"--") || ends(b"--!") {
            return Some(gt + 1);
        }
        from = gt + 1;
    }
}

/// Where a bogus comment whose text starts at `from` ends: after the next `>`.
fn bogus_comment_end(input: &[u8], from: usize) -> Option<usize> {
    let from = from.min(input.len());
    memchr::memchr(b'>', &input[from..]).map(|gt| from + gt + 1)
}
