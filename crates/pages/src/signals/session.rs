//! Who is looking: a login session (an HttpOnly, SameSite=Strict cookie holding a random
//! token; the key itself stays on the server and never appears in a URL), or, for scripts
//! and monitoring, HTTP Basic with the key as the user name, as the APIs accept it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use ring::rand::SecureRandom as _;

use super::Pages;

/// The cookie's name.
pub const COOKIE: &str = "petrel_session";
/// A session ends after this long without a page view.
pub const IDLE: Duration = Duration::from_secs(12 * 3600);
/// At most this many sessions are kept; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    key: String,
    last_used: Instant,
}

/// Signed-in browsers: token → key. In memory: a restart signs everyone out.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session for `key` and returns its token (32 random bytes, hex).
    pub fn create(&self, key: String) -> String {
        let mut raw = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .expect("the OS random generator works");
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, s| now.duration_since(s.last_used) < IDLE);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(t, _)| t.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            token.clone(),
            Session {
                key,
                last_used: now,
            },
        );
        token
    }

    /// The key of a live session, which is kept alive by the lookup.
    pub fn key(&self, token: &str) -> Option<String> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.get_mut(token)?;
        let now = Instant::now();
        if now.duration_since(s.last_used) >= IDLE {
            map.remove(token);
            return None;
        }
        s.last_used = now;
        Some(s.key.clone())
    }

    /// Ends a session (log out, or its key was refused).
    pub fn remove(&self, token: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// The session token from the `Cookie` header.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The key from `Authorization: Basic base64(key:)`.
pub fn basic_key(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let user = text
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    (!user.is_empty()).then_some(user)
}

/// `Set-Cookie` for a new session. `Secure` when the page came through a TLS proxy.
pub fn set_cookie(token: &str, headers: &HeaderMap) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let value = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        IDLE.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).expect("token is hex")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
    .expect("static text")
}

/// The key a page view uses, and how it came.
#[derive(Clone)]
pub struct Viewer {
    /// The API key.
    pub key: String,
    /// The session token, when signed in with the form (else HTTP Basic).
    pub session: Option<String>,
}

/// Guards the pages: a session or HTTP Basic gives a [`Viewer`]; anything else is sent to
/// the login form (browsers) or refused. A key the API refuses (401) ends its session, and
/// a refused HTTP Basic key gets `WWW-Authenticate` so clients may ask again.
pub async fn require(State(pages): State<Pages>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let viewer = if let Some(token) = cookie_token(headers) {
        pages.sessions.key(&token).map(|key| Viewer {
            key,
            session: Some(token),
        })
    } else {
        None
    };
    let viewer = viewer.or_else(|| basic_key(headers).map(|key| Viewer { key, session: None }));
    let Some(viewer) = viewer else {
        if headers.contains_key(header::AUTHORIZATION) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"petrel Signals\"")],
                "Unauthorized: give the API key as the HTTP Basic user name.",
            )
                .into_response();
        }
        let target = req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let to = format!("/login?{}", crate::web::qs([("next", target.as_str())]));
        return Redirect::to(&to).into_response();
    };
    req.extensions_mut().insert(viewer.clone());
    let mut resp = next.run(req).await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        match &viewer.session {
            Some(token) => {
                pages.sessions.remove(token);
                resp.headers_mut()
                    .append(header::SET_COOKIE, clear_cookie());
            }
            None => {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"petrel Signals\""),
                );
            }
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_hold_keys_until_removed() {
        let s = Sessions::default();
        let t = s.create("k1".into());
        assert_eq!(t.len(), 64);
        assert_eq!(s.key(&t).as_deref(), Some("k1"));
        assert_eq!(s.key("nope"), None);
        s.remove(&t);
        assert_eq!(s.key(&t), None);
    }

    #[test]
    fn credentials_are_read_from_cookie_and_basic() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; petrel_session=abc; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        let mut h = HeaderMap::new();
        // base64("key123:")
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5MTIzOg=="),
        );
        assert_eq!(basic_key(&h).as_deref(), Some("key123"));
        let c = set_cookie("tok", &HeaderMap::new());
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    }
}
