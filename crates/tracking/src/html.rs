//! Link wrapping and pixel insertion for one decoded `text/html` body. Pure: bytes in, bytes out.
//!
//! How it works:
//!
//! 1. **Scan.** One pass reads the document and reports the elements we care about (`a`,
//!    `area`, `body`) with their byte positions, skipping comments, `<script>`, CDATA and
//!    other non-markup text, so links in there are never seen. Nothing is written: the scan
//!    only records what to change and where ([`Scan`]). Ordinary markup is read by a small
//!    hand-written tokenizer ([`fast_scan`]); anything it does not model goes to a `lol_html`
//!    pass, which also defines what the hand-written one must find.
//! 2. **Assemble.** The output is the input with the changes spliced in: changed start tags
//!    written out again, pixels inserted. Every other byte is copied as is.
//!
//! Why not let `lol_html` rewrite while it parses? Recording first lets the common document
//! skip `lol_html` altogether (the hand-written scan), and the assembly copies untouched
//! bytes in a few large slices instead of re-serialising the document.
//!
//! The changed start tags are written exactly as `lol_html` serialises a modified tag (see
//! [`write_start_tag`]), so the output is byte for byte what rewriting through `lol_html`
//! gives: the differential test against [`reference`] (the previous implementation) holds
//! the two together.

mod fast_scan;
#[cfg(test)]
mod reference;

use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use encoding_rs::Encoding;
use lol_html::errors::RewritingError;
use lol_html::html_content::{Attribute, Element, EndTag};
use lol_html::{element, AsciiCompatibleEncoding, EndTagHandler, HtmlRewriter, Settings};

use crate::token::{Action, Link, RecipientSigner, TokenKeys};

/// Targets longer than this are not wrapped (SparkPost refuses to redirect to them).
pub const MAX_TARGET_LEN: usize = 4096;
/// `data-msys-linkname` values are cut to this many bytes (SparkPost's limit).
pub const MAX_LINK_NAME_LEN: usize = 63;

/// The authoring attributes: instructions to the MTA, removed from every link.
const MSYS_CLICKTRACK: &[u8] = b"data-msys-clicktrack";
const MSYS_LINKNAME: &[u8] = b"data-msys-linkname";
const MSYS_UNSUBSCRIBE: &[u8] = b"data-msys-unsubscribe";

/// What stays the same for every HTML part of one message.
pub(crate) struct HtmlJob<'a> {
    pub keys: &'a TokenKeys,
    pub message_id: &'a str,
    pub recipient: &'a str,
    /// Base URL without a trailing slash.
    pub base_url: &'a str,
    pub expires_unix: u64,
    /// The subaccount links marked `data-msys-unsubscribe="1"` unsubscribe from.
    pub subaccount: u64,
    pub click_tracking: bool,
    /// Markup for the initial-open pixel, if wanted.
    pub top_pixel: Option<&'a str>,
    /// Markup for the open pixel, if wanted.
    pub bottom_pixel: Option<&'a str>,
}

/// The rewritten HTML and what was done to it.
pub(crate) struct HtmlOutcome {
    pub html: Vec<u8>,
    pub links_wrapped: u32,
    pub pixels_added: u32,
}

fn is_http_url(url: &str) -> bool {
    let b = url.as_bytes();
    let has = |p: &[u8]| b.len() > p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    has(b"http://") || has(b"https://")
}

fn encoding_setting(enc: Option<&'static Encoding>) -> AsciiCompatibleEncoding {
    enc.and_then(AsciiCompatibleEncoding::new)
        .unwrap_or_else(AsciiCompatibleEncoding::utf_8)
}

fn settings<'h, 's>(enc: Option<&'static Encoding>) -> Settings<'h, 's> {
    Settings::new()
        .with_encoding(encoding_setting(enc))
        // We wrap links, we do not sanitise: parse sloppy markup instead of giving up.
        .with_strict(false)
        // Without a declared charset, honour <meta charset> like a browser would.
        .with_adjust_charset_on_meta_tag(enc.is_none())
}

