//! One request, start to finish: route, method, token, burst limit, event, response.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use petrel_events::{next_event_id, Event, EventKind};
use petrel_suppression::{NewEntry, Reason};
use petrel_tracking::{Action, TokenData, TokenError};

use crate::client_ip::client_ip;
use crate::limiter::Verdict;
use crate::machine::machine_reason;
use crate::{bump, response, TrackingHost};

/// Longest token looked at. Real ones stay far below (a 4096-byte URL deflates into a few
/// kilobytes); anything longer is refused before decoding.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest User-Agent kept in an event; longer ones are cut at a character boundary.
const MAX_USER_AGENT_LEN: usize = 1024;
/// SparkPost's `target_link_name` for links the author did not name.
const DEFAULT_LINK_NAME: &str = "Raw URL";

/// The two kinds of tracking URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `…/o/{token}`: a pixel.
    Open,
    /// `…/c/{token}`: a wrapped link.
    Click,
}

/// Why a request gets a 404. Kept apart for the debug log: tampering is not an operator
/// error, so none of these is logged above debug level.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("not a tracking path")]
    NoRoute,
    #[error("token longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0:?} token on the {1:?} path")]
    WrongPath(Action, Route),
    #[error("click token without an http(s) target")]
    NoTarget,
}

/// A verified hit: what to record and where to send the reader.
struct Hit {
    kind: EventKind,
    data: TokenData,
    /// `Some` for clicks.
    location: Option<HeaderValue>,
}

/// The router's only handler: every path and method ends up here.
pub(crate) async fn handle(State(host): State<Arc<TrackingHost>>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    host.respond(
        req.method(),
        req.uri().path(),
        req.headers(),
        peer,
        SystemTime::now(),
    )
}

impl TrackingHost {
    /// The whole decision, synchronous and without I/O except the spool hand-off.
    fn respond(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        now: SystemTime,
    ) -> Response {
        let Some((route, token)) = parse_path(path) else {
            return self.not_found(&Refusal::NoRoute);
        };
        let head = match *method {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                bump(&self.counters.method_not_allowed);
                return response::method_not_allowed();
            }
        };
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let hit = match self.verify(route, token, now_secs) {
            Ok(hit) => hit,
            Err(refusal) => return self.not_found(&refusal),
        };
        // HEAD is what link checkers and prefetchers send: it sees the limit but does not
        // count towards it.
        let verdict = if head {
            self.limiter.peek(token, now_secs)
        } else {
            self.limiter.hit(token, now_secs)
        };
        if verdict == Verdict::Limited {
            bump(&self.counters.limited);
            tracing::debug!(message_id = %hit.data.message_id, "tracking token over its burst limit");
            let r = response::error(StatusCode::FORBIDDEN, "too many requests for this link");
            return if head { response::without_body(r) } else { r };
        }
        let r = match hit.location.clone() {
            Some(location) => response::redirect(location),
            None => response::pixel(),
        };
        if head {
            bump(&self.counters.head);
            return response::without_body(r);
        }
        self.record(hit, headers, peer, now);
        r
    }

    fn verify(&self, route: Route, token: &str, now_secs: u64) -> Result<Hit, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::TooLong);
        }
        let data = self.config.keys.verify(token, now_secs)?;
        let (kind, location) = match (route, data.action) {
            (Route::Open, Action::InitialOpen) => (EventKind::InitialOpen, None),
            (Route::Open, Action::Open) => (EventKind::Open, None),
            (Route::Click, Action::Click { .. }) => {
                let url = data
                    .url
                    .as_deref()
                    .filter(|u| is_http_url(u))
                    .ok_or(Refusal::NoTarget)?;
                (EventKind::Click, Some(response::location(url)))
            }
            (route, action) => return Err(Refusal::WrongPath(action, route)),
        };
        Ok(Hit {
            kind,
            data,
            location,
        })
    }

    fn not_found(&self, refusal: &Refusal) -> Response {
        bump(&self.counters.not_found);
        tracing::debug!(reason = %refusal, "tracking request refused");
        response::error(StatusCode::NOT_FOUND, "not found")
    }

    /// Builds the engagement event and hands it to the spool. A spool failure costs the
    /// event, never the reader's pixel or redirect.
    fn record(&self, hit: Hit, headers: &HeaderMap, peer: Option<IpAddr>, now: SystemTime) {
        let Hit { kind, data, .. } = hit;
        let user_agent = user_agent(headers);
        let machine = machine_reason(user_agent.as_deref()).map(String::from);
        let rcpt_to = data.recipient.to_ascii_lowercase();
        let recipient_domain = rcpt_to.rsplit_once('@').map(|(_, d)| d.to_string());
        let (target_link_url, target_link_name) = match kind {
            EventKind::Click => (
                data.url,
                Some(
                    data.link_name
                        .unwrap_or_else(|| DEFAULT_LINK_NAME.to_string()),
                ),
            ),
            _ => (None, None),
        };
        let event = Event {
            rcpt_to: Some(rcpt_to),
            raw_rcpt_to: Some(data.recipient),
            recipient_domain,
            ip_address: client_ip(peer, headers, &self.config.trusted_proxies),
            user_agent,
            machine,
            customer_id: self.config.customer_id,
            target_link_url,
            target_link_name,
            // Known only for unsubscribe links; the Signals service fills in the rest.
            subaccount_id: data.unsubscribe.unwrap_or(0),
            ..Event::new(kind, next_event_id(), data.message_id, now)
        };
        let counter = match kind {
            EventKind::InitialOpen => &self.counters.initial_opens,
            EventKind::Open => &self.counters.opens,
            _ => &self.counters.clicks,
        };
        self.emit(&event, counter);
        if let Some(subaccount) = data.unsubscribe {
            self.unsubscribe(&event, subaccount);
        }
    }

    /// A followed unsubscribe link (`data-msys-unsubscribe="1"`): the `link_unsubscribe`
    /// event next to the click, and the recipient on the suppression list of `subaccount`.
    ///
    /// A hit that looks like a machine (a link scanner following every link, a request
    /// without a User-Agent) is recorded, flagged, like any other, but suppresses nobody:
    /// a suppression lasts, and a security gateway must not unsubscribe its users.
    fn unsubscribe(&self, click: &Event, subaccount: u64) {
        let event = Event {
            kind: EventKind::LinkUnsubscribe,
            event_id: next_event_id(),
            // SparkPost requires both on `link` events; tracked mail came in and went out
            // over SMTP.
            delv_method: Some("esmtp".into()),
            recv_method: Some("esmtp".into()),
            target_link_name: None,
            subaccount_id: subaccount,
            ..click.clone()
        };
        self.emit(&event, &self.counters.unsubscribes);
        let (Some(list), Some(rcpt)) = (&self.suppression, &event.rcpt_to) else {
            return;
        };
        if let Some(machine) = &event.machine {
            tracing::info!(message_id = %event.message_id, machine = %machine, "unsubscribe link followed by a machine: recipient not suppressed");
            return;
        }
        let entry = NewEntry {
            address: rcpt.clone(),
            subaccount,
            reason: Reason::LinkUnsubscribe,
            description: format!(
                "unsubscribe link {} in message {}",
                event.target_link_url.as_deref().unwrap_or("-"),
                event.message_id
            ),
        };
        match list.add(entry) {
            Ok(_) => bump(&self.counters.suppressed),
            Err(e) => {
                tracing::warn!(error = %e, message_id = %event.message_id, "unsubscribe link: recipient not added to the suppression list")
            }
        }
    }

    /// Hands `event` to the spool, counting it in `counter` (or as an emit failure).
    fn emit(&self, event: &Event, counter: &std::sync::atomic::AtomicU64) {
        match self.spool.emit(event) {
            Ok(()) => bump(counter),
            Err(e) => {
                bump(&self.counters.emit_failures);
                tracing::warn!(error = %e, message_id = %event.message_id, kind = event.kind.public_type(), "engagement event not recorded");
            }
        }
    }
}

