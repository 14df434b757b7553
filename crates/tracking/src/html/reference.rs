//! The straightforward HTML rewriter this crate used to ship, kept for tests as the
//! executable definition of the output: one `lol_html` pass rewrites the tags through
//! `lol_html`'s own serialiser. The scan-and-assemble rewriter in `html.rs` must produce
//! exactly the same bytes (see its differential test).

use std::cell::Cell;
use std::rc::Rc;

use encoding_rs::Encoding;
use lol_html::errors::RewritingError;
use lol_html::html_content::{ContentType, EndTag};
use lol_html::{element, AsciiCompatibleEncoding, EndTagHandler, HtmlRewriter, Settings};

use super::{HtmlJob, HtmlOutcome, MAX_LINK_NAME_LEN, MAX_TARGET_LEN};
use crate::token::{Action, TokenData};

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

/// Rewrites one decoded HTML body. `next_link` is the message-wide counter of wrapped links
/// (the `link_index` of the next one).
pub(crate) fn rewrite_html(
    input: &[u8],
    enc: Option<&'static Encoding>,
    job: &HtmlJob<'_>,
    next_link: &mut u32,
) -> Result<HtmlOutcome, RewritingError> {
    let link_counter = Cell::new(*next_link);
    let links_wrapped = Cell::new(0u32);
    let pixels = Cell::new(0u32);
    let body_seen = Cell::new(false);
    let bottom_done = Rc::new(Cell::new(false));
    let mut out = Vec::with_capacity(input.len() + 2048);

    let s = settings(enc)
        .append_element_content_handler(element!("a, area", |el| {
            // The authoring attributes are instructions to the MTA: never sent on.
            let clicktrack = el.get_attribute("data-msys-clicktrack");
            let link_name = el.get_attribute("data-msys-linkname");
            let unsubscribe_attr = el.get_attribute("data-msys-unsubscribe");
            for a in [
                "data-msys-clicktrack",
                "data-msys-linkname",
                "data-msys-unsubscribe",
            ] {
                el.remove_attribute(a);
            }
            if !job.click_tracking || clicktrack.as_deref().map(str::trim) == Some("0") {
                return Ok(());
            }
            let Some(href) = el.get_attribute("href") else {
                return Ok(());
            };
            // lol_html hands attribute values over with character references intact.
            let decoded = htmlize::unescape_attribute(href.as_str());
            let url = decoded.trim_matches(|c: char| c.is_ascii_whitespace());
            if !is_http_url(url) || url.len() > MAX_TARGET_LEN {
                return Ok(());
            }
            let unsubscribe = unsubscribe_attr.as_deref().map(str::trim) == Some("1");
            let link_name = link_name.map(|n| {
                let n = htmlize::unescape_attribute(n.as_str()).trim().to_owned();
                truncate(n, MAX_LINK_NAME_LEN)
            });
            let link_index = link_counter.get();
            let token = job.keys.sign(&TokenData {
                message_id: job.message_id.to_owned(),
                recipient: job.recipient.to_owned(),
                action: Action::Click { link_index },
                url: Some(url.to_owned()),
                link_name: link_name.filter(|n| !n.is_empty()),
                unsubscribe: unsubscribe.then_some(job.subaccount),
                expires_unix: job.expires_unix,
            });
            el.set_attribute("href", &format!("{}/c/{}", job.base_url, token))?;
            link_counter.set(link_index.wrapping_add(1));
            links_wrapped.set(links_wrapped.get() + 1);
            Ok(())
        }))
        .append_element_content_handler(element!("body", |el| {
            if body_seen.replace(true) {
                return Ok(());
            }
            if let Some(top) = job.top_pixel {
                el.prepend(top, ContentType::Html);
                pixels.set(pixels.get() + 1);
            }
            if let Some(bottom) = job.bottom_pixel {
                let bottom = bottom.to_owned();
                let done = Rc::clone(&bottom_done);
                // Fails only for elements that cannot have an end tag; then the document-end
                // handler places the pixel.
                let handler: EndTagHandler<'static> = Box::new(move |end: &mut EndTag<'_>| {
                    if !done.replace(true) {
                        end.before(&bottom, ContentType::Html);
                    }
                    Ok(())
                });
                let _ = el.on_end_tag(handler);
            }
            Ok(())
        }));
    let mut rw = HtmlRewriter::new(s, |c: &[u8]| out.extend_from_slice(c));
    rw.write(input)?;
    rw.end()?;

    let mut pixels_added = pixels.get();
    if let Some(bottom) = job.bottom_pixel {
        if !bottom_done.get() {
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
    if let (Some(top), false) = (job.top_pixel, body_seen.get()) {
        // The pixel markup is ASCII, identical in every ASCII-compatible charset.
        let at = start_insertion_point(&out);
        out.splice(at..at, top.bytes());
        pixels_added += 1;
    }
    *next_link = link_counter.get();
    Ok(HtmlOutcome {
        html: out,
        links_wrapped: links_wrapped.get(),
        pixels_added,
    })
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
