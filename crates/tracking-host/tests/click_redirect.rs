//! GET on a wrapped link: 302 to the signed URL byte for byte, and one `click` event with
//! the target URL and link name ("Raw URL" when the author named none).

mod common;

use common::*;

#[tokio::test]
async fn click_redirects_to_the_exact_url_and_records_the_click() {
    let h = Harness::start().await;
    let named_url =
        "https://shop.example.com/spring?utm_source=mail&utm_campaign=spring%202026&x=a+b#top";
    let raw_url = "http://Example.org/caf\u{e9}?q=1&amp=2";
    let named = click_token(named_url, Some("Buy now"));
    let raw = click_token(raw_url, None);

    let r = h
        .get(&format!("/c/{named}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(named_url));
    assert_eq!(r.header("cache-control"), Some(NO_CACHE));
    assert_eq!(r.header("x-robots-tag"), Some("noindex"));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("server"), Some("petrel"));
    assert!(r.body.is_empty());

    // Non-ASCII URLs go out as they were in the message (UTF-8 bytes).
    let r = h
        .get(&format!("/prefix/c/{raw}"), &[("User-Agent", BROWSER)])
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(raw_url));
    assert_eq!(h.host.stats().clicks, 2);

    let events = h.finish().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    for e in &events {
        assert_eq!(e["type"], "click");
        assert_eq!(e["message_id"], MESSAGE_ID);
        assert_eq!(e["rcpt_to"], "fred.smith@example.com");
        assert_eq!(e["ip_address"], "127.0.0.1");
        assert_eq!(e["user_agent"], BROWSER);
    }
    assert_eq!(events[0]["target_link_url"], named_url);
    assert_eq!(events[0]["target_link_name"], "Buy now");
    assert_eq!(events[1]["target_link_url"], raw_url);
    assert_eq!(events[1]["target_link_name"], "Raw URL");
}
