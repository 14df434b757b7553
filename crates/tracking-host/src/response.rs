//! The few responses the tracker sends, with exactly the headers the documentation promises.

use std::fmt::Write as _;

use axum::body::Body;
use axum::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, EXPIRES, LOCATION, PRAGMA, SERVER,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

/// A transparent 1×1 GIF89a: two-colour table, graphic control extension marking colour 0
/// transparent, one LZW-coded pixel. 43 bytes, the smallest common tracking pixel.
pub const PIXEL_GIF: &[u8; 43] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\
\x21\xf9\x04\x01\x00\x00\x00\x00\
\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b";

/// Neither browsers, mail clients, proxies nor CDNs may keep a copy: every open must reach
/// the tracker (a cached pixel is an open nobody hears about).
const NO_CACHE: &str = "no-cache, no-store, must-revalidate, private, max-age=0";
const X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");

/// A response with the headers every answer carries.
fn base(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(SERVER, HeaderValue::from_static("petrel"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
    r
}

/// 200 with the pixel.
pub fn pixel() -> Response {
    let mut r = base(StatusCode::OK, Body::from(&PIXEL_GIF[..]));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("43"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(EXPIRES, HeaderValue::from_static("0"));
    r
}

/// 302 to `location`, which must already be a valid header value (see [`location`]).
pub fn redirect(location: HeaderValue) -> Response {
    let mut r = base(StatusCode::FOUND, Body::empty());
    let h = r.headers_mut();
    h.insert(LOCATION, location);
    h.insert(X_ROBOTS_TAG, HeaderValue::from_static("noindex"));
    h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// The `Location` value for a click target: the URL byte for byte, except that control
/// characters other than tab (which no header may carry, and which browsers would strip or
/// escape anyway) are percent-encoded. Non-ASCII bytes are sent as they are, as the URL was in the message.
pub fn location(url: &str) -> HeaderValue {
    if let Ok(v) = HeaderValue::from_bytes(url.as_bytes()) {
        return v;
    }
    let mut escaped = String::with_capacity(url.len() + 16);
    for c in url.chars() {
        if c.is_ascii_control() && c != '\t' {
            let _ = write!(escaped, "%{:02X}", c as u8);
        } else {
            escaped.push(c);
        }
    }
    // Only control characters make `from_bytes` fail, and none are left.
    HeaderValue::from_bytes(escaped.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("/"))
}

/// An error in SparkPost's API shape, `{"errors":[{"message":"…"}]}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }] }).to_string();
    let len = body.len();
    let mut r = base(status, Body::from(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// 405 for anything but GET and HEAD on a tracking path.
pub fn method_not_allowed() -> Response {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// The same response without its body, for HEAD; `Content-Length` stays what GET would send.
pub fn without_body(mut r: Response) -> Response {
    *r.body_mut() = Body::empty();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_is_a_43_byte_gif89a() {
        assert_eq!(PIXEL_GIF.len(), 43);
        assert!(PIXEL_GIF.starts_with(b"GIF89a"));
        assert_eq!(PIXEL_GIF[6..10], [1, 0, 1, 0], "1x1");
        assert_eq!(PIXEL_GIF[42], b';', "trailer");
        // Graphic control extension with the transparency flag set.
        assert_eq!(PIXEL_GIF[19..23], [0x21, 0xf9, 0x04, 0x01]);
    }

    #[test]
    fn location_is_exact_or_escapes_controls_only() {
        let u = "https://example.com/a?b=1&c=%20d#frag";
        assert_eq!(location(u).as_bytes(), u.as_bytes());
        let u = "https://example.com/caf\u{e9}";
        assert_eq!(location(u).as_bytes(), u.as_bytes());
        assert_eq!(
            location("https://example.com/a\r\nb\x7fc").as_bytes(),
            b"https://example.com/a%0D%0Ab%7Fc"
        );
    }
}
