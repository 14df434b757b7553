//! Message-level rewriting: find the HTML parts, decode, rewrite, re-encode, splice back.

use std::ops::Range;

use crate::html::{rewrite_html, HtmlJob};
use crate::mime::{html_leaves, HtmlLeaf, MAX_DEPTH};
use crate::token::{Action, TokenData, TokenKeys};
use crate::transfer::{self, Cte};

/// What to track in a message and where the tracker lives. One value per binding/VMTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteOptions {
    /// Scheme and host (and optional path prefix) of the tracking host, from the
    /// `tracking-domain` setting, e.g. `https://track.example.com` or `http://127.0.0.1:8099`.
    /// A trailing `/` is ignored; query strings and fragments are refused.
    pub base_url: String,
    /// Add the bottom open pixel (SparkPost `open_tracking`).
    pub open_tracking: bool,
    /// Wrap `http(s)` links (SparkPost `click_tracking`).
    pub click_tracking: bool,
    /// Also add the top pixel (SparkPost `initial_open`); only with `open_tracking`.
    pub initial_open: bool,
    /// Unix time after which the tokens of this message stop working.
    pub expires_unix: u64,
    /// The message's subaccount (0 = the primary account): following a link marked
    /// `data-msys-unsubscribe="1"` unsubscribes the recipient from this subaccount's mail.
    pub subaccount: u64,
}

/// The rewritten message and counters for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rewritten {
    /// The complete new message. Identical to the input when nothing was rewritten.
    pub message: Vec<u8>,
    /// `text/html` parts that were changed.
    pub html_parts_rewritten: u32,
    /// `text/html` parts left alone because they could not be decoded safely (unknown
    /// transfer encoding, invalid base64, a charset that is not ASCII-compatible).
    pub html_parts_skipped: u32,
    /// Links replaced by click-tracking URLs.
    pub links_wrapped: u32,
    /// Pixels inserted (top and bottom, all parts).
    pub pixels_added: u32,
}

/// Why a message could not be rewritten. The caller should then send it unmodified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The tracking base URL is not an absolute `http(s)` URL without query or fragment, or
    /// contains characters that would need escaping inside an HTML attribute.
    #[error("invalid tracking base URL {0:?}")]
    InvalidBaseUrl(String),
    /// The MIME structure is nested deeper than the walker follows.
    #[error("MIME structure nested deeper than {MAX_DEPTH} levels")]
    NestingTooDeep,
    /// `lol_html` gave up on an HTML part (e.g. its memory limit).
    #[error("HTML part {part}: {reason}")]
    Html {
        /// 0-based index of the `text/html` part in message order.
        part: usize,
        /// The parser's message.
        reason: String,
    },
}

/// Checks the base URL and returns it without trailing slashes.
fn check_base_url(url: &str) -> Result<&str, RewriteError> {
    let bad = || RewriteError::InvalidBaseUrl(url.to_owned());
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host_ok = rest
        .split('/')
        .next()
        .is_some_and(|h| !h.is_empty() && !h.starts_with(':'));
    let chars_ok = url.bytes().all(|b| {
        b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'\'' | b'<' | b'>' | b'&' | b'?' | b'#' | b'\\' | b'`'
            )
    });
    if !host_ok || !chars_ok {
        return Err(bad());
    }
    Ok(url.trim_end_matches('/'))
}

/// The markup of the top (initial-open) pixel: hidden, zero-size container.
fn top_pixel(src: &str) -> String {
    format!(
        "<div style=\"display:none!important;max-height:0;max-width:0;overflow:hidden;\
         mso-hide:all;font-size:0;line-height:0;opacity:0\" aria-hidden=\"true\">{}</div>",
        pixel_img(src)
    )
}

fn pixel_img(src: &str) -> String {
    format!(
        "<img src=\"{src}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;\
         width:1px!important;height:1px!important;border:0;margin:0;padding:0\">"
    )
}

/// First LF decides: CRLF if it is preceded by CR (or there is none), LF otherwise.
fn detect_eol(raw: &[u8]) -> &'static [u8] {
    match memchr::memchr(b'\n', raw) {
        Some(i) if i == 0 || raw[i - 1] != b'\r' => b"\n",
        _ => b"\r\n",
    }
}

