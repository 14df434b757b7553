//! Who a request is really from: the `Host` a browser was pointed at, and the page (`Origin`)
//! that made it send a state-changing request.
//!
//! `http-access` looks only at the TCP peer. A page in a browser on the operator's machine is
//! a loopback peer too: a form or `fetch` posted to `http://127.0.0.1:8080/deleteQueue`
//! deleted a queue (CSRF), and a page on a name that resolves to 127.0.0.1 once it has loaded
//! (DNS rebinding) could read `/messageBody`. A browser always tells both: the name in the
//! address bar is the `Host` header, and a `POST`/`PUT`/`DELETE` carries the `Origin` of the
//! page that made it. So:
//!
//! - `Host` must be an IP address, `localhost`, or one of the configuration's `host-name`s
//!   (any port): a rebinding page's own name is none of those;
//! - a state-changing request whose `Origin` (or, without one, `Referer`) names any other
//!   host, or that a browser marks `Sec-Fetch-Site: cross-site`, is refused.
//!
//! Scripts and the `petrel` commands send no `Origin`, so they keep working as before.

use std::net::IpAddr;

use axum::http::{HeaderMap, Method};

/// Why a request is refused, for the error answer.
pub(crate) fn check(method: &Method, headers: &HeaderMap, names: &[String]) -> Result<(), String> {
    if let Some(host) = header(headers, "host") {
        if !known_host(authority_host(host), names) {
            return Err(format!(
                "Host `{host}` is not a name of this management API (use an IP address, localhost or a host-name of the configuration)"
            ));
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if header(headers, "sec-fetch-site") == Some("cross-site") {
        return Err("a cross-site request may not change anything here".into());
    }
    let page = header(headers, "origin").or_else(|| header(headers, "referer"));
    if let Some(page) = page {
        // `Origin: null` (sandboxed frames, file: pages) is foreign too.
        let host = page
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .map(authority_host);
        if !host.is_some_and(|h| known_host(h, names)) {
            return Err(format!(
                "a request from the page `{page}` may not change anything here"
            ));
        }
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The host of `host[:port]`, `[v6][:port]` or a bare IPv6 address.
fn authority_host(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => a,
    }
}

fn known_host(host: &str, names: &[String]) -> bool {
    let host = host.trim_end_matches('.');
    host.parse::<IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, pairs: &[(&'static str, &str)]) -> Result<(), String> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        check(&method, &h, &["mta1.example.com".to_string()])
    }

    #[test]
    fn hosts_of_this_api_pass_and_others_do_not() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "::1",
            "10.1.2.3",
            "MTA1.example.com:8080",
            "mta1.example.com.",
        ] {
            assert!(req(Method::GET, &[("host", ok)]).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
        ] {
            assert!(req(Method::GET, &[("host", bad)]).is_err(), "{bad}");
        }
        // No Host at all (HTTP/1.0 scripts): no browser sends that.
        assert!(req(Method::GET, &[]).is_ok());
    }

    #[test]
    fn state_changes_from_foreign_pages_are_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(req(Method::POST, &[host]).is_ok(), "scripts send no Origin");
        assert!(req(Method::POST, &[host, ("origin", "http://127.0.0.1:8080")]).is_ok());
        assert!(req(Method::POST, &[host, ("origin", "http://evil.example")]).is_err());
        assert!(req(Method::DELETE, &[host, ("origin", "null")]).is_err());
        assert!(req(Method::POST, &[host, ("referer", "https://evil.example/x")]).is_err());
        assert!(req(Method::POST, &[host, ("sec-fetch-site", "cross-site")]).is_err());
        // Reads are not state changes: a foreign page may not read them anyway (no CORS).
        assert!(req(Method::GET, &[host, ("origin", "http://evil.example")]).is_ok());
    }
}
