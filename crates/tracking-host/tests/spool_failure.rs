//! When the event spool cannot take the event, the reader still gets the pixel and the
//! redirect; the failure is only counted (and logged as a warning).

mod common;

use common::*;
use petrel_tracking::Action;

#[tokio::test]
async fn pixel_and_redirect_survive_a_closed_spool() {
    let h = Harness::start().await;
    h.spool.close().unwrap();
    let r = h
        .get(&format!("/o/{}", open_token(Action::Open)), &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 43);
    let url = "https://example.com/still-works";
    let r = h.get(&format!("/c/{}", click_token(url, None)), &[]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some(url));
    let stats = h.host.stats();
    assert_eq!(stats.emit_failures, 2);
    assert_eq!((stats.opens, stats.clicks), (0, 0));
    assert!(h.finish().await.is_empty());
}
