//! Tokens that do not verify (one character flipped, garbage, a key this host does not have)
//! get a 404 with a JSON error: never a redirect, never an event.

mod common;

use common::*;
use petrel_tracking::{Action, TokenData, TokenKeys};

#[tokio::test]
async fn tampered_malformed_and_unknown_key_tokens_are_404() {
    let h = Harness::start().await;
    let good = click_token("https://example.com/landing", None);
    let mut flipped = good.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other_key = TokenKeys::new(9, b"some-other-secret-entirely")
        .unwrap()
        .sign(&TokenData {
            message_id: MESSAGE_ID.into(),
            recipient: RECIPIENT.into(),
            action: Action::Click { link_index: 0 },
            url: Some("https://evil.example/".into()),
            link_name: None,
            unsubscribe: None,
            expires_unix: EXPIRES,
        });
    // Authentic, but not a target petrel's rewriter would ever have signed.
    let not_http = keys().sign(&TokenData {
        message_id: MESSAGE_ID.into(),
        recipient: RECIPIENT.into(),
        action: Action::Click { link_index: 0 },
        url: Some("javascript:alert(1)".into()),
        link_name: None,
        unsubscribe: None,
        expires_unix: EXPIRES,
    });
    let bad = [
        format!("/c/{flipped}"),
        format!("/c/{}", &good[..good.len() - 1]),
        format!("/c/{good}x"),
        "/c/not-a-token".to_string(),
        "/c/%2F%2Fevil.example".to_string(),
        format!("/c/{other_key}"),
        format!("/o/{flipped}"),
        format!("/c/{not_http}"),
        format!("/c/{}", "A".repeat(20_000)),
    ];
    for path in &bad {
        let r = h.get(path, &[("User-Agent", BROWSER)]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.header("location"), None, "{path}");
        assert_eq!(r.header("server"), Some("petrel"));
        assert_eq!(r.error_message(), "not found");
    }
    // The genuine token still works.
    assert_eq!(h.get(&format!("/c/{good}"), &[]).await.status, 302);
    assert_eq!(h.host.stats().not_found, bad.len() as u64);

    let events = h.finish().await;
    assert_eq!(
        events.len(),
        1,
        "only the genuine click is recorded: {events:#?}"
    );
    assert_eq!(events[0]["target_link_url"], "https://example.com/landing");
}
