//! A valid token on the wrong kind of path, and paths that are not tracking URLs at all.

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn wrong_action_paths_and_unknown_paths_are_404() {
    let h = Harness::start().await;
    let click = click_token("https://example.com/", None);
    let open = open_token(Action::Open);
    let paths = [
        format!("/o/{click}"),
        format!("/c/{open}"),
        format!("/x/{open}"),
        format!("/o/{open}/"),
        format!("/oo/{open}"),
        "/".to_string(),
        "/o/".to_string(),
        "/c".to_string(),
        "/favicon.ico".to_string(),
    ];
    for path in &paths {
        let r = h.get(path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("location"), None, "{path}");
        assert_eq!(r.header("server"), Some("petrel"));
        assert_eq!(r.error_message(), "not found");
    }
    assert_eq!(h.host.stats().not_found, paths.len() as u64);
    assert!(h.finish().await.is_empty());
}
