//! What a reader's mail client would load and follow in a message: the images of its HTML
//! part (tracking pixels among them), its links, and which link unsubscribes. Pure.
//!
//! The unsubscribe link is the one marked `data-msys-unsubscribe="1"`; petrel removes that
//! attribute when it rewrites a part for tracking (wrapping the link like every other), so
//! without it the link whose address or text says "unsubscribe" is taken. The click goes to
//! the first other `http(s)` link.

use std::cell::RefCell;

use lol_html::{element, text, HtmlRewriter, Settings};
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One `<a href>` of the HTML part.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// The target, character references decoded, white space trimmed.
    pub href: String,
    /// `data-msys-unsubscribe="1"`.
    pub marked_unsubscribe: bool,
    /// The text between `<a>` and `</a>`.
    pub text: String,
}

/// The parts of an HTML body the sink acts on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Every `<img src>` that is an `http(s)` URL, in document order.
    pub images: Vec<String>,
    /// Every `<a href>`, in document order.
    pub links: Vec<Link>,
}

impl Page {
    /// The link a reader uses to unsubscribe, if there is one.
    pub fn unsubscribe(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.marked_unsubscribe)
            .or_else(|| self.links.iter().find(|l| says_unsubscribe(l)))
            .filter(|l| is_http(&l.href))
            .map(|l| l.href.as_str())
    }

    /// The link a reader clicks: the first `http(s)` one that is not the unsubscribe link.
    pub fn click(&self) -> Option<&str> {
        let unsub = self.unsubscribe();
        self.links
            .iter()
            .filter(|l| is_http(&l.href) && !l.marked_unsubscribe && !says_unsubscribe(l))
            .map(|l| l.href.as_str())
            .find(|h| Some(*h) != unsub)
    }
}

fn says_unsubscribe(l: &Link) -> bool {
    contains_ci(&l.href, "unsubscribe") || contains_ci(&l.text, "unsubscribe")
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_ascii_lowercase().contains(needle)
}

fn is_http(url: &str) -> bool {
    let l = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// The first `text/html` part of a message, decoded (transfer encoding and charset).
pub fn html_part(message: &[u8]) -> Option<String> {
    // mail-parser can panic on some malformed multiparts; a bad message must not take the
    // sink down.
    std::panic::catch_unwind(|| {
        let msg = MessageParser::default().parse(message)?;
        msg.parts.iter().find_map(|p| match &p.body {
            PartType::Html(h)
                if p.content_type().is_some_and(|ct| {
                    ct.ctype().eq_ignore_ascii_case("text")
                        && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("html"))
                }) =>
            {
                Some(h.to_string())
            }
            _ => None,
        })
    })
    .ok()
    .flatten()
}

/// The images and links of an HTML document.
pub fn page(html: &str) -> Page {
    let page = RefCell::new(Page::default());
    let mut rewriter = HtmlRewriter::new(
        Settings::new()
            .with_strict(false)
            .append_element_content_handler(element!("img[src]", |el| {
                if let Some(src) = el.get_attribute("src") {
                    let src = decode(&src);
                    if is_http(&src) {
                        page.borrow_mut().images.push(src);
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(element!("a[href]", |el| {
                let href = decode(&el.get_attribute("href").unwrap_or_default());
                let marked = el
                    .get_attribute("data-msys-unsubscribe")
                    .is_some_and(|v| v.trim() == "1");
                page.borrow_mut().links.push(Link {
                    href,
                    marked_unsubscribe: marked,
                    text: String::new(),
                });
                Ok(())
            }))
            .append_element_content_handler(text!("a[href]", |t| {
                if let Some(l) = page.borrow_mut().links.last_mut() {
                    l.text.push_str(t.as_str());
                }
                Ok(())
            })),
        |_: &[u8]| {},
    );
    // lol_html accepts any input in non-strict mode; an error leaves what was found so far.
    let _ = rewriter
        .write(html.as_bytes())
        .and_then(|()| rewriter.end());
    page.into_inner()
}

fn decode(v: &str) -> String {
    htmlize::unescape_attribute(v)
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML: &str = r#"<html><body><div style="display:none"><img src="http://127.0.0.1:8098/o/TOP" width="1" height="1"></div>
<p>Hi</p><img src="cid:logo"><a href="mailto:help@x.example">help</a>
<a href="http://127.0.0.1:8098/c/AAA&amp;x">Shop now</a>
<a href="http://127.0.0.1:8098/c/BBB">More</a>
<a href="https://brand.example/u?id=1">Unsubscribe</a>
<img src="http://127.0.0.1:8098/o/BOTTOM" width="1" height="1"></body></html>"#;

    #[test]
    fn finds_pixels_the_click_and_the_unsubscribe_link() {
        let p = page(HTML);
        assert_eq!(
            p.images,
            vec![
                "http://127.0.0.1:8098/o/TOP",
                "http://127.0.0.1:8098/o/BOTTOM"
            ]
        );
        assert_eq!(p.click(), Some("http://127.0.0.1:8098/c/AAA&x"));
        assert_eq!(p.unsubscribe(), Some("https://brand.example/u?id=1"));
    }

    #[test]
    fn the_marked_link_wins_and_is_never_clicked() {
        let p = page(
            r#"<a href="http://127.0.0.1:9/stop" data-msys-unsubscribe="1">Manage</a><a href="http://127.0.0.1:9/unsubscribe">unsubscribe</a><a href="http://127.0.0.1:9/shop">shop</a>"#,
        );
        assert_eq!(p.unsubscribe(), Some("http://127.0.0.1:9/stop"));
        assert_eq!(p.click(), Some("http://127.0.0.1:9/shop"));
        let none = page("<p>no links</p>");
        assert_eq!((none.click(), none.unsubscribe()), (None, None));
    }

    #[test]
    fn html_part_is_decoded() {
        let msg = b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain http://127.0.0.1/x\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<a href=3D\"http://127.0.0.1:1/c/T\">go</a>\r\n--b--\r\n";
        let html = html_part(msg).unwrap();
        assert_eq!(page(&html).click(), Some("http://127.0.0.1:1/c/T"));
        assert_eq!(html_part(b"Subject: x\r\n\r\nplain only\r\n"), None);
    }
}
