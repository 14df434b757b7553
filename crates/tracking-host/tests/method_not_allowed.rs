//! Anything but GET and HEAD on a tracking path is 405 with `Allow: GET, HEAD`.

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn post_and_friends_are_405() {
    let h = Harness::start().await;
    let open = open_token(Action::Open);
    let click = click_token("https://example.com/", None);
    for (method, path) in [
        ("POST", format!("/o/{open}")),
        ("POST", format!("/c/{click}")),
        ("PUT", format!("/c/{click}")),
        ("DELETE", format!("/o/{open}")),
        ("OPTIONS", format!("/c/{click}")),
    ] {
        let r = h.request(method, &path, &[("Content-Length", "0")]).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
        assert_eq!(r.header("location"), None);
        assert_eq!(r.header("server"), Some("petrel"));
        assert_eq!(r.error_message(), "method not allowed");
    }
    assert_eq!(h.host.stats().method_not_allowed, 5);
    assert!(h.finish().await.is_empty());
}