/// Rewrites one decoded HTML body. `next_link` is the message-wide counter of wrapped links
/// (the `link_index` of the next one).
pub(crate) fn rewrite_html(
    input: &[u8],
    enc: Option<&'static Encoding>,
    job: &HtmlJob<'_>,
    next_link: &mut u32,
) -> Result<HtmlOutcome, RewritingError> {
    let scan = match fast_scan::scan(input, enc, job) {
        Some(scan) => scan,
        None => scan(input, enc, job)?,
    };
    let (mut out, links_wrapped) = assemble(input, &scan, job, next_link);
    let mut pixels_added = scan.pixels;
    if let Some(bottom) = job.bottom_pixel {
        if !scan.bottom_placed {
            // No </body>: at the end, but before trailing white space (keeps a final EOL).
            let trailing = out
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let at = out.len() - trailing;
            out.splice(at..at, bottom.bytes());
        }
        pixels_added += 1;
    }
    if let (Some(top), false) = (job.top_pixel, scan.body_seen) {
        // The pixel markup is ASCII, identical in every ASCII-compatible charset.
        let at = start_insertion_point(&out);
        out.splice(at..at, top.bytes());
        pixels_added += 1;
    }
    Ok(HtmlOutcome {
        html: out,
        links_wrapped,
        pixels_added,
    })
}

// ---------------------------------------------------------------------------------------
// Scanning

/// What a scan found: every change to make, in document order.
#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Default)]
struct Scan {
    edits: Vec<Edit>,
    /// Links whose start tag may change; [`Edit::Link`] indexes into this.
    links: Vec<LinkTag>,
    /// The raw attribute ranges of all `links`; [`LinkTag::attrs`] indexes into this (one
    /// vector for all links instead of one per link).
    attrs: Vec<Range<usize>>,
    /// The target URLs of the links to wrap, one after the other; [`Wrap::url`] indexes into
    /// this (one string for all links instead of one per link).
    urls: String,
    /// The first `<body>` start tag was seen (it gets the top pixel).
    body_seen: bool,
    /// The bottom pixel has its place before the first body's end tag.
    bottom_placed: bool,
    /// Pixels counted by the `body` handlers.
    pixels: u32,
}

impl Scan {
    /// An empty scan with room for what a document of `len` bytes typically has (about a
    /// link per 300 bytes in newsletters), so the vectors rarely grow.
    fn with_capacity_for(len: usize) -> Scan {
        let links = len / 256 + 8;
        Scan {
            edits: Vec::with_capacity(links + 2),
            links: Vec::with_capacity(links),
            attrs: Vec::with_capacity(links * 4),
            urls: String::with_capacity(links * 128),
            ..Scan::default()
        }
    }
}

/// One change to the input, at a position in it.
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Edit {
    /// Insert this pixel at this offset.
    Pixel(usize, PixelKind),
    /// Maybe rewrite the start tag of `Scan::links[i]` (decided when assembling).
    Link(usize),
}

/// Which pixel an [`Edit::Pixel`] inserts.
#[cfg_attr(test, derive(Debug, PartialEq))]
#[derive(Clone, Copy)]
enum PixelKind {
    Top,
    Bottom,
}

/// A link start tag that changes: its authoring attributes go, and it may be wrapped.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct LinkTag {
    /// The start tag in the input.
    tag: Range<usize>,
    /// End of the tag name (it starts after the `<`).
    name_end: usize,
    /// The attributes written back (all but `data-msys-*`): a range of `Scan::attrs`.
    attrs: Range<usize>,
    self_closing: bool,
    /// A `data-msys-*` attribute was removed, so the tag changes even if it is not wrapped.
    removed_attrs: bool,
    /// Set if the link is wrapped.
    wrap: Option<Wrap>,
}

/// A link to wrap.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Wrap {
    /// The decoded, trimmed target URL: a range of `Scan::urls`.
    url: Range<usize>,
    link_name: Option<String>,
    /// Index (in `Scan::attrs`) of the `href` attribute whose value is replaced.
    href: usize,
    /// `data-msys-unsubscribe="1"`: following it unsubscribes the recipient.
    unsubscribe: bool,
}

/// The `lol_html` scan (for documents [`fast_scan`] does not handle): records the changes
/// without writing anything.
///
/// Only the elements that matter are selected (`a`, `area`, and `body` when pixels are
/// wanted), so `lol_html` skips over everything else without tokenizing it.
fn scan(
    input: &[u8],
    enc: Option<&'static Encoding>,
    job: &HtmlJob<'_>,
) -> Result<Scan, RewritingError> {
    let state = Rc::new(RefCell::new(Scan::with_capacity_for(input.len())));
    let mut s = settings(enc).append_element_content_handler(element!("a, area", |el| {
        scan_link(input, job, &mut state.borrow_mut(), el);
        Ok(())
    }));
    if job.top_pixel.is_some() || job.bottom_pixel.is_some() {
        s = s.append_element_content_handler(element!("body", |el| {
            scan_body(job, &state, el);
            Ok(())
        }));
    }
    // Nothing is rewritten through `lol_html`: its output is discarded.
    let mut rw = HtmlRewriter::new(s, |_: &[u8]| {});
    rw.write(input)?;
    rw.end()?;
    Ok(state.take())
}

