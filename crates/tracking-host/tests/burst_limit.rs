//! One link clicked over and over: the first 20 hits within a minute are answered and
//! recorded, the next ones get 403 and are not recorded.

mod common;

use common::*;
use petrel_tracking_host::BURST_LIMIT;

#[tokio::test]
async fn twenty_clicks_then_403() {
    let h = Harness::start().await;
    let url = "https://example.com/hammered";
    let token = click_token(url, None);
    let other = click_token("https://example.com/other", None);
    let mut c = HttpClient::connect(h.addr).await;
    for i in 0..BURST_LIMIT {
        let r = c
            .send("GET", &format!("/c/{token}"), &[("User-Agent", BROWSER)])
            .await;
        assert_eq!(r.status, 302, "hit {i}");
        assert_eq!(r.header("location"), Some(url));
    }
    for _ in 0..5 {
        let r = c
            .send("GET", &format!("/c/{token}"), &[("User-Agent", BROWSER)])
            .await;
        assert_eq!(r.status, 403);
        assert_eq!(r.header("location"), None);
        assert_eq!(r.header("server"), Some("petrel"));
        assert!(!r.error_message().is_empty());
        // HEAD sees the limit too.
        let r = c.send("HEAD", &format!("/c/{token}"), &[]).await;
        assert_eq!(r.status, 403);
    }
    // Another link of the same message is not affected.
    assert_eq!(c.send("GET", &format!("/c/{other}"), &[]).await.status, 302);

    let stats = h.host.stats();
    assert_eq!(stats.clicks, u64::from(BURST_LIMIT) + 1);
    assert_eq!(stats.limited, 10);
    let events = h.finish().await;
    assert_eq!(events.len(), BURST_LIMIT as usize + 1);
    let hammered = events
        .iter()
        .filter(|e| e["target_link_url"] == url)
        .count();
    assert_eq!(hammered, BURST_LIMIT as usize);
}
