//! petrel-tracking-host: the HTTP host behind petrel's engagement tracking.
//!
//! `petrel-tracking` rewrites outgoing HTML so that an open fetches `{base}/o/{token}` and a
//! click goes through `{base}/c/{token}`. This crate answers those URLs:
//!
//! * `GET …/o/{token}` → 200 with a transparent 1×1 GIF, and an `initial_open` or `open`
//!   event;
//! * `GET …/c/{token}` → 302 to the URL signed into the token, and a `click` event; for a
//!   link marked `data-msys-unsubscribe="1"` also a `link_unsubscribe` event, and the
//!   recipient joins the suppression list of the subaccount named in the token;
//! * anything that does not verify → 404 with a JSON error, never a redirect;
//! * HEAD → the same status and headers, no body and no event (link checkers);
//! * a token hit more than 20 times within 60 s → 403 and no event until the window ends.
//!
//! Events go to the Signals [`EventSpool`] like every other petrel event, flagged (not
//! dropped) when the User-Agent looks like an image proxy or a link scanner
//! ([`machine_reason`]). Campaign, IP pool and subaccount are not in the token: the Signals
//! service (petrel's or SparkPost's) copies them from the delivery event with the same
//! `message_id`.
//!
//! Build a [`TrackingHost`], then either mount [`router`] yourself (serving it with
//! `into_make_service_with_connect_info::<SocketAddr>()`) or call [`serve`], which does that
//! and optionally terminates TLS. See `docs/tracking-host.md`.

mod accept;
mod client_ip;
mod handlers;
mod limiter;
mod machine;
mod response;

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use petrel_events::EventSpool;
use petrel_suppression::SuppressionList;
use petrel_tracking::TokenKeys;

pub use client_ip::client_ip;
pub use limiter::{BURST_LIMIT, BURST_WINDOW_SECS};
pub use machine::machine_reason;
pub use response::PIXEL_GIF;

use limiter::BurstLimiter;

/// What the tracking host needs to know, fixed at start (rebuild the host to change it).
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The keys tokens are verified with: the same set the rewriter signs with, including
    /// retired-for-signing keys whose links are still out there.
    pub keys: TokenKeys,
    /// SparkPost account id written to every event (`customer-id`), if configured.
    pub customer_id: Option<u64>,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed (a CDN edge or a reverse
    /// proxy on another host); loopback peers are always believed. See [`client_ip`].
    pub trusted_proxies: Vec<IpAddr>,
    /// A client must send a whole request head within this time, or its connection is
    /// closed: slow senders cannot pin connections. 30 s by default.
    pub header_read_timeout: std::time::Duration,
}

/// [`HostConfig::header_read_timeout`] unless set otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl HostConfig {
    /// A configuration with just the keys: no customer id, no trusted proxies.
    pub fn new(keys: TokenKeys) -> Self {
        HostConfig {
            keys,
            customer_id: None,
            trusted_proxies: Vec::new(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// What the host has answered since it started, for the management views and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `initial_open` events recorded (top pixel fetched).
    pub initial_opens: u64,
    /// `open` events recorded (bottom pixel fetched).
    pub opens: u64,
    /// `click` events recorded (redirects sent).
    pub clicks: u64,
    /// `link_unsubscribe` events recorded (clicks on links marked
    /// `data-msys-unsubscribe="1"`).
    pub unsubscribes: u64,
    /// Recipients added to (or refreshed on) the suppression list by those clicks.
    pub suppressed: u64,
    /// 404s: unknown paths and tokens that were malformed, forged, expired, signed with an
    /// unknown key or used on the wrong path.
    pub not_found: u64,
    /// 405s: methods other than GET and HEAD.
    pub method_not_allowed: u64,
    /// 403s from the burst limit.
    pub limited: u64,
    /// HEAD requests answered with 200/302 headers (recorded nowhere else).
    pub head: u64,
    /// Events that could not be handed to the spool (the hit was still answered).
    pub emit_failures: u64,
}

/// The counters behind [`Stats`]: relaxed atomics, one increment per request.
#[derive(Debug, Default)]
struct Counters {
    initial_opens: AtomicU64,
    opens: AtomicU64,
    clicks: AtomicU64,
    unsubscribes: AtomicU64,
    suppressed: AtomicU64,
    not_found: AtomicU64,
    method_not_allowed: AtomicU64,
    limited: AtomicU64,
    head: AtomicU64,
    emit_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The tracking host: configuration, the event spool hits are recorded to, the suppression
/// list unsubscribe clicks add to, the burst limiter and the counters. Shared by every
/// connection behind an `Arc`.
pub struct TrackingHost {
    config: HostConfig,
    spool: Arc<EventSpool>,
    suppression: Option<Arc<SuppressionList>>,
    limiter: BurstLimiter,
    counters: Counters,
}

impl std::fmt::Debug for TrackingHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackingHost")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TrackingHost {
    /// A host that records hits to `spool` (the same spool as the other Signals events, so
    /// engagement reaches the same uploader) and adds people who follow an unsubscribe link
    /// to `suppression` (the list the delivery engine checks; `None`: events only).
    pub fn new(
        config: HostConfig,
        spool: Arc<EventSpool>,
        suppression: Option<Arc<SuppressionList>>,
    ) -> Self {
        TrackingHost {
            config,
            spool,
            suppression,
            limiter: BurstLimiter::new(),
            counters: Counters::default(),
        }
    }

    /// The configuration the host runs with.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            initial_opens: get(&c.initial_opens),
            opens: get(&c.opens),
            clicks: get(&c.clicks),
            unsubscribes: get(&c.unsubscribes),
            suppressed: get(&c.suppressed),
            not_found: get(&c.not_found),
            method_not_allowed: get(&c.method_not_allowed),
            limited: get(&c.limited),
            head: get(&c.head),
            emit_failures: get(&c.emit_failures),
        }
    }
}

/// The tracker's routes as an axum router, for mounting in a larger server or serving
/// yourself. Every path is handled (the base URL may carry any prefix); it must be served
/// with `into_make_service_with_connect_info::<SocketAddr>()`, or events carry no client IP.
pub fn router(host: Arc<TrackingHost>) -> axum::Router {
    axum::Router::new()
        .fallback(handlers::handle)
        .with_state(host)
}

/// Serves the tracker on `listener` until `shutdown` completes, then lets requests in
/// progress finish.
///
/// Plain HTTP when `tls` is `None` (behind a TLS-terminating proxy or CDN, or for tests);
/// otherwise every connection is a TLS handshake first. HTTP/1.1 only: do not advertise `h2`
/// in the ALPN protocols of `tls`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    host: Arc<TrackingHost>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeout = host.config().header_read_timeout;
    accept::serve_connections(listener, tls, router(host), timeout, shutdown).await
}
