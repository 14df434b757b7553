//! An authentic token past its expiry is refused like a forged one.

mod common;

use common::*;
use petrel_tracking::{Action, TokenData};

#[tokio::test]
async fn expired_tokens_are_404() {
    let h = Harness::start().await;
    let expired = |action, url: Option<&str>| {
        keys().sign(&TokenData {
            message_id: MESSAGE_ID.into(),
            recipient: RECIPIENT.into(),
            action,
            url: url.map(String::from),
            link_name: None,
            unsubscribe: None,
            expires_unix: 1_600_000_000, // September 2020
        })
    };
    let click = expired(
        Action::Click { link_index: 0 },
        Some("https://example.com/"),
    );
    let open = expired(Action::Open, None);
    for path in [format!("/c/{click}"), format!("/o/{open}")] {
        let r = h.get(&path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("location"), None);
        assert_eq!(r.error_message(), "not found");
    }
    assert_eq!(h.host.stats().not_found, 2);
    assert!(h.finish().await.is_empty());
}