fn scan_body(job: &HtmlJob<'_>, state: &Rc<RefCell<Scan>>, el: &mut Element<'_, '_>) {
    let mut st = state.borrow_mut();
    if std::mem::replace(&mut st.body_seen, true) {
        return;
    }
    if job.top_pixel.is_some() {
        // Right after the start tag. (An element without content gets nothing, but the pixel
        // is still counted: that is what inserting through lol_html did.)
        if el.can_have_content() {
            let at = el.source_location().bytes().end;
            st.edits.push(Edit::Pixel(at, PixelKind::Top));
        }
        st.pixels += 1;
    }
    if job.bottom_pixel.is_some() {
        drop(st);
        let state = Rc::clone(state);
        // Right before the end tag that closes the body (`</body>`, or `</html>` when that is
        // missing). Fails only for elements that cannot have an end tag; then the pixel goes
        // at the end of the document.
        let handler: EndTagHandler<'static> = Box::new(move |end: &mut EndTag<'_>| {
            let mut st = state.borrow_mut();
            if !std::mem::replace(&mut st.bottom_placed, true) {
                let at = end.source_location().bytes().start;
                st.edits.push(Edit::Pixel(at, PixelKind::Bottom));
            }
            Ok(())
        });
        let _ = el.on_end_tag(handler);
    }
}

fn scan_link(input: &[u8], job: &HtmlJob<'_>, st: &mut Scan, el: &mut Element<'_, '_>) {
    let tag = el.source_location().bytes();
    // Known for every attribute that was parsed (only added ones have no position).
    let attrs = el
        .attributes()
        .iter()
        .filter_map(|attr| attribute_ranges(input, attr).map(|(name, raw)| (name, raw, attr)));
    let found = FoundLink {
        tag,
        self_closing: el.is_self_closing(),
    };
    record_link(input, job, st, found, attrs, |attr| {
        attribute_value(input, attr)
    });
}

/// A link start tag as a scan found it.
struct FoundLink {
    /// The start tag in the input.
    tag: Range<usize>,
    self_closing: bool,
}

/// Records what changes in a link start tag (if anything). `attrs` are its attributes in
/// order: name range, raw range (see [`attribute_ranges`]) and whatever `value` needs to
/// give the attribute's value (character references intact).
fn record_link<'i, A>(
    input: &'i [u8],
    job: &HtmlJob<'_>,
    st: &mut Scan,
    found: FoundLink,
    attrs: impl Iterator<Item = (Range<usize>, Range<usize>, A)>,
    value: impl Fn(&A) -> Cow<'i, str>,
) {
    let FoundLink { tag, self_closing } = found;
    let name_end = tag_name_end(input, tag.start + 1);

    let attrs_start = st.attrs.len();
    let mut msys = MsysAttrs::default();
    let mut href = None;
    for (name, raw, attr) in attrs {
        let name = &input[name];
        if msys.take(name, || value(&attr).into_owned()) {
            continue;
        }
        if href.is_none() && name.eq_ignore_ascii_case(b"href") {
            href = Some((st.attrs.len(), value(&attr)));
        }
        st.attrs.push(raw);
    }
    let wrap = href
        .filter(|_| job.click_tracking && !msys.opted_out())
        .and_then(|(href, target)| {
            Some(Wrap {
                url: wrap_url(&target, &mut st.urls)?,
                link_name: msys.link_name(),
                href,
                unsubscribe: msys.unsubscribe(),
            })
        });
    if wrap.is_none() && !msys.removed {
        // Nothing changes: forget the attributes.
        st.attrs.truncate(attrs_start);
        return;
    }
    st.links.push(LinkTag {
        tag,
        name_end,
        attrs: attrs_start..st.attrs.len(),
        self_closing,
        removed_attrs: msys.removed,
        wrap,
    });
    st.edits.push(Edit::Link(st.links.len() - 1));
}

