//! Which address an open or click came from.
//!
//! The tracker often runs behind a local nginx or a CDN edge, where every TCP peer is the
//! proxy and the reader's address is only in `X-Forwarded-For` / `X-Real-IP`. Those headers
//! are written by whoever sends the request, so they are believed only when the TCP peer is
//! a proxy petrel was told about (or loopback, i.e. a proxy on the same machine); anyone else
//! could put any address there.
//!
//! The address is analytics data (the event's `ip_address`), not an access control input:
//! the first `X-Forwarded-For` entry is what the first proxy saw or what the client claimed.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client address of a request: the TCP peer, or, when the peer is loopback or listed in
/// `trusted_proxies`, the first valid address of `X-Forwarded-For`, else `X-Real-IP`, when
/// present and parseable. `None` only when the peer is unknown (router served without
/// connection info).
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer.map(|ip| ip.to_canonical())?;
    if !(peer.is_loopback() || trusted_proxies.iter().any(|p| p.to_canonical() == peer)) {
        return Some(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(parse_ip);
    let real = || {
        headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_ip)
    };
    Some(forwarded.or_else(real).unwrap_or(peer))
}

/// An address as proxies write it: `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678` or
/// `[2001:db8::1]:5678`, surrounded by optional white space.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers_say() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "5.6.7.8")]);
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &h, &[]),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn loopback_peer_uses_first_valid_forwarded_address() {
        let h = headers(&[("x-forwarded-for", "garbage, 198.51.100.7, 10.0.0.1")]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &h, &[]),
            Some(ip("198.51.100.7"))
        );
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:443")]);
        assert_eq!(client_ip(Some(ip("::1")), &h, &[]), Some(ip("2001:db8::5")));
        // Split over two header lines: the first line comes first.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1:1234"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), &h, &[]),
            Some(ip("198.51.100.1"))
        );
    }

    #[test]
    fn trusted_proxy_falls_back_to_real_ip_then_peer() {
        let proxy = ip("192.0.2.10");
        let h = headers(&[
            ("x-forwarded-for", "nonsense"),
            ("x-real-ip", " 198.51.100.3 "),
        ]);
        assert_eq!(
            client_ip(Some(proxy), &h, &[proxy]),
            Some(ip("198.51.100.3"))
        );
        assert_eq!(
            client_ip(Some(proxy), &HeaderMap::new(), &[proxy]),
            Some(proxy)
        );
    }

    #[test]
    fn mapped_ipv4_peer_is_canonical() {
        let h = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(
            client_ip(Some(ip("::ffff:127.0.0.1")), &h, &[]),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_ip(Some(ip("::ffff:203.0.113.1")), &h, &[]),
            Some(ip("203.0.113.1"))
        );
        assert_eq!(client_ip(None, &h, &[]), None);
    }
}
