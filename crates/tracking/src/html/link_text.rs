//! The unsubscribe-by-text rule: a link is an unsubscribe link when the text between `<a>` and
//! its end tag (text of nested elements included) contains "unsubscribe", in any case.
//!
//! "Its text" is what the HTML tokenizer (`lol_html`) reports as text while the link is the
//! current one: from the end of its start tag until the start of the next `a` element or the
//! end tag that closes it (`</a>`, or the end tag of an element around it), whichever comes
//! first. Chunks are concatenated, so `un<b>subscribe</b>` counts; comments and tags do not.
//! As in the original implementation (which only looked at link text then), the rule applies
//! only in documents that contain the word "unsubscribe" as such somewhere.
//!
//! Asking `lol_html` for that text costs about a quarter of the whole rewrite (it then has to
//! tokenize every link fully and decode its text). So the text is read from the raw bytes
//! instead, between link starts that `lol_html` reported, in three steps:
//!
//! 1. [`plain_link_text`]: when the inside of the link is ordinary markup (text and tags, no
//!    comments, no `<script>`-like elements), read it exactly like the tokenizer does. This
//!    covers practically every real link, including `<a><span>Unsubscribe</span></a>`.
//! 2. [`may_spell_unsubscribe`]: otherwise, when the letters u-n-s-u-b-s-c-r-i-b-e do not even
//!    occur in order up to the next link, the text cannot contain the word.
//! 3. Otherwise (rare), [`document_link_text`] asks `lol_html` for all text of the document.

use std::cell::RefCell;
use std::rc::Rc;

use encoding_rs::Encoding;
use lol_html::errors::RewritingError;
use lol_html::html_content::EndTag;
use lol_html::{doc_text, element, EndTagHandler, HtmlRewriter};

const WORD: &[u8] = b"unsubscribe";

/// Whether the document has the word "unsubscribe" as such (any case) anywhere: link text only
/// counts in documents that do.
pub(crate) fn mentions_unsubscribe(html: &[u8]) -> bool {
    memchr::memchr2_iter(b'u', b'U', html).any(|i| {
        html.get(i..i + WORD.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(WORD))
    })
}

/// The unsubscribe rule for URLs and link text: contains "unsubscribe", any case.
pub(crate) fn marks_unsubscribe(s: &str) -> bool {
    contains_word(s.as_bytes())
}

/// For URLs and link text: short, so a plain search for `u`/`U` beats setting up `memchr`.
fn contains_word(text: &[u8]) -> bool {
    let Some(last_start) = text.len().checked_sub(WORD.len()) else {
        return false;
    };
    let mut from = 0;
    // `b | 0x20` folds `U` onto `u`.
    while let Some(i) = text[from..=last_start]
        .iter()
        .position(|&b| b | 0x20 == b'u')
    {
        let at = from + i;
        if text[at..at + WORD.len()].eq_ignore_ascii_case(WORD) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Step 2: whether the letters of "unsubscribe" occur in order in `bytes` (any case). The
/// link's text is a subsequence of the raw bytes up to the next link (markup only removes
/// bytes, and every ASCII character of decoded text is one ASCII byte of the input in any
/// ASCII-compatible charset), so `false` proves the text does not contain the word.
pub(super) fn may_spell_unsubscribe(bytes: &[u8]) -> bool {
    let mut want = WORD.iter();
    let mut next = want.next();
    for b in bytes {
        match next {
            Some(w) if b.eq_ignore_ascii_case(w) => next = want.next(),
            Some(_) => {}
            None => break,
        }
    }
    next.is_none()
}

/// Tags whose content the tokenizer does not read as ordinary markup (`lol_html` switches to
/// raw text, RCDATA, script data or plain text), and the two that start foreign content
/// (where `<![CDATA[` means something). A link containing one is not "plain".
const SPECIAL_TAGS: &[&[u8]] = &[
    b"script",
    b"style",
    b"textarea",
    b"title",
    b"plaintext",
    b"iframe",
    b"xmp",
    b"noembed",
    b"noframes",
    b"noscript",
    b"svg",
    b"math",
];

/// Elements `lol_html` never keeps open (HTML void elements), so their end tags close nothing.
const VOID_TAGS: &[&[u8]] = &[
    b"area",
    b"base",
    b"basefont",
    b"bgsound",
    b"br",
    b"col",
    b"embed",
    b"hr",
    b"img",
    b"input",
    b"keygen",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
];

fn is_one_of(name: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| name.eq_ignore_ascii_case(n))
}

fn is_html_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C')
}