/// The `data-msys-*` attributes of a link (first value of each), removed from the output.
#[derive(Default)]
struct MsysAttrs {
    clicktrack: Option<String>,
    link_name: Option<String>,
    unsubscribe: Option<String>,
    removed: bool,
}

impl MsysAttrs {
    /// Takes `attr` if it is one of the authoring attributes.
    fn take(&mut self, name: &[u8], value: impl FnOnce() -> String) -> bool {
        let slot = if name.eq_ignore_ascii_case(MSYS_CLICKTRACK) {
            &mut self.clicktrack
        } else if name.eq_ignore_ascii_case(MSYS_LINKNAME) {
            &mut self.link_name
        } else if name.eq_ignore_ascii_case(MSYS_UNSUBSCRIBE) {
            &mut self.unsubscribe
        } else {
            return false;
        };
        if slot.is_none() {
            *slot = Some(value());
        }
        self.removed = true;
        true
    }

    /// `data-msys-clicktrack="0"`.
    fn opted_out(&self) -> bool {
        self.clicktrack.as_deref().map(str::trim) == Some("0")
    }

    /// `data-msys-unsubscribe="1"`.
    fn unsubscribe(&self) -> bool {
        self.unsubscribe.as_deref().map(str::trim) == Some("1")
    }

    /// The link name for the token: entity-decoded, trimmed, cut to 63 bytes; empty is none.
    fn link_name(&self) -> Option<String> {
        let n = self.link_name.as_deref()?;
        let n = htmlize::unescape_attribute(n).trim().to_owned();
        Some(truncate(n, MAX_LINK_NAME_LEN)).filter(|n| !n.is_empty())
    }
}

/// The target of a link whose `href` value (character references intact) is `value`, decoded
/// into `urls` (its range there), unless the target is not to be wrapped: not `http(s)`, or
/// too long.
fn wrap_url(value: &str, urls: &mut String) -> Option<Range<usize>> {
    // lol_html hands attribute values over with character references intact.
    let start = urls.len();
    push_unescaped(value, urls);
    let decoded = &urls[start..];
    let is_space = |c: char| c.is_ascii_whitespace();
    let leading = decoded.len() - decoded.trim_start_matches(is_space).len();
    let url = decoded.trim_matches(is_space);
    if !is_http_url(url) || url.len() > MAX_TARGET_LEN {
        urls.truncate(start);
        return None;
    }
    Some(start + leading..start + leading + url.len())
}

/// Appends `value` with its character references decoded (HTML attribute rules, as `htmlize`
/// does) to `out`. Link URLs are full of `&amp;` and rarely hold any other reference, so that
/// case skips the general decoder and its entity table (the result is the same).
fn push_unescaped(value: &str, out: &mut String) {
    let start = out.len();
    let mut rest = value;
    while let Some(amp) = memchr::memchr(b'&', rest.as_bytes()) {
        if !rest[amp..].starts_with("&amp;") {
            // Some other reference: leave all of it to the general decoder.
            out.truncate(start);
            out.push_str(&htmlize::unescape_attribute(value));
            return;
        }
        out.push_str(&rest[..=amp]);
        rest = &rest[amp + "&amp;".len()..];
    }
    out.push_str(rest);
}

/// The value of an attribute as `lol_html` decodes it (from the document's charset), without
/// the copy for the usual pure-ASCII value, which reads the same in every ASCII-compatible
/// charset.
fn attribute_value<'i>(input: &'i [u8], attr: &Attribute<'_>) -> Cow<'i, str> {
    let raw = attr
        .value_source_location()
        .and_then(|loc| input.get(loc.bytes()));
    match raw.filter(|v| v.is_ascii()).map(std::str::from_utf8) {
        Some(Ok(ascii)) => Cow::Borrowed(ascii),
        _ => Cow::Owned(attr.value()),
    }
}

/// The name and the raw bytes (`name`, `name=value`, `name = "value"`, ...) of an attribute
/// in the input: what `lol_html` writes back for an attribute left alone.
fn attribute_ranges(input: &[u8], attr: &Attribute<'_>) -> Option<(Range<usize>, Range<usize>)> {
    let name = attr.name_source_location()?.bytes();
    let end = match attr.value_source_location() {
        None => name.end,
        Some(value) => {
            let value = value.bytes();
            // A quoted value: the raw bytes include the closing quote.
            let quoted =
                value.start > 0 && matches!(input.get(value.start - 1), Some(b'"' | b'\''));
            value.end + usize::from(quoted)
        }
    };
    Some((name.clone(), name.start..end))
}

