//! What every page response shares: the security headers (a strict Content-Security-Policy),
//! the `Server-Timing` header the page benchmark reads, HTML rendering with a plain error
//! page, the same-origin check for forms, and query strings.

use std::time::Instant;

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use crate::assets;

/// Only the service's own scripts, styles and images; no inline script or style, no
/// framing, forms post only back to the service.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every page and asset response, and `Server-Timing:
/// total;dur=…` (milliseconds spent in the server) so the page benchmark and a browser's
/// developer tools see the server's share of a page load.
pub async fn headers(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show live data to a signed-in user: never from a shared cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("total;dur={ms:.1}")) {
        h.insert("server-timing", v);
    }
    resp
}

/// One entry of a page's navigation bar.
pub struct NavItem {
    /// Shown text.
    pub label: &'static str,
    /// Where it leads.
    pub href: String,
    /// This is the page shown (`aria-current="page"`).
    pub current: bool,
}

/// An API request a page made, shown under the page as a curl command.
pub struct CallView {
    /// `curl …` reproducing it.
    pub curl: String,
    /// HTTP status and time, e.g. `200 · 12 ms`.
    pub outcome: String,
}

/// What the page layout (`base.html`) needs beyond the page's own content.
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// `Signals` or `MTA monitor`.
    pub product: &'static str,
    /// Where the brand links to.
    pub home: &'static str,
    /// The navigation bar.
    pub nav: Vec<NavItem>,
    /// Show the "Log out" button (signed in with a session cookie).
    pub logout: bool,
    /// The API requests behind the page.
    pub calls: Vec<CallView>,
    /// Asset version, for cache-busting URLs.
    pub v: &'static str,
    /// Extra links at the right of the bar (e.g. the monitor's link to the Signals pages).
    pub aside: Vec<(String, String)>,
}

impl Chrome {
    /// A layout with no navigation (login and error pages start from this).
    pub fn bare(title: impl Into<String>, product: &'static str, home: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            product,
            home,
            nav: Vec::new(),
            logout: false,
            calls: Vec::new(),
            v: assets::version(),
            aside: Vec::new(),
        }
    }
}

/// Renders a template, or a plain 500 when the template fails (it never should: askama
/// checks templates at compile time, so only a formatting error can get here).
pub fn html<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!("page template: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "page template error").into_response()
        }
    }
}

/// A page that explains a failure in words.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The layout.
    pub chrome: Chrome,
    /// HTTP status shown as the heading's context.
    pub status: u16,
    /// One line: what went wrong.
    pub heading: String,
    /// What to do about it.
    pub detail: String,
    /// A link onwards: (text, href).
    pub next: Option<(String, String)>,
}

/// The error page as a response with `status`.
pub fn error_page(
    chrome: Chrome,
    status: StatusCode,
    heading: impl Into<String>,
    detail: impl Into<String>,
    next: Option<(String, String)>,
) -> Response {
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        heading: heading.into(),
        detail: detail.into(),
        next,
    };
    html(status, &page)
}

/// A form post came from a page of this service: `Origin` (or, without it, `Referer`)
/// names the host the request was sent to. Browsers send `Origin` on every cross-site
/// POST, so a form on another site cannot act for a signed-in user or a trusted IP.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let matches = |url: &str| {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        rest.is_some_and(|r| {
            let authority = r.split('/').next().unwrap_or("");
            authority.eq_ignore_ascii_case(host)
        })
    };
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => matches(origin),
        None => headers
            .get(header::REFERER)
            .and_then(|r| r.to_str().ok())
            .is_none_or(matches),
    }
}

/// `a=1&b=two%20words` from pairs, leaving out empty values.
pub fn qs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

/// Percent-encodes one path segment (a facet value in a drill-down URL).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn same_origin_accepts_own_pages_and_refuses_others() {
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:8097"),
            ("origin", "http://127.0.0.1:8097")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8097"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8097"),
            ("origin", "null")
        ])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:8097"),
            ("referer", "http://127.0.0.1:8097/login")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:8097"),
            ("referer", "http://127.0.0.1:8097.evil.example/")
        ])));
        // No Origin and no Referer: a non-browser client (curl); its own request.
        assert!(same_origin(&h(&[("host", "127.0.0.1:8097")])));
        assert!(!same_origin(&h(&[])));
    }

    #[test]
    fn query_strings_and_path_segments_are_encoded() {
        assert_eq!(qs([("a", "x y"), ("b", ""), ("c", "1&2")]), "a=x+y&c=1%262");
        assert_eq!(path_segment("spring/sale <1>"), "spring%2Fsale%20%3C1%3E");
    }
}