/// Adds open pixels to and wraps the links of every `text/html` part of `raw`.
///
/// `message_id` is petrel's per-recipient Signals id and `recipient` the address; both go
/// into every token, so the message must be rewritten per recipient. Only the bodies of the
/// HTML parts change (plus the part's `Content-Transfer-Encoding` field when an 8bit body has
/// to become quoted-printable); every other byte is copied unchanged. No I/O.
pub fn rewrite_message(
    raw: &[u8],
    message_id: &str,
    recipient: &str,
    keys: &TokenKeys,
    opts: &RewriteOptions,
) -> Result<Rewritten, RewriteError> {
    let base_url = check_base_url(&opts.base_url)?;
    let mut result = Rewritten::default();
    if !opts.open_tracking && !opts.click_tracking {
        result.message = raw.to_vec();
        return Ok(result);
    }
    let leaves = html_leaves(raw).map_err(|_| RewriteError::NestingTooDeep)?;
    if leaves.is_empty() {
        result.message = raw.to_vec();
        return Ok(result);
    }
    let pixel_url = |action| {
        let token = keys.sign(&TokenData {
            message_id: message_id.to_owned(),
            recipient: recipient.to_owned(),
            action,
            url: None,
            link_name: None,
            unsubscribe: None,
            expires_unix: opts.expires_unix,
        });
        format!("{base_url}/o/{token}")
    };
    let top = (opts.open_tracking && opts.initial_open)
        .then(|| top_pixel(&pixel_url(Action::InitialOpen)));
    let bottom = opts
        .open_tracking
        .then(|| pixel_img(&pixel_url(Action::Open)));
    let job = HtmlJob {
        keys,
        message_id,
        recipient,
        base_url,
        expires_unix: opts.expires_unix,
        subaccount: opts.subaccount,
        click_tracking: opts.click_tracking,
        top_pixel: top.as_deref(),
        bottom_pixel: bottom.as_deref(),
    };
    let eol = detect_eol(raw);
    let mut next_link = 0u32;
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    for (part, leaf) in leaves.iter().enumerate() {
        match rewrite_leaf(raw, leaf, eol, &job, &mut next_link) {
            Err(e) => {
                return Err(RewriteError::Html {
                    part,
                    reason: e.to_string(),
                })
            }
            Ok(None) => result.html_parts_skipped += 1,
            Ok(Some(done)) => {
                if done.body == raw[leaf.body.clone()] && done.header.is_none() {
                    continue;
                }
                result.html_parts_rewritten += 1;
                result.links_wrapped += done.links;
                result.pixels_added += done.pixels;
                if let Some(h) = done.header {
                    edits.push(h);
                }
                edits.push((leaf.body.clone(), done.body));
            }
        }
    }
    result.message = splice(raw, edits);
    Ok(result)
}

struct LeafResult {
    body: Vec<u8>,
    header: Option<(Range<usize>, Vec<u8>)>,
    links: u32,
    pixels: u32,
}

fn rewrite_leaf(
    raw: &[u8],
    leaf: &HtmlLeaf,
    eol: &[u8],
    job: &HtmlJob<'_>,
    next_link: &mut u32,
) -> Result<Option<LeafResult>, lol_html::errors::RewritingError> {
    let Some(cte) = leaf.cte else {
        return Ok(None);
    };
    let encoding = match leaf
        .charset
        .as_deref()
        .map(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
    {
        // Rewriting UTF-16 & co. byte-wise would corrupt them; lol_html refuses them too.
        Some(Some(e)) if !e.is_ascii_compatible() => return Ok(None),
        Some(Some(e)) => Some(e),
        // No or unknown charset: treat as ASCII-compatible (only ASCII is ever inserted).
        _ => None,
    };
    let body = &raw[leaf.body.clone()];
    let decoded = match cte {
        Cte::Identity | Cte::Binary => body.to_vec(),
        Cte::QuotedPrintable => transfer::qp_decode(body, eol),
        Cte::Base64 => match transfer::b64_decode(body) {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    let mut link_counter = *next_link;
    let out = rewrite_html(&decoded, encoding, job, &mut link_counter)?;
    if out.html == decoded {
        return Ok(Some(LeafResult {
            body: body.to_vec(),
            header: None,
            links: 0,
            pixels: 0,
        }));
    }
    *next_link = link_counter;
    let mut header = None;
    let new_body = match cte {
        Cte::Binary => out.html,
        Cte::Identity if !transfer::has_overlong_line(&out.html) => out.html,
        Cte::Identity => {
            // An inserted URL pushed a line over 998 octets: switch this part to QP.
            let field = b"Content-Transfer-Encoding: quoted-printable";
            header = Some(match &leaf.cte_field {
                Some(r) => (r.clone(), field.to_vec()),
                None => (leaf.header_end..leaf.header_end, [&field[..], eol].concat()),
            });
            transfer::qp_encode(&out.html, eol)
        }
        Cte::QuotedPrintable => transfer::qp_encode(&out.html, eol),
        Cte::Base64 => {
            let mut b = transfer::b64_encode(&out.html, eol);
            // Whatever whitespace ended the old body (usually one EOL) ends the new one.
            let trailing = body
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            b.extend_from_slice(&body[body.len() - trailing..]);
            b
        }
    };
    Ok(Some(LeafResult {
        body: new_body,
        header,
        links: out.links_wrapped,
        pixels: out.pixels_added,
    }))
}

/// Applies non-overlapping edits given in ascending order.
fn splice(raw: &[u8], edits: Vec<(Range<usize>, Vec<u8>)>) -> Vec<u8> {
    let extra: usize = edits.iter().map(|(_, b)| b.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + extra);
    let mut pos = 0;
    for (range, bytes) in edits {
        out.extend_from_slice(&raw[pos..range.start]);
        out.extend_from_slice(&bytes);
        pos = range.end;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_validation() {
        assert_eq!(
            check_base_url("https://t.example.com/").unwrap(),
            "https://t.example.com"
        );
        assert_eq!(
            check_base_url("HTTP://127.0.0.1:8099").unwrap(),
            "HTTP://127.0.0.1:8099"
        );
        assert_eq!(
            check_base_url("https://x/track").unwrap(),
            "https://x/track"
        );
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://x/?a=1",
            "https://x/#f",
            "https://a b",
            "https://x\"",
            "//x",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eol_detection() {
        assert_eq!(detect_eol(b"a\r\nb"), b"\r\n");
        assert_eq!(detect_eol(b"a\nb"), b"\n");
        assert_eq!(detect_eol(b"ab"), b"\r\n");
    }
}
