//! GET on an open pixel: the exact GIF, no-cache headers, and one `initial_open` / `open`
//! event with the recipient, client address and User-Agent.

mod common;

use common::*;
use petrel_tracking::Action;
use petrel_tracking_host::PIXEL_GIF;

#[tokio::test]
async fn pixel_get_answers_the_gif_and_records_the_open() {
    let h = Harness::start().await;
    let initial = open_token(Action::InitialOpen);
    let bottom = open_token(Action::Open);

    // The top pixel on a bare base URL, the bottom one behind a path prefix.
    let r1 = h
        .get(&format!("/o/{initial}"), &[("User-Agent", BROWSER)])
        .await;
    let r2 = h
        .get(
            &format!("/t/track/o/{bottom}?utm=ignored"),
            &[("User-Agent", BROWSER)],
        )
        .await;
    for r in [&r1, &r2] {
        assert_eq!(r.status, 200);
        assert_eq!(r.body, PIXEL_GIF.to_vec());
        assert_eq!(r.body.len(), 43);
        assert!(r.body.starts_with(b"GIF89a"));
        assert_eq!(r.header("content-type"), Some("image/gif"));
        assert_eq!(r.header("content-length"), Some("43"));
        assert_eq!(r.header("cache-control"), Some(NO_CACHE));
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.header("expires"), Some("0"));
        assert_eq!(r.header("server"), Some("petrel"));
        assert_eq!(r.header("location"), None);
    }
    let stats = h.host.stats();
    assert_eq!((stats.initial_opens, stats.opens, stats.clicks), (1, 1, 0));

    let events = h.finish().await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["type"], "initial_open");
    assert_eq!(events[1]["type"], "open");
    for e in &events {
        assert_eq!(e["message_id"], MESSAGE_ID);
        assert_eq!(e["rcpt_to"], "fred.smith@example.com");
        assert_eq!(e["raw_rcpt_to"], RECIPIENT);
        assert_eq!(e["recipient_domain"], "example.com");
        assert_eq!(e["ip_address"], "127.0.0.1");
        assert_eq!(e["user_agent"], BROWSER);
        assert_eq!(e["customer_id"], CUSTOMER_ID.to_string());
        assert!(e.get("machine").is_none(), "a browser is not flagged: {e}");
        assert!(e.get("target_link_url").is_none());
        let ts: u64 = e["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(ts > 1_700_000_000);
    }
    assert_ne!(events[0]["event_id"], events[1]["event_id"]);
}