/// Step 1: the verdict for the text of an HTML `a` element whose start tag ends at `start`,
/// when everything from there to `limit` (the start of the next `a` element, or the end of
/// the input) is plain markup; `None` when it is not, or when it would be ambiguous where the
/// link ends.
///
/// Mirrors `lol_html`'s tokenizer (data state, tag and attribute states) and its element stack
/// (void elements are not pushed, an end tag pops up to the latest open element of its name,
/// names compare ASCII-case-insensitively). The caller makes sure the charset decodes ASCII
/// bytes one to one (UTF-8 or a single-byte charset) and that the link is an HTML element.
pub(super) fn plain_link_text(
    input: &[u8],
    start: usize,
    limit: usize,
    text: &mut Vec<u8>,
) -> Option<bool> {
    text.clear();
    // Elements opened inside the link and still open.
    let mut open: Vec<&[u8]> = Vec::new();
    let mut pos = start;
    while pos < limit {
        let Some(lt) = memchr::memchr(b'<', &input[pos..limit]).map(|i| pos + i) else {
            text.extend_from_slice(&input[pos..limit]);
            break;
        };
        text.extend_from_slice(&input[pos..lt]);
        match input.get(lt + 1).copied() {
            Some(c) if c.is_ascii_alphabetic() => {
                let tag = lex_tag(input, lt + 1)?;
                let name = &input[tag.name.clone()];
                if tag.end > limit
                    || is_one_of(name, SPECIAL_TAGS)
                    || name.eq_ignore_ascii_case(b"a")
                {
                    return None;
                }
                // In HTML content `/>` does not close anything: only void elements stay shut.
                if !is_one_of(name, VOID_TAGS) {
                    open.push(name);
                }
                pos = tag.end;
            }
            Some(b'/') => match input.get(lt + 2).copied() {
                Some(c) if c.is_ascii_alphabetic() => {
                    let tag = lex_tag(input, lt + 2)?;
                    let name = &input[tag.name.clone()];
                    if tag.end > limit {
                        return None;
                    }
                    if let Some(i) = open.iter().rposition(|n| n.eq_ignore_ascii_case(name)) {
                        open.truncate(i);
                    } else if name.eq_ignore_ascii_case(b"a") {
                        // The link ends here.
                        return Some(contains_word(text));
                    } else if !is_one_of(name, VOID_TAGS) {
                        // It may close an element around the link, ending the link too.
                        return None;
                    }
                    pos = tag.end;
                }
                // `</>` is dropped by the tokenizer.
                Some(b'>') => pos = lt + 3,
                // `</` followed by anything else starts a bogus comment.
                _ => return None,
            },
            // Comments, doctype, CDATA, processing instructions.
            Some(b'!' | b'?') => return None,
            // A `<` that starts no tag is text.
            _ => {
                text.push(b'<');
                pos = lt + 1;
            }
        }
    }
    // No end tag before the next link: all of it is the link's text.
    Some(contains_word(text))
}

/// A start or end tag found by [`lex_tag`].
struct Tag {
    /// Its name.
    name: std::ops::Range<usize>,
    /// Just after its `>`.
    end: usize,
}

/// Lexes the tag whose name starts at `name_start`, following the tokenizer's tag and
/// attribute states (quoted values may contain `>`; a quote elsewhere is an ordinary
/// character). `None` if the input ends first: then there is no tag at all.
fn lex_tag(input: &[u8], name_start: usize) -> Option<Tag> {
    #[derive(Clone, Copy)]
    enum State {
        Name,
        BeforeAttrName,
        AttrName,
        AfterAttrName,
        BeforeAttrValue,
        Unquoted,
        SelfClosing,
    }
    let mut name_end = input.len();
    let mut state = State::Name;
    let mut i = name_start;
    loop {
        let b = *input.get(i)?;
        i += 1;
        let done = |name_end| {
            Some(Tag {
                name: name_start..name_end,
                end: i,
            })
        };
        state = match (state, b) {
            (State::Name, b'>') => return done(i - 1),
            (State::Name, b'/') => {
                name_end = i - 1;
                State::SelfClosing
            }
            (State::Name, b) if is_html_space(b) => {
                name_end = i - 1;
                State::BeforeAttrName
            }
            (State::Name, _) => State::Name,
            (State::SelfClosing, b'>') => return done(name_end),
            // Anything else after `/` is read again as the start of an attribute name.
            (State::SelfClosing, _) => {
                i -= 1;
                State::BeforeAttrName
            }
            (State::BeforeAttrName | State::AttrName | State::AfterAttrName, b'>') => {
                return done(name_end)
            }
            (State::BeforeAttrName | State::AttrName | State::AfterAttrName, b'/') => {
                State::SelfClosing
            }
            (State::BeforeAttrName, b) if is_html_space(b) => State::BeforeAttrName,
            (State::BeforeAttrName, _) => State::AttrName,
            (State::AttrName | State::AfterAttrName, b) if is_html_space(b) => State::AfterAttrName,
            (State::AttrName | State::AfterAttrName, b'=') => State::BeforeAttrValue,
            (State::AttrName | State::AfterAttrName, _) => State::AttrName,
            (State::BeforeAttrValue, b) if is_html_space(b) => State::BeforeAttrValue,
            (State::BeforeAttrValue, b'"' | b'\'') => {
                // A quoted value runs to the same quote, whatever is inside.
                i += memchr::memchr(b, &input[i..])? + 1;
                State::BeforeAttrName
            }
            (State::BeforeAttrValue | State::Unquoted, b'>') => return done(name_end),
            (State::BeforeAttrValue, _) => State::Unquoted,
            (State::Unquoted, b) if is_html_space(b) => State::BeforeAttrName,
            (State::Unquoted, _) => State::Unquoted,
        };
    }
}

