//! Image proxies and scanners are recorded like everyone else, with a `machine` reason.

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn machine_hits_are_flagged_not_dropped() {
    let h = Harness::start().await;
    let open = open_token(Action::Open);
    let click = click_token("https://example.com/", None);
    let google =
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36";

    assert_eq!(
        h.get(&format!("/o/{open}"), &[("User-Agent", google)])
            .await
            .status,
        200
    );
    assert_eq!(
        h.get(&format!("/o/{open}"), &[("User-Agent", "Mozilla/5.0")])
            .await
            .status,
        200
    );
    assert_eq!(h.get(&format!("/o/{open}"), &[]).await.status, 200);
    assert_eq!(
        h.get(
            &format!("/c/{click}"),
            &[("User-Agent", "Mimecast URL Protect/1.0")]
        )
        .await
        .status,
        302
    );
    assert_eq!(
        h.get(&format!("/c/{click}"), &[("User-Agent", headless)])
            .await
            .status,
        302
    );

    let events = h.finish().await;
    assert_eq!(events.len(), 5, "{events:#?}");
    assert_eq!(events[0]["user_agent"], google);
    assert_eq!(events[0]["machine"], "image-proxy");
    assert_eq!(events[1]["machine"], "image-proxy");
    assert_eq!(events[2]["machine"], "no-user-agent");
    assert!(events[2].get("user_agent").is_none());
    assert_eq!(events[3]["machine"], "link-scanner");
    assert!(
        events[4].get("machine").is_none(),
        "headless Chromium is a reader: {}",
        events[4]
    );
}