/// `…/o/{token}` or `…/c/{token}`: the last two segments decide, so the base URL may carry
/// any path prefix. The token is one non-empty segment.
fn parse_path(path: &str) -> Option<(Route, &str)> {
    let (rest, token) = path.rsplit_once('/')?;
    if token.is_empty() {
        return None;
    }
    let route = match rest.rsplit_once('/')?.1 {
        "o" => Route::Open,
        "c" => Route::Click,
        _ => return None,
    };
    Some((route, token))
}

/// Only `http(s)` targets are redirected to: the rewriter wraps nothing else, so anything
/// else in a verified token was not signed by petrel's rewriter.
fn is_http_url(url: &str) -> bool {
    let lower = |n: usize| url.get(..n).map(str::to_ascii_lowercase);
    lower(7).as_deref() == Some("http://") || lower(8).as_deref() == Some("https://")
}

/// The User-Agent, at most [`MAX_USER_AGENT_LEN`] bytes; non-UTF-8 bytes are replaced.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(axum::http::header::USER_AGENT)?.as_bytes();
    let mut ua = String::from_utf8_lossy(raw).into_owned();
    if ua.len() > MAX_USER_AGENT_LEN {
        let mut end = MAX_USER_AGENT_LEN;
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        ua.truncate(end);
    }
    Some(ua)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/o/abc"), Some((Route::Open, "abc")));
        assert_eq!(parse_path("/c/abc"), Some((Route::Click, "abc")));
        assert_eq!(parse_path("/t/track/c/abc"), Some((Route::Click, "abc")));
        assert_eq!(parse_path("/o/"), None);
        assert_eq!(parse_path("/o/abc/"), None);
        assert_eq!(parse_path("/x/abc"), None);
        assert_eq!(parse_path("/oo/abc"), None);
        assert_eq!(parse_path("/"), None);
        assert_eq!(parse_path(""), None);
        assert_eq!(parse_path("o/abc"), None);
    }

    #[test]
    fn http_targets_only() {
        assert!(is_http_url("https://example.com/"));
        assert!(is_http_url("HTTP://example.com/"));
        assert!(!is_http_url("javascript:alert(1)"));
        assert!(!is_http_url("http:/x"));
        assert!(!is_http_url("é"));
    }

    #[test]
    fn user_agent_is_capped_at_a_char_boundary() {
        let mut h = HeaderMap::new();
        let long = format!("a{}", "é".repeat(1000));
        h.insert(
            axum::http::header::USER_AGENT,
            HeaderValue::from_bytes(long.as_bytes()).unwrap(),
        );
        let ua = user_agent(&h).unwrap();
        assert_eq!(ua.len(), 1023);
        assert!(long.starts_with(&ua));
        assert_eq!(user_agent(&HeaderMap::new()), None);
    }
}
