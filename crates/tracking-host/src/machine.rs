//! Telling machine fetches from people: image proxies and link scanners.
//!
//! A large share of opens and clicks are not made by the recipient: mailbox providers fetch
//! images through their own proxies (Gmail, Yahoo, Apple Mail Privacy Protection), and
//! corporate security gateways follow every link of a message before it is delivered. Such
//! hits are **flagged, not dropped** (the event's `machine` field): the request happened,
//! and only whoever reads the data can decide whether an Apple proxy open counts.
//!
//! The rules are one table, [`RULES`], checked in order; the first match wins.

/// How a rule compares the User-Agent.
#[derive(Debug, Clone, Copy)]
enum Match {
    /// The whole header equals this, byte for byte.
    Exact(&'static str),
    /// The header contains this, ignoring ASCII case. Patterns are written in lower case.
    Contains(&'static str),
}

/// The reason written to the event when a rule matches.
const IMAGE_PROXY: &str = "image-proxy";
/// See [`IMAGE_PROXY`].
const LINK_SCANNER: &str = "link-scanner";
/// Written when the request has no (or an empty) User-Agent: browsers and mail clients
/// always send one, scripts often do not.
pub const NO_USER_AGENT: &str = "no-user-agent";

/// Every rule, in the order they are tried. Keep `HeadlessChrome` out of it: petrel's
/// end-to-end test drives headless Chromium as a human reader.
const RULES: &[(Match, &str)] = &[
    // Image proxies of mailbox providers: they fetch the pixel when the message is opened
    // (Gmail, Yahoo) or when it arrives (Apple), so the open is real but the IP address and
    // User-Agent are the proxy's.
    (Match::Contains("googleimageproxy"), IMAGE_PROXY),
    (Match::Contains("yahoomailproxy"), IMAGE_PROXY),
    // Apple Mail Privacy Protection's fetcher sends just this, nothing after it; every real
    // browser adds a platform comment.
    (Match::Exact("Mozilla/5.0"), IMAGE_PROXY),
    // Generic robots: search engines, link-preview fetchers, monitoring.
    (Match::Contains("bot"), LINK_SCANNER),
    (Match::Contains("spider"), LINK_SCANNER),
    (Match::Contains("crawler"), LINK_SCANNER),
    // Secure e-mail gateways that follow every link before (or while) delivering the message.
    (Match::Contains("barracuda"), LINK_SCANNER),
    (Match::Contains("mimecast"), LINK_SCANNER),
    (Match::Contains("proofpoint"), LINK_SCANNER),
    (Match::Contains("symantec"), LINK_SCANNER),
    (Match::Contains("trend micro"), LINK_SCANNER),
    (Match::Contains("forcepoint"), LINK_SCANNER),
    (Match::Contains("cisco"), LINK_SCANNER),
    // HTTP libraries and command-line tools: scripts and home-made scanners, never a mail
    // client.
    (Match::Contains("curl/"), LINK_SCANNER),
    (Match::Contains("wget"), LINK_SCANNER),
    (Match::Contains("python-requests"), LINK_SCANNER),
    (Match::Contains("python-urllib"), LINK_SCANNER),
    (Match::Contains("go-http-client"), LINK_SCANNER),
    (Match::Contains("java/"), LINK_SCANNER),
    (Match::Contains("libwww"), LINK_SCANNER),
];

/// Why a request with this User-Agent looks like a machine, or `None` for a person.
///
/// Pure and runs on every hit, so it lower-cases the header once (on the stack for any
/// realistic length) and then looks for each pattern; the reasons are stable strings
/// (`no-user-agent`, `image-proxy`, `link-scanner`) that reports can group by.
pub fn machine_reason(user_agent: Option<&str>) -> Option<&'static str> {
    let ua = match user_agent.map(str::trim) {
        None | Some("") => return Some(NO_USER_AGENT),
        Some(ua) => ua,
    };
    let mut stack = [0u8; 1024];
    let heap;
    let lower: &str = if ua.len() <= stack.len() {
        let buf = &mut stack[..ua.len()];
        buf.copy_from_slice(ua.as_bytes());
        buf.make_ascii_lowercase();
        // ASCII lower-casing keeps UTF-8 valid, so this cannot fail.
        std::str::from_utf8(buf).unwrap_or_default()
    } else {
        heap = ua.to_ascii_lowercase();
        &heap
    };
    RULES
        .iter()
        .find(|(m, _)| match m {
            Match::Exact(s) => ua == *s,
            Match::Contains(s) => lower.contains(s),
        })
        .map(|&(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (None, Some("no-user-agent")),
            (Some(""), Some("no-user-agent")),
            (Some("   "), Some("no-user-agent")),
            (
                Some("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"),
                Some("image-proxy"),
            ),
            (
                Some("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"),
                Some("image-proxy"),
            ),
            (Some("Mozilla/5.0"), Some("image-proxy")),
            (Some("Mozilla/5.0 "), Some("image-proxy")),
            (
                Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
                Some("link-scanner"),
            ),
            (Some("Baiduspider"), Some("link-scanner")),
            (Some("SomeCrawler/1.0"), Some("link-scanner")),
            (Some("Barracuda Sentinel (EE)"), Some("link-scanner")),
            (Some("Mimecast-URL-Protect"), Some("link-scanner")),
            (Some("ProofPoint URL Defense"), Some("link-scanner")),
            (Some("Symantec Web Security"), Some("link-scanner")),
            (Some("Trend Micro InterScan"), Some("link-scanner")),
            (Some("Forcepoint Email Security"), Some("link-scanner")),
            (Some("Cisco-ESA URL scanner"), Some("link-scanner")),
            (Some("curl/8.5.0"), Some("link-scanner")),
            (Some("Wget/1.21.4"), Some("link-scanner")),
            (Some("python-requests/2.31.0"), Some("link-scanner")),
            (Some("Python-urllib/3.12"), Some("link-scanner")),
            (Some("Go-http-client/1.1"), Some("link-scanner")),
            (Some("Java/17.0.2"), Some("link-scanner")),
            (Some("libwww-perl/6.72"), Some("link-scanner")),
            // People.
            (
                Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
                None,
            ),
            (
                Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"),
                None,
            ),
            (
                Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"),
                None,
            ),
            (Some("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531)"), None),
            (Some("Thunderbird/115.0"), None),
        ];
        for (ua, want) in cases {
            assert_eq!(machine_reason(*ua), *want, "{ua:?}");
        }
    }

    #[test]
    fn long_headers_are_searched_whole() {
        let long = format!("Mozilla/5.0 ({}) MimeCast", "x".repeat(3000));
        assert_eq!(machine_reason(Some(&long)), Some("link-scanner"));
        let long = format!("Mozilla/5.0 ({}) Safari", "\u{e9}".repeat(3000));
        assert_eq!(machine_reason(Some(&long)), None);
    }

    #[test]
    fn patterns_are_lower_case() {
        for (m, _) in RULES {
            if let Match::Contains(s) = m {
                assert_eq!(*s, s.to_ascii_lowercase(), "pattern {s:?}");
            }
        }
    }
}