/// Where the tag name starting at `start` ends (HTML tokenizer rules: at white space, `/`
/// or `>`).
fn tag_name_end(input: &[u8], start: usize) -> usize {
    input[start..]
        .iter()
        .position(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'\x0C' | b'/' | b'>'))
        .map_or(input.len(), |n| start + n)
}

// ---------------------------------------------------------------------------------------
// Assembling

/// Writes the input with the scanned changes applied; returns it and the number of links
/// wrapped. Links are wrapped here, in document order, so `link_index` counts the links
/// actually wrapped.
fn assemble(input: &[u8], scan: &Scan, job: &HtmlJob<'_>, next_link: &mut u32) -> (Vec<u8>, u32) {
    let mut signer = ClickSigner::new(job, *next_link);
    // A wrapped href is ~200 bytes longer than the original.
    let mut out = Vec::with_capacity(input.len() + scan.links.len() * 256 + 1024);
    let mut copied = 0;
    for edit in &scan.edits {
        match *edit {
            Edit::Pixel(at, kind) => {
                out.extend_from_slice(&input[copied..at]);
                copied = at;
                let pixel = match kind {
                    PixelKind::Top => job.top_pixel,
                    PixelKind::Bottom => job.bottom_pixel,
                };
                out.extend_from_slice(pixel.unwrap_or_default().as_bytes());
            }
            Edit::Link(i) => {
                let link = &scan.links[i];
                let wrap = link.wrap.as_ref();
                if wrap.is_none() && !link.removed_attrs {
                    continue;
                }
                out.extend_from_slice(&input[copied..link.tag.start]);
                copied = link.tag.end;
                let wrap = wrap.map(|w| (w, &scan.urls[w.url.clone()]));
                write_start_tag(input, link, &scan.attrs, wrap, &mut signer, &mut out);
            }
        }
    }
    out.extend_from_slice(&input[copied..]);
    *next_link = signer.next_link;
    (out, signer.wrapped)
}

/// Writes a changed link start tag the way `lol_html` serialises a modified tag: `<`, the
/// name, each remaining attribute after one space (untouched ones byte for byte, the wrapped
/// `href` as `href="…"` with the name's original case), then ` />` or `>`.
fn write_start_tag(
    input: &[u8],
    link: &LinkTag,
    attrs: &[Range<usize>],
    wrap: Option<(&Wrap, &str)>,
    signer: &mut ClickSigner<'_>,
    out: &mut Vec<u8>,
) {
    out.push(b'<');
    out.extend_from_slice(&input[link.tag.start + 1..link.name_end]);
    for i in link.attrs.clone() {
        out.push(b' ');
        let raw = &input[attrs[i].clone()];
        match wrap {
            Some((w, url)) if w.href == i => {
                out.extend_from_slice(&raw[..b"href".len()]);
                out.extend_from_slice(b"=\"");
                signer.write_click_url(url, w, out);
                out.push(b'"');
            }
            _ => out.extend_from_slice(raw),
        }
    }
    if link.self_closing {
        // A space keeps a `/` from joining an unquoted last attribute value.
        if !link.attrs.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"/>");
    } else {
        out.push(b'>');
    }
}

/// Writes the click URLs of one HTML part, counting the links.
struct ClickSigner<'a> {
    base_url: &'a str,
    signer: RecipientSigner<'a>,
    subaccount: u64,
    next_link: u32,
    wrapped: u32,
}

impl<'a> ClickSigner<'a> {
    fn new(job: &'a HtmlJob<'a>, next_link: u32) -> Self {
        ClickSigner {
            base_url: job.base_url,
            signer: RecipientSigner::new(job.keys, job.message_id, job.recipient, job.expires_unix),
            subaccount: job.subaccount,
            next_link,
            wrapped: 0,
        }
    }

    /// Appends `{base_url}/c/{token}` for the next wrapped link, whose target is `url`.
    fn write_click_url(&mut self, url: &str, wrap: &Wrap, out: &mut Vec<u8>) {
        out.extend_from_slice(self.base_url.as_bytes());
        out.extend_from_slice(b"/c/");
        let action = Action::Click {
            link_index: self.next_link,
        };
        let link = Link {
            url: Some(url),
            name: wrap.link_name.as_deref(),
            unsubscribe: wrap.unsubscribe.then_some(self.subaccount),
        };
        self.signer.append_token(action, &link, out);
        self.next_link = self.next_link.wrapping_add(1);
        self.wrapped += 1;
    }
}

