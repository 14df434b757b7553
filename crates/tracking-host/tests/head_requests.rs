//! HEAD gets the same status and headers as GET, no body, and records nothing: it is what
//! link checkers and prefetchers send, not readers.

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn head_has_get_headers_without_body_or_event() {
    let h = Harness::start().await;
    let open = open_token(Action::InitialOpen);
    let url = "https://example.com/landing?a=1";
    let click = click_token(url, Some("Landing"));
    let mut c = HttpClient::connect(h.addr).await;

    for path in [
        format!("/o/{open}"),
        format!("/c/{click}"),
        "/o/bogus".to_string(),
    ] {
        let get = c.send("GET", &path, &[("User-Agent", BROWSER)]).await;
        let head = c.send("HEAD", &path, &[("User-Agent", BROWSER)]).await;
        assert_eq!(head.status, get.status, "{path}");
        let strip_date = |hs: &[(String, String)]| {
            hs.iter()
                .filter(|(n, _)| n != "date")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip_date(&head.headers),
            strip_date(&get.headers),
            "{path}"
        );
        assert!(head.body.is_empty());
        assert!(
            c.nothing_pending().await,
            "HEAD response carried a body: {path}"
        );
    }
    let r = c.send("HEAD", &format!("/o/{open}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("43"));
    assert_eq!(r.header("content-type"), Some("image/gif"));
    let r = c.send("HEAD", &format!("/c/{click}"), &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(url));

    let stats = h.host.stats();
    assert_eq!(stats.head, 4);
    assert_eq!((stats.initial_opens, stats.clicks), (1, 1));
    let events = h.finish().await;
    // Only the two GETs.
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["initial_open", "click"]);
}