/// Step 3, and the definition steps 1 and 2 stand in for: the text of every link as
/// `lol_html` reports it, from a pass that reads all text of the document. Returns, per
/// `a`/`area` element in document order, whether its text contains "unsubscribe".
pub(super) fn document_link_text(
    input: &[u8],
    enc: Option<&'static Encoding>,
) -> Result<Vec<bool>, RewritingError> {
    let state = Rc::new(RefCell::new(LinkText::default()));
    let s = super::settings(enc)
        .append_element_content_handler(element!("a, area", |el| {
            let is_anchor = el.tag_name() == "a";
            state.borrow_mut().element(is_anchor);
            if is_anchor {
                let on_end = Rc::clone(&state);
                let handler: EndTagHandler<'static> = Box::new(move |_: &mut EndTag<'_>| {
                    on_end.borrow_mut().current = None;
                    Ok(())
                });
                // An `a` that cannot have content has no end: it stays current until the
                // next link.
                let _ = el.on_end_tag(handler);
            }
            Ok(())
        }))
        .append_document_content_handler(doc_text!(|t| {
            state.borrow_mut().text(t.as_str());
            Ok(())
        }));
    let mut rw = HtmlRewriter::new(s, |_: &[u8]| {});
    rw.write(input)?;
    rw.end()?;
    let flags = state.take().flags;
    Ok(flags)
}

/// Text attribution for [`document_link_text`]: text belongs to the most recently started
/// `a` until an `a` end tag; `area` has no text. Text arrives in chunks, so a short tail is
/// kept to catch the word across chunk borders.
#[derive(Default)]
struct LinkText {
    flags: Vec<bool>,
    current: Option<usize>,
    tail: String,
}

impl LinkText {
    /// A new `a` (`is_anchor`) or `area` element starts.
    fn element(&mut self, is_anchor: bool) {
        self.flags.push(false);
        if is_anchor {
            self.current = Some(self.flags.len() - 1);
            self.tail.clear();
        }
    }

    fn text(&mut self, chunk: &str) {
        let Some(idx) = self.current else {
            return;
        };
        if self.flags[idx] {
            return;
        }
        self.tail.push_str(chunk);
        if marks_unsubscribe(&self.tail) {
            self.flags[idx] = true;
        } else if self.tail.len() > 256 {
            let mut cut = self.tail.len() - 16;
            while !self.tail.is_char_boundary(cut) {
                cut -= 1;
            }
            self.tail.drain(..cut);
        }
    }
}

/// Whether reading link text from raw bytes is exact for text decoded with `enc`: every
/// ASCII byte must decode to itself and nothing else may decode to ASCII.
pub(super) fn ascii_reads_as_is(enc: &'static Encoding) -> bool {
    enc == encoding_rs::UTF_8 || enc.is_single_byte()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(html: &str) -> Option<bool> {
        plain_link_text(html.as_bytes(), 0, html.len(), &mut Vec::new())
    }

    #[test]
    fn plain_markup_is_read_like_the_tokenizer() {
        assert_eq!(plain("<span>Unsubscribe</span></a> x"), Some(true));
        assert_eq!(plain("UNSUB<b class=\"x>y\">scribe</b></a>"), Some(true));
        assert_eq!(plain("Manage</a> or unsubscribe"), Some(false));
        assert_eq!(plain("<img alt=\"unsubscribe\" src=x></a>"), Some(false));
        assert_eq!(plain("a < b </> unsubscribe"), Some(true));
        assert_eq!(plain("x<br></br></span>"), None);
        assert_eq!(plain("<span>x</span></p>unsubscribe"), None);
        assert_eq!(plain("<!-- unsubscribe --></a>"), None);
        assert_eq!(plain("<script>unsubscribe</script></a>"), None);
        assert_eq!(plain("<span title='a"), None);
        assert_eq!(plain("<a href=x>nested</a>"), None);
        assert_eq!(plain("<br/><span/>un</span>subscribe"), Some(true));
    }

    #[test]
    fn letters_in_order() {
        assert!(may_spell_unsubscribe(b"U-n-S-u-b-s-c-r-i-b-e"));
        assert!(may_spell_unsubscribe(b"<!-- un -->sub<i>scribe"));
        assert!(!may_spell_unsubscribe(b"subscribe"));
        assert!(!may_spell_unsubscribe(b"Buy now</a></td>"));
    }
}