/// Where to put the initial-open pixel when there is no `<body>`: after a BOM, leading
/// whitespace and a doctype (so the document does not fall into quirks mode), else at 0.
fn start_insertion_point(html: &[u8]) -> usize {
    let mut i = if html.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    while i < html.len() && html[i].is_ascii_whitespace() {
        i += 1;
    }
    if html
        .get(i..i + 9)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"<!doctype"))
    {
        if let Some(gt) = memchr::memchr(b'>', &html[i..]) {
            return i + gt + 1;
        }
    }
    if html.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    }
}

fn truncate(mut s: String, max: usize) -> String {
    s.truncate(s.floor_char_boundary(max));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_detection() {
        assert!(is_http_url("HTTPS://x"));
        assert!(is_http_url("http://x"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("//x"));
        assert!(!is_http_url("javascript:http://x"));
    }

    #[test]
    fn insertion_point_skips_doctype() {
        assert_eq!(start_insertion_point(b"<!DOCTYPE html>\n<p>"), 15);
        assert_eq!(start_insertion_point(b"<p>"), 0);
        assert_eq!(start_insertion_point(b"\xEF\xBB\xBF<p>"), 3);
    }

    const SECRET: &[u8] = b"html-test-secret-0123456789";

    fn job<'a>(keys: &'a TokenKeys, click: bool, top: bool, bottom: bool) -> HtmlJob<'a> {
        HtmlJob {
            keys,
            message_id: "0123456789abcdef0003",
            recipient: "fred@example.org",
            base_url: "https://t.example.com",
            expires_unix: 4_000_000_000,
            subaccount: 7,
            click_tracking: click,
            top_pixel: top.then_some("<div>TOP</div>"),
            bottom_pixel: bottom.then_some("<img src=\"BOTTOM\">"),
        }
    }

    /// Pieces of HTML that exercise the tokenizer corners, the link rules and the
    /// serialisation of rewritten tags.
    const PIECES: &[&str] = &[
        "<a href=\"https://example.com/a?x=1&amp;y=2\">Shop</a>",
        "<A HREF='https://example.com/up'>UP</A>",
        "<a class=x href = \"HtTpS://Example.com/Mixed\" >4</a>",
        "<a href=https://example.com/unquoted?a=1&amp;b=2>u</a>",
        "<a href=\"  \thttps://example.com/ws \n\">ws</a>",
        "<a\nhref=\"https://example.com/nl\"\ttitle='a>b'>nl</a>",
        "<a href=\"https://example.com/dup\" href=\"https://example.com/second\">dup</a>",
        "<a href>empty</a>",
        "<a href=>empty2</a>",
        "<a/href=\"https://example.com/slash\">slash</a>",
        "<a href=\"https://example.com/self\"/>",
        "<a href=https://example.com/selfu/>",
        "<a href=\"https://example.com/selfsp\" />",
        "<area shape=rect href=\"https://example.com/area\">",
        "<AREA SHAPE=rect COORDS=\"0,0,1,1\" HREF='https://example.com/AREA'/>",
        "<a href=\"mailto:x@example.com\">mail</a>",
        "<a href=\"#top\">top</a>",
        "<a href=\"&#104;ttps://example.com/encoded\">enc</a>",
        "<a href=\"https://example.com/?a=1&copy=5&amp;e=&lt;6&gt;&quot;\">ent</a>",
        "<a href=\"https://example.com/nt\" data-msys-clicktrack=\"0\">no track</a>",
        "<a data-msys-clicktrack=\" 0 \" href=\"https://example.com/nt2\">nt2</a>",
        "<a data-msys-clicktrack=\"1\" href=\"https://example.com/t\" DATA-MSYS-CLICKTRACK=0>t</a>",
        "<a href=\"https://example.com/u3\" data-msys-unsubscribe=\"1\">stop</a>",
        "<a href=\"https://example.com/u4\" data-msys-unsubscribe=0>keep</a>",
        "<a data-msys-linkname=\"Buy &amp; save\" href=\"https://example.com/n1\">n1</a>",
        "<a href=\"https://example.com/n2\" data-msys-linkname=\"  \">n2</a>",
        "<a href=\"https://example.com/n3\" data-msys-linkname=\"ééééééééééééééééééééééééééééééééé\">n3</a>",
        "<a href=\"mailto:y@example.com\" data-msys-linkname=x>m2</a>",
        "<a data-msys-linkname=only>no href</a>",
        "<area data-msys-clicktrack=0 href=https://example.com/area-nt>",
        "<a href=\"https://example.com/Unsubscribe?u=9\">leave</a>",
        "<a href=\"https://example.com/u2\"><span>Click to <b>UNSUBSCRIBE</b></span></a>",
        "<a href=\"https://example.com/u5\">un<b>subscribe</b></a>",
        "<a href=\"https://example.com/u6\">Unsubscribe",
        "<a href=\"https://example.com/u7\"><!-- unsubscribe -->comment</a>",
        "<!-- unsubscribe --><a href=\"https://example.com/c1\">c1</a>",
        "<!-- <a href=\"https://example.com/comment\">unsubscribe</a> -->",
        "<script>var s='<a href=\"https://example.com/script\">unsubscribe';</script>",
        "<a href=\"https://example.com/s2\"><script>unsubscribe</script></a>",
        "<style>a{color:red} /* <a href='https://example.com/style'> */</style>",
        "<title>unsubscribe <a href=\"https://example.com/title\"></title>",
        "<textarea><a href=\"https://example.com/ta\">x</a></textarea>",
        "<svg><a href=\"https://example.com/svg\"/>unsubscribe</svg>",
        "<svg><a href=\"https://example.com/svg2\">unsubscribe</a><style><a href='https://example.com/svgstyle'>s</a></style></svg>",
        "<math><mtext><a href=\"https://example.com/math\">m</a></mtext></math>",
        "<![CDATA[ <a href=\"https://example.com/cdata\">c</a> ]]>",
        "<table><tr><td><a href=\"https://example.com/b1\">one<td><a href=\"https://example.com/b2\">two</table>",
        "<a href=\"https://example.com/b4\"><a href=\"https://example.com/b5\">nested</a></a>",
        "<p>unsubscribe here</p>",
        "</a>",
        "</p> unsubscribe </div>",
        "<body style=\"margin:0\">",
        "<BODY>",
        "<body/>",
        "</body>",
        "</BODY >",
        "</html>",
        "<html><head><title>t</title></head>",
        "<!DOCTYPE html>",
        "\u{feff}",
        "\r\n",
        "  \n",
        "<p>Caf\u{e9} cr\u{e8}me</p>",
        "<a href=\"https://example.com/caf\u{e9}\">caf\u{e9}</a>",
        "<a href=\"https://example.com/long/campaign?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=weekly-42&amp;utm_content=hero\">long</a>",
        "<plaintext>",
        "<noscript><a href=\"https://example.com/ns\">ns</a></noscript>",
        "<xmp><a href=\"https://example.com/xmp\"></xmp>",
        "<iframe><a href=\"https://example.com/if\"></iframe>",
        "<a href=\"https://example.com/eof",
        "<a href=https://example.com/eof2",
        "<",
        "& < > \"",
        "<meta charset=\"iso-8859-1\">",
    ];

    /// Byte pieces for charsets: in Shift_JIS `\x83u` is one character (so the raw bytes
    /// spell "unsubscribe" but the text does not), invalid UTF-8, and `<meta>` tags that switch
    /// the charset in the middle of a document without a declared one.
    const RAW_PIECES: &[&[u8]] = &[
        b"<a href=\"https://example.com/sj\">\x83unsubscribe</a>",
        b"<a href=\"https://example.com/sj2\"><b>\x83u</b>nsubscribe\x82\xa0</a>",
        b"<p>\x82\xa0 unsubscribe \x93\xfa</p>",
        b"<a href=\"https://example.com/inv\">\xff\xfe unsubscribe \xc3</a>",
        b"<meta charset=\"shift_jis\">",
        b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">",
    ];

    /// Deterministic pseudo-random documents made of [`PIECES`] and [`RAW_PIECES`].
    fn documents() -> Vec<Vec<u8>> {
        let pieces: Vec<&[u8]> = PIECES
            .iter()
            .map(|p| p.as_bytes())
            .chain(RAW_PIECES.iter().copied())
            .collect();
        let mut docs: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let long = format!(
            "<a href=\"https://example.com/{}\">long</a>",
            "x".repeat(5000)
        );
        docs.push(long.into_bytes());
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for n in 0..600 {
            let mut doc = Vec::new();
            for _ in 0..(n % 40) + 1 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                doc.extend_from_slice(pieces[(x % pieces.len() as u64) as usize]);
            }
            docs.push(doc);
        }
        docs
    }

    /// The scan-and-assemble rewriter produces exactly what rewriting through `lol_html`
    /// (the previous implementation) produced: same bytes, counters and link indices.
    #[test]
    fn same_output_as_rewriting_through_lol_html() {
        let keys = TokenKeys::new(7, SECRET).unwrap();
        let latin1 = Encoding::for_label(b"iso-8859-1");
        let sjis = Encoding::for_label(b"shift_jis");
        for (d, doc) in documents().iter().enumerate() {
            for (o, (click, top, bottom)) in [
                (true, true, true),
                (true, false, true),
                (true, false, false),
                (false, true, true),
                (false, false, false),
            ]
            .into_iter()
            .enumerate()
            {
                let job = job(&keys, click, top, bottom);
                for enc in [None, Encoding::for_label(b"utf-8"), latin1, sjis] {
                    if o > 1 && enc.is_some() {
                        continue;
                    }
                    let (mut n_new, mut n_old) = (5, 5);
                    let new = rewrite_html(doc, enc, &job, &mut n_new).unwrap();
                    let old = reference::rewrite_html(doc, enc, &job, &mut n_old).unwrap();
                    let label = format!(
                        "doc {d} options {o} {enc:?}: {}",
                        String::from_utf8_lossy(doc)
                    );
                    assert_eq!(
                        String::from_utf8_lossy(&new.html),
                        String::from_utf8_lossy(&old.html),
                        "{label}"
                    );
                    assert_eq!(new.html, old.html, "{label}");
                    assert_eq!(new.links_wrapped, old.links_wrapped, "{label}");
                    assert_eq!(new.pixels_added, old.pixels_added, "{label}");
                    assert_eq!(n_new, n_old, "{label}");
                }
            }
        }
    }

    /// The hand-written scan finds exactly what the `lol_html` pass finds, wherever it does
    /// not hand over to it; and it handles the documents that are made of ordinary markup.
    #[test]
    fn fast_scan_agrees_with_lol_html_scan() {
        let keys = TokenKeys::new(7, SECRET).unwrap();
        let mut docs = documents();
        docs.push(NEWSLETTER.as_bytes().to_vec());
        let mut handled = 0;
        for (d, doc) in docs.iter().enumerate() {
            for (click, top, bottom) in [
                (true, true, true),
                (true, false, true),
                (true, true, false),
                (false, true, true),
                (false, false, false),
            ] {
                let job = job(&keys, click, top, bottom);
                for enc in [None, Encoding::for_label(b"utf-8")] {
                    let Some(fast) = fast_scan::scan(doc, enc, &job) else {
                        continue;
                    };
                    handled += 1;
                    let slow = scan(doc, enc, &job).unwrap();
                    assert_eq!(
                        fast,
                        slow,
                        "doc {d} {click} {top} {bottom} {enc:?}: {}",
                        String::from_utf8_lossy(doc)
                    );
                }
            }
        }
        assert!(handled > 1000, "only {handled} scans were fast");
        let job = job(&keys, true, true, true);
        let utf8 = Encoding::for_label(b"utf-8");
        assert!(fast_scan::scan(NEWSLETTER.as_bytes(), utf8, &job).is_some());
    }

    /// A document shaped like a typical newsletter.
    const NEWSLETTER: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
        <title>Spring</title><style>a{color:red} td>p{margin:0}</style>\
        <!--[if mso]><xml>x</xml><![endif]--></head>\n<BODY style=\"margin:0\">\
        <table><tr><td><a href=\"https://example.com/a?x=1&amp;y=2\" target=_blank>A</a>\
        <a class='b' href = 'https://example.com/b' data-msys-linkname=\"hero\">B</a>\
        <area href=https://example.com/area/><a href=\"https://example.com/u\">Unsubscribe</a>\
        <img src=\"x.png\" alt=\"a > b\"/><script>if (a</b) {}</script>\
        <a/href=\"https://example.com/s\" data-msys-clicktrack=\"0\">s</a></td></tr></table>\
        </body>\n</html>\n";

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("ééé".into(), 3), "é");
    }
}
